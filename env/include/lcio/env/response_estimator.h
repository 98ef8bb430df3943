// The kNN response-score estimator. Fitted once on the training split: each
// logged turn gives the point (history window from the logged decisions ++
// the logged action vector) with value its response score (refusal rule
// applied). A query averages the values of every point whose distance is <=
// the k-th smallest distance (ties included), weighted by 1 / (d + 1e-6).
//
// Keys are small integers, so large data sets hold many exact duplicates:
// points are merged into unique keys carrying a count and a value sum, and a
// k-d tree indexes the unique keys. Answers are the same as over the raw
// points (up to the order of floating-point additions).
//
// NeighbourRule::kScikitKdTree is a compatibility mode that reproduces the
// original implementation's figures: exactly k neighbours, the tie at the k-th
// distance broken the way scikit-learn's k-d tree happened to break it (see
// reference_kdtree.h and docs/simulator.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/action_table.h"

namespace lcio::env {

class ReferenceKdTree;

enum class NeighbourRule {
  // lcio's rule, the documented semantics: every point within the k-th
  // smallest distance, ties included. Independent of point order.
  kTieInclusive,
  // Exactly k points, the tie at the k-th distance broken as scikit-learn's
  // KDTree (leaf size 30) broke it. Depends on the order of the points; only
  // for reproducing the original implementation's figures.
  kScikitKdTree,
};

class ResponseEstimator {
 public:
  static absl::StatusOr<std::shared_ptr<const ResponseEstimator>> Fit(
      const data::Dataset& dataset, const std::vector<int>& episode_indices,
      const ActionTable& actions, int time_span, int k_neighbors, const data::RefusalRule& refusal,
      NeighbourRule rule = NeighbourRule::kTieInclusive);
  // From explicit points (row-major keys), for tests and benchmarks.
  static absl::StatusOr<std::shared_ptr<const ResponseEstimator>> FromPoints(
      int key_width, std::vector<double> keys, std::vector<double> values, int k_neighbors,
      NeighbourRule rule = NeighbourRule::kTieInclusive);
  ~ResponseEstimator();

  // Under the estimator's rule.
  double Estimate(const double* key) const;
  // The tie-inclusive answer by scanning every raw point: the specification
  // of kTieInclusive (whatever this estimator's rule), kept for tests and the
  // benchmark.
  double EstimateBruteForce(const double* key) const;

  int key_width() const { return key_width_; }
  int k_neighbors() const { return k_; }
  NeighbourRule rule() const { return rule_; }
  size_t num_points() const { return raw_values_.size(); }
  size_t num_unique_points() const { return counts_.size(); }
  double max_value() const { return max_value_; }

 private:
  struct Tree;
  ResponseEstimator() = default;
  void Build();
  double SquaredDistance(const double* a, const double* b) const;

  int key_width_ = 0;
  int k_ = 5;
  NeighbourRule rule_ = NeighbourRule::kTieInclusive;
  std::vector<double> raw_keys_, raw_values_;  // as fitted
  std::vector<double> unique_keys_;            // row-major
  std::vector<double> counts_, value_sums_;    // per unique key
  double max_value_ = 0;
  std::unique_ptr<Tree> tree_;                       // kTieInclusive
  std::unique_ptr<ReferenceKdTree> reference_tree_;  // kScikitKdTree, over raw_keys_
};

// Memoises estimates by exact key: simulated episodes revisit the same few
// thousand keys, so a training run or an Oracle search mostly hits the cache.
// Not thread-safe: one per thread.
class CachedEstimator {
 public:
  explicit CachedEstimator(std::shared_ptr<const ResponseEstimator> estimator,
                           size_t max_entries = 1 << 20)
      : estimator_(std::move(estimator)), max_entries_(max_entries) {}
  double Estimate(const double* key);
  const ResponseEstimator& estimator() const { return *estimator_; }
  size_t hits() const { return hits_; }
  size_t misses() const { return misses_; }

 private:
  std::shared_ptr<const ResponseEstimator> estimator_;
  size_t max_entries_;
  absl::flat_hash_map<std::string, double> cache_;
  std::string scratch_;
  size_t hits_ = 0, misses_ = 0;
};

}  // namespace lcio::env
