#include "lcio/env/response_estimator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "lcio/env/observation.h"
#include "lcio/env/reference_kdtree.h"
#include "nanoflann.hpp"

namespace lcio::env {
namespace {
constexpr double kWeightEpsilon = 1e-6;  // the reference's 1 / (d + 1e-6)
}

// nanoflann adaptor over the unique keys.
struct ResponseEstimator::Tree {
  struct Points {
    const ResponseEstimator* owner;
    size_t kdtree_get_point_count() const { return owner->counts_.size(); }
    double kdtree_get_pt(size_t i, size_t d) const {
      return owner->unique_keys_[i * owner->key_width_ + d];
    }
    template <class Box>
    bool kdtree_get_bbox(Box&) const {
      return false;
    }
  };
  using Index = nanoflann::KDTreeSingleIndexAdaptor<
      nanoflann::L2_Simple_Adaptor<double, Points, double, uint32_t>, Points, -1, uint32_t>;
  Points points;
  Index index;
  Tree(const ResponseEstimator* owner, int dims)
      : points{owner}, index(dims, points, nanoflann::KDTreeSingleIndexAdaptorParams(10)) {
    index.buildIndex();
  }
};

ResponseEstimator::~ResponseEstimator() = default;

double ResponseEstimator::SquaredDistance(const double* a, const double* b) const {
  // From coordinate differences: exact for the integer-valued keys, so
  // duplicates and equidistant points tie exactly.
  double sum = 0;
  for (int d = 0; d < key_width_; ++d) {
    const double diff = a[d] - b[d];
    sum += diff * diff;
  }
  return sum;
}

absl::StatusOr<std::shared_ptr<const ResponseEstimator>> ResponseEstimator::Fit(
    const data::Dataset& dataset, const std::vector<int>& episode_indices,
    const ActionTable& actions, int time_span, int k_neighbors, const data::RefusalRule& refusal,
    NeighbourRule rule) {
  const int width = ResponseKeyWidth(actions.num_views(), time_span);
  std::vector<double> keys, values;
  std::vector<double> key(width);
  for (int e : episode_indices) {
    if (e < 0 || e >= static_cast<int>(dataset.episodes.size()))
      return absl::OutOfRangeError(absl::StrCat("episode index ", e, " out of range"));
    const data::Episode& episode = dataset.episodes[e];
    DecisionContext context;
    for (const data::Turn& turn : episode.turns) {
      auto action = actions.IndexOf(turn.target == data::Target::kCloud, turn.uploaded_views);
      if (!action.ok())
        return absl::InvalidArgumentError(absl::StrCat("episode ", episode.id, " turn ",
                                                       context.turn_index(), ": ",
                                                       action.status().message()));
      context.task_index = turn.task_index;
      EncodeResponseKey(actions, time_span, context, *action, key.data());
      keys.insert(keys.end(), key.begin(), key.end());
      values.push_back(refusal.ResponseScore(turn));
      context.previous_actions.push_back(*action);
      context.previous_tasks.push_back(turn.task_index);
    }
  }
  return FromPoints(width, std::move(keys), std::move(values), k_neighbors, rule);
}

absl::StatusOr<std::shared_ptr<const ResponseEstimator>> ResponseEstimator::FromPoints(
    int key_width, std::vector<double> keys, std::vector<double> values, int k_neighbors,
    NeighbourRule rule) {
  if (key_width < 1) return absl::InvalidArgumentError("key_width must be >= 1");
  if (k_neighbors < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("k_neighbors = ", k_neighbors, ": must be >= 1"));
  if (values.empty())
    return absl::InvalidArgumentError("the response estimator needs at least one training turn");
  if (keys.size() != values.size() * key_width)
    return absl::InvalidArgumentError("keys and values disagree in count");
  std::shared_ptr<ResponseEstimator> est(new ResponseEstimator());
  est->key_width_ = key_width;
  est->k_ = k_neighbors;
  est->rule_ = rule;
  est->raw_keys_ = std::move(keys);
  est->raw_values_ = std::move(values);
  est->Build();
  return std::shared_ptr<const ResponseEstimator>(std::move(est));
}

void ResponseEstimator::Build() {
  if (rule_ == NeighbourRule::kScikitKdTree) {
    // Point order matters to this rule: build over the raw points as fitted.
    reference_tree_ =
        std::make_unique<ReferenceKdTree>(raw_keys_.data(), raw_values_.size(), key_width_);
    for (double v : raw_values_) max_value_ = std::max(max_value_, v);
    return;
  }
  // Merge duplicates: sort point indices by key, then collapse equal runs.
  const size_t n = raw_values_.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto key_of = [&](uint32_t i) { return raw_keys_.data() + static_cast<size_t>(i) * key_width_; };
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const double *ka = key_of(a), *kb = key_of(b);
    for (int d = 0; d < key_width_; ++d)
      if (ka[d] != kb[d]) return ka[d] < kb[d];
    return a < b;
  });
  for (size_t i = 0; i < n; ++i) {
    const uint32_t p = order[i];
    const bool same = !counts_.empty() && std::equal(key_of(p), key_of(p) + key_width_,
                                                     unique_keys_.end() - key_width_);
    if (!same) {
      unique_keys_.insert(unique_keys_.end(), key_of(p), key_of(p) + key_width_);
      counts_.push_back(0);
      value_sums_.push_back(0);
    }
    counts_.back() += 1;
    value_sums_.back() += raw_values_[p];
    max_value_ = std::max(max_value_, raw_values_[p]);
  }
  tree_ = std::make_unique<Tree>(this, key_width_);
}

double ResponseEstimator::Estimate(const double* key) const {
  if (rule_ == NeighbourRule::kScikitKdTree) {
    double weighted = 0, weights = 0;
    for (const auto& n : reference_tree_->Query(key, k_)) {
      const double w = 1.0 / (std::sqrt(n.squared_distance) + kWeightEpsilon);
      weighted += w * raw_values_[n.index];
      weights += w;
    }
    return weighted / weights;
  }
  const size_t unique = counts_.size();
  // k unique keys hold at least k points, so the k-th smallest point distance
  // is among them.
  const size_t want = std::min<size_t>(k_, unique);
  std::vector<uint32_t> ids(want);
  std::vector<double> tree_d2(want);
  const size_t found = tree_->index.knnSearch(key, want, ids.data(), tree_d2.data());
  std::vector<std::pair<double, uint32_t>> near;  // exact squared distance, unique id
  near.reserve(found);
  for (size_t i = 0; i < found; ++i)
    near.emplace_back(SquaredDistance(key, unique_keys_.data() + ids[i] * key_width_), ids[i]);
  std::sort(near.begin(), near.end());
  double cumulative = 0, kth_d2 = near.back().first;
  for (const auto& [d2, id] : near) {
    cumulative += counts_[id];
    if (cumulative >= k_) {
      kth_d2 = d2;
      break;
    }
  }
  if (cumulative >= k_ && kth_d2 == near.back().first && unique > found) {
    // Unique keys beyond the k returned may tie with the k-th distance.
    // nanoflann keeps distances strictly below the radius; widen it a hair
    // and let the exact distances below decide.
    std::vector<std::pair<uint32_t, double>> matches;
    nanoflann::SearchParams params;
    params.sorted = false;
    tree_->index.radiusSearch(key, kth_d2 * (1 + 1e-9) + 1e-9, matches, params);
    near.clear();
    for (const auto& m : matches)
      near.emplace_back(SquaredDistance(key, unique_keys_.data() + m.first * key_width_), m.first);
  }
  double weighted = 0, weights = 0;
  for (const auto& [d2, id] : near) {
    if (d2 > kth_d2) continue;
    const double w = 1.0 / (std::sqrt(d2) + kWeightEpsilon);
    weighted += w * value_sums_[id];
    weights += w * counts_[id];
  }
  return weighted / weights;
}

double ResponseEstimator::EstimateBruteForce(const double* key) const {
  const size_t n = raw_values_.size();
  std::vector<double> d2(n);
  for (size_t i = 0; i < n; ++i) d2[i] = SquaredDistance(key, raw_keys_.data() + i * key_width_);
  std::vector<double> sorted = d2;
  const size_t kth = std::min<size_t>(k_, n) - 1;
  std::nth_element(sorted.begin(), sorted.begin() + kth, sorted.end());
  const double limit = sorted[kth];
  double weighted = 0, weights = 0;
  for (size_t i = 0; i < n; ++i) {
    if (d2[i] > limit) continue;
    const double w = 1.0 / (std::sqrt(d2[i]) + kWeightEpsilon);
    weighted += w * raw_values_[i];
    weights += w;
  }
  return weighted / weights;
}

double CachedEstimator::Estimate(const double* key) {
  const size_t bytes = sizeof(double) * estimator_->key_width();
  scratch_.assign(reinterpret_cast<const char*>(key), bytes);
  auto it = cache_.find(scratch_);
  if (it != cache_.end()) {
    ++hits_;
    return it->second;
  }
  ++misses_;
  const double value = estimator_->Estimate(key);
  if (cache_.size() >= max_entries_) cache_.clear();
  cache_.emplace(scratch_, value);
  return value;
}

}  // namespace lcio::env
