#include "lcio/env/response_estimator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/message.h"
#include "lcio/env/reference_kdtree.h"
#include "nlohmann/json.hpp"

namespace lcio::env {
namespace {
constexpr double kWeightEpsilon = 1e-6;  // the reference's 1 / (d + 1e-6)
// Keys within this magnitude take the integer trie; squared differences then
// stay exact in double and in int64.
constexpr double kMaxTrieCoordinate = 1 << 20;

bool IsTrieCoordinate(double x) { return std::abs(x) <= kMaxTrieCoordinate && std::trunc(x) == x; }

// The reference's inverse-distance weighted mean, for every query path: the
// neighbours come as (squared distance, points, sum of their values).
class InverseDistanceMean {
 public:
  void Add(double squared_distance, double count, double value_sum) {
    const double w = 1.0 / (std::sqrt(squared_distance) + kWeightEpsilon);
    weighted_ += w * value_sum;
    weights_ += w * count;
  }
  double value() const { return weighted_ / weights_; }

 private:
  double weighted_ = 0, weights_ = 0;
};

// Adds `count` points at distance d to the ascending (distance, points)
// shells, keeps only the nearest shells that hold k points (duplicates
// counted, ties included) and returns their outer distance: the k-th
// smallest distance, or `bound` while fewer than k points are known.
template <typename Distance>
Distance AddToShells(std::vector<std::pair<Distance, double>>& shells, Distance d, double count,
                     int k, Distance bound) {
  auto it = std::lower_bound(
      shells.begin(), shells.end(), d,
      [](const std::pair<Distance, double>& shell, Distance x) { return shell.first < x; });
  if (it != shells.end() && it->first == d)
    it->second += count;
  else
    shells.insert(it, {d, count});
  double cumulative = 0;
  for (size_t i = 0; i < shells.size(); ++i) {
    cumulative += shells[i].second;
    if (cumulative >= k) {
      shells.resize(i + 1);
      return shells[i].first;
    }
  }
  return bound;
}
}  // namespace

// The unique keys found so far within the k-th smallest point distance
// (counting duplicates, ties included), and that distance: the bound beyond
// which a key cannot be among the neighbours.
class ResponseEstimator::Neighbours {
 public:
  explicit Neighbours(int k) : k_(k) {}
  double bound() const { return bound_; }
  const std::vector<std::pair<double, uint32_t>>& found() const { return found_; }

  void Offer(double squared_distance, uint32_t id, double count) {
    if (squared_distance > bound_) return;
    found_.emplace_back(squared_distance, id);
    bound_ = AddToShells(shells_, squared_distance, count, k_, bound_);
  }

 private:
  int k_;
  double bound_ = std::numeric_limits<double>::infinity();
  std::vector<std::pair<double, double>> shells_;   // (distance, points), ascending
  std::vector<std::pair<double, uint32_t>> found_;  // (distance, unique id)
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
  // Bounded, so that a squared distance or a mean of values can neither
  // overflow nor turn NaN (1e200 coordinates made every prediction NaN).
  for (size_t i = 0; i < keys.size(); ++i)
    if (!(std::abs(keys[i]) <= kMaxKeyMagnitude))
      return absl::InvalidArgumentError(
          absl::StrCat("response model: keys[", i / key_width, "][", i % key_width,
                       "] = ", data::ExactNumber(keys[i]), ": must be within +-",
                       static_cast<int64_t>(kMaxKeyMagnitude)));
  for (size_t i = 0; i < values.size(); ++i)
    if (!(std::abs(values[i]) <= kMaxValueMagnitude))
      return absl::InvalidArgumentError(
          absl::StrCat("response model: values[", i, "] = ", data::ExactNumber(values[i]),
                       ": must be within +-", static_cast<int64_t>(kMaxValueMagnitude)));
  std::shared_ptr<ResponseEstimator> est(new ResponseEstimator());
  est->key_width_ = key_width;
  est->k_ = k_neighbors;
  est->rule_ = rule;
  est->raw_keys_ = std::move(keys);
  est->raw_values_ = std::move(values);
  est->Build();
  return std::shared_ptr<const ResponseEstimator>(std::move(est));
}

double ResponseEstimator::mean_value() const {
  if (raw_values_.empty()) return 0;
  return std::accumulate(raw_values_.begin(), raw_values_.end(), 0.0) /
         static_cast<double>(raw_values_.size());
}

std::string ResponseEstimator::ToJson() const {
  nlohmann::json keys = nlohmann::json::array();
  for (size_t i = 0; i < raw_values_.size(); ++i) {
    nlohmann::json key = nlohmann::json::array();
    for (int d = 0; d < key_width_; ++d) {
      const double x = raw_keys_[i * key_width_ + d];
      // Integer coordinates (every fitted key) as JSON integers: compact.
      if (IsTrieCoordinate(x))
        key.push_back(static_cast<int64_t>(x));
      else
        key.push_back(x);
    }
    keys.push_back(std::move(key));
  }
  nlohmann::json j = {
      {"key_width", key_width_},
      {"k_neighbors", k_},
      {"rule", rule_ == NeighbourRule::kTieInclusive ? "tie-inclusive" : "scikit-kd-tree"},
      {"keys", std::move(keys)},
      {"values", raw_values_}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::shared_ptr<const ResponseEstimator>> ResponseEstimator::FromJson(
    const std::string& text) {
  absl::Status error;
  const nlohmann::json j = data::ParseJson(text, "response model", &error);
  if (!error.ok()) return error;
  if (!j.is_object()) return absl::InvalidArgumentError("response model: not a JSON object");
  try {
    // Integers exactly (data::WholeNumber): get<int>() truncated 29.5 and
    // was undefined for 1e10.
    auto width =
        data::WholeNumber<int>(j.at("key_width"), "response model: key_width", 1, kMaxKeyWidth);
    if (!width.ok()) return width.status();
    auto k = data::WholeNumber<int>(j.at("k_neighbors"), "response model: k_neighbors", 1,
                                    std::numeric_limits<int>::max());
    if (!k.ok()) return k.status();
    const std::string rule_name = j.at("rule").get<std::string>();
    NeighbourRule rule;
    if (rule_name == "tie-inclusive")
      rule = NeighbourRule::kTieInclusive;
    else if (rule_name == "scikit-kd-tree")
      rule = NeighbourRule::kScikitKdTree;
    else
      return absl::InvalidArgumentError(absl::StrCat(
          "response model: rule = \"", rule_name, "\": must be tie-inclusive or scikit-kd-tree"));
    const nlohmann::json& keys = j.at("keys");
    std::vector<double> values = j.at("values").get<std::vector<double>>();
    if (!keys.is_array() || keys.size() != values.size())
      return absl::InvalidArgumentError(absl::StrCat("response model: ", values.size(),
                                                     " values but keys is not an array of as "
                                                     "many keys"));
    // Grown key by key, each checked first: reserving values x key_width
    // up front let a file of empty keys ask for gigabytes.
    std::vector<double> flat;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!keys[i].is_array() || static_cast<int>(keys[i].size()) != *width)
        return absl::InvalidArgumentError(
            absl::StrCat("response model: keys[", i, "] must be an array of ", *width, " numbers"));
      for (const nlohmann::json& x : keys[i]) flat.push_back(x.get<double>());
    }
    return FromPoints(*width, std::move(flat), std::move(values), *k, rule);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("response model: field missing or of the wrong type: ", e.what()));
  }
}

void ResponseEstimator::Build() {
  if (rule_ == NeighbourRule::kScikitKdTree) {
    // Point order matters to this rule: build over the raw points as fitted.
    reference_tree_ =
        std::make_unique<ReferenceKdTree>(raw_keys_.data(), raw_values_.size(), key_width_);
    for (double v : raw_values_) max_value_ = std::max(max_value_, v);
    return;
  }
  const size_t n = raw_values_.size();
  integer_keys_ = std::all_of(raw_keys_.begin(), raw_keys_.end(), IsTrieCoordinate);
  // Trie levels in order of increasing variance over the points: the
  // concentrated dimensions (old history slots, mostly padding) first, so the
  // top levels stay narrow and shared, and the varied ones, where a query's
  // distance accrues, near the leaves. Measured faster than decreasing
  // variance or the natural order (docs/benchmarks.md).
  trie_order_.resize(key_width_);
  std::iota(trie_order_.begin(), trie_order_.end(), 0);
  if (integer_keys_) {
    std::vector<double> variance(key_width_);
    for (int d = 0; d < key_width_; ++d) {
      double sum = 0, sum_sq = 0;
      for (size_t i = 0; i < n; ++i) {
        const double x = raw_keys_[i * key_width_ + d];
        sum += x;
        sum_sq += x * x;
      }
      const double points = static_cast<double>(n);
      variance[d] = sum_sq / points - (sum / points) * (sum / points);
    }
    std::stable_sort(trie_order_.begin(), trie_order_.end(),
                     [&](int a, int b) { return variance[a] < variance[b]; });
  }
  // Merge duplicates: sort point indices by key (dimensions in trie order),
  // then collapse equal runs.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto key_of = [&](uint32_t i) { return raw_keys_.data() + static_cast<size_t>(i) * key_width_; };
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const double *ka = key_of(a), *kb = key_of(b);
    for (int d : trie_order_)
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
  if (integer_keys_) BuildTrie();
}

void ResponseEstimator::BuildTrie() {
  // The unique keys are sorted in trie order, so key i opens a new node at
  // every level from the first dimension (in trie order) where it differs
  // from key i - 1.
  trie_.assign(key_width_, TrieLevel{});
  const size_t unique = counts_.size();
  for (size_t i = 0; i < unique; ++i) {
    const double* key = unique_keys_.data() + i * key_width_;
    int first = 0;
    if (i > 0) {
      const double* previous = key - key_width_;
      while (key[trie_order_[first]] == previous[trie_order_[first]]) ++first;
    }
    for (int level = first; level < key_width_; ++level) {
      TrieLevel& t = trie_[level];
      t.values.push_back(static_cast<int32_t>(key[trie_order_[level]]));
      if (level + 1 < key_width_)
        t.first_child.push_back(static_cast<uint32_t>(trie_[level + 1].values.size()));
    }
  }
  for (int level = 0; level + 1 < key_width_; ++level)
    trie_[level].first_child.push_back(static_cast<uint32_t>(trie_[level + 1].values.size()));
  // About the cost of one column scan, in node visits.
  trie_budget_ = std::max<int64_t>(1024, static_cast<int64_t>(unique) * key_width_ / 32);

  const bool fits_int8 = std::all_of(unique_keys_.begin(), unique_keys_.end(),
                                     [](double x) { return x >= -128 && x <= 127; });
  if (!fits_int8) return;
  column_stride_ = (unique + 15) / 16 * 16;
  columns_.assign(column_stride_ * key_width_, 0);
  for (size_t i = 0; i < unique; ++i)
    for (int level = 0; level < key_width_; ++level)
      columns_[level * column_stride_ + i] =
          static_cast<int8_t>(unique_keys_[i * key_width_ + trie_order_[level]]);
}

bool ResponseEstimator::SearchTrie(int level, uint32_t begin, uint32_t end, double partial,
                                   const int32_t* query, Neighbours* found, int64_t* budget) const {
  // Siblings are sorted by value: walk outwards from the query's value, always
  // taking the nearer side; once the nearer side is beyond the bound, so is
  // everything else.
  const TrieLevel& t = trie_[level];
  const int32_t target = query[level];
  const bool last = level + 1 == key_width_;
  int64_t up =
      std::lower_bound(t.values.begin() + begin, t.values.begin() + end, target) - t.values.begin();
  int64_t down = up - 1;
  const int64_t lowest = begin, highest = end;
  while (true) {
    const double up_cost = up < highest
                               ? static_cast<double>(static_cast<int64_t>(t.values[up]) - target)
                               : std::numeric_limits<double>::infinity();
    const double down_cost =
        down >= lowest ? static_cast<double>(target - static_cast<int64_t>(t.values[down]))
                       : std::numeric_limits<double>::infinity();
    if (up >= highest && down < lowest) return true;
    if (--*budget < 0) return false;
    int64_t node;
    double distance;
    if (up_cost <= down_cost) {
      node = up++;
      distance = partial + up_cost * up_cost;
    } else {
      node = down--;
      distance = partial + down_cost * down_cost;
    }
    if (distance > found->bound()) return true;
    if (last)
      found->Offer(distance, static_cast<uint32_t>(node), counts_[node]);
    else if (!SearchTrie(level + 1, t.first_child[node], t.first_child[node + 1], distance, query,
                         found, budget))
      return false;
  }
}

double ResponseEstimator::WeightedMean(const Neighbours& found) const {
  InverseDistanceMean mean;
  for (const auto& [d2, id] : found.found())
    if (d2 <= found.bound()) mean.Add(d2, counts_[id], value_sums_[id]);
  return mean.value();
}

bool ResponseEstimator::ColumnsFit(const double* values, size_t n) const {
  // int32 sums of up to 64 squared differences of coordinates within +-512
  // (keys within int8) stay exact.
  constexpr int kMaxCoordinate = 512;
  return !columns_.empty() && key_width_ <= 64 && std::all_of(values, values + n, [](double x) {
    return IsTrieCoordinate(x) && std::abs(x) <= kMaxCoordinate;
  });
}

void ResponseEstimator::EstimateSharedPrefix(const double* prefix, int prefix_width,
                                             const double* suffixes, int count, double* out) const {
  const int suffix_width = key_width_ - prefix_width;
  // Past a few thousand unique keys the pruned trie beats a full pass per key.
  constexpr size_t kMaxScannedKeys = 4096;
  if (rule_ == NeighbourRule::kTieInclusive && count > 1 && counts_.size() <= kMaxScannedKeys &&
      ColumnsFit(prefix, prefix_width) &&
      ColumnsFit(suffixes, static_cast<size_t>(count) * suffix_width))
    return ScanColumns(prefix, prefix_width, suffixes, count, out);
  std::vector<double> key(prefix, prefix + prefix_width);
  key.resize(key_width_);
  for (int s = 0; s < count; ++s) {
    const double* suffix = suffixes + static_cast<ptrdiff_t>(s) * suffix_width;
    std::copy(suffix, suffix + suffix_width, key.begin() + prefix_width);
    out[s] = Estimate(key.data());
  }
}

void ResponseEstimator::ScanColumns(const double* prefix, int prefix_width, const double* suffixes,
                                    int count, double* out) const {
  const int suffix_width = key_width_ - prefix_width;
  const size_t unique = counts_.size();
  // Squared distances of every unique key to every query, in exact int32
  // arithmetic over the int8 columns, 16 keys at a time (fixed-length inner
  // loops the compiler vectorises); the prefix part once for all queries.
  const size_t stride = column_stride_;
  std::vector<int32_t> distances(static_cast<size_t>(count + 1) * stride, 0);
  int32_t* head = distances.data() + static_cast<size_t>(count) * stride;
  auto accumulate = [stride](const int8_t* column, int32_t q, int32_t* sums) {
    for (size_t block = 0; block < stride; block += 16)
      for (int j = 0; j < 16; ++j) {
        const int32_t diff = column[block + j] - q;
        sums[block + j] += diff * diff;
      }
  };
  for (int level = 0; level < key_width_; ++level) {
    const int dim = trie_order_[level];
    if (dim < prefix_width)
      accumulate(columns_.data() + level * stride, static_cast<int32_t>(prefix[dim]), head);
  }
  for (int s = 0; s < count; ++s) {
    int32_t* row = distances.data() + static_cast<size_t>(s) * stride;
    std::copy(head, head + stride, row);
    for (int level = 0; level < key_width_; ++level) {
      const int dim = trie_order_[level];
      if (dim >= prefix_width)
        accumulate(columns_.data() + level * stride,
                   static_cast<int32_t>(suffixes[s * suffix_width + dim - prefix_width]), row);
    }
  }
  // Per query, the nearest distance shells holding k points (duplicates
  // counted, ties included) in one pass: a key beyond the current k-th
  // distance costs one comparison.
  std::vector<std::pair<int32_t, double>> shells;  // (distance, points), ascending
  for (int s = 0; s < count; ++s) {
    const int32_t* row = distances.data() + static_cast<size_t>(s) * stride;
    shells.clear();
    int32_t bound = std::numeric_limits<int32_t>::max();
    for (size_t i = 0; i < unique; ++i) {
      if (row[i] <= bound) bound = AddToShells(shells, row[i], counts_[i], k_, bound);
    }
    InverseDistanceMean mean;
    for (size_t i = 0; i < unique; ++i)
      if (row[i] <= bound) mean.Add(static_cast<double>(row[i]), counts_[i], value_sums_[i]);
    out[s] = mean.value();
  }
}

double ResponseEstimator::Estimate(const double* key) const {
  if (rule_ == NeighbourRule::kScikitKdTree) {
    InverseDistanceMean mean;
    for (const auto& n : reference_tree_->Query(key, k_))
      mean.Add(n.squared_distance, 1, raw_values_[n.index]);
    return mean.value();
  }
  bool integer_query = integer_keys_;
  int32_t stack_query[64];
  std::vector<int32_t> heap_query;
  int32_t* query = stack_query;
  if (integer_query && key_width_ > 64) {
    heap_query.resize(key_width_);
    query = heap_query.data();
  }
  for (int level = 0; integer_query && level < key_width_; ++level) {
    const double x = key[trie_order_[level]];
    integer_query = IsTrieCoordinate(x);
    query[level] = integer_query ? static_cast<int32_t>(x) : 0;
  }
  // Only hand-made points (FromPoints, FromJson) get here: never worth a
  // faster path than the specification.
  if (!integer_query) return EstimateBruteForce(key);
  const bool columns = ColumnsFit(key, key_width_);
  int64_t budget = columns ? trie_budget_ : std::numeric_limits<int64_t>::max();
  Neighbours found(k_);
  if (SearchTrie(0, 0, static_cast<uint32_t>(trie_[0].values.size()), 0.0, query, &found, &budget))
    return WeightedMean(found);
  double answer;
  ScanColumns(key, key_width_, nullptr, 1, &answer);
  return answer;
}

double ResponseEstimator::EstimateBruteForce(const double* key) const {
  const size_t n = raw_values_.size();
  std::vector<double> d2(n);
  for (size_t i = 0; i < n; ++i) d2[i] = SquaredDistance(key, raw_keys_.data() + i * key_width_);
  std::vector<double> sorted = d2;
  const size_t kth = std::min<size_t>(k_, n) - 1;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(kth), sorted.end());
  const double limit = sorted[kth];
  InverseDistanceMean mean;
  for (size_t i = 0; i < n; ++i)
    if (d2[i] <= limit) mean.Add(d2[i], 1, raw_values_[i]);
  return mean.value();
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
