// The kNN response-score estimator over fixed-width keys (the keys and the
// fitting from logged turns are observation.h's: FitResponseEstimator). A
// query averages the values of every point whose distance is <= the k-th
// smallest distance (ties included), weighted by 1 / (d + 1e-6).
//
// Keys are small integers, so large data sets hold many exact duplicates:
// points are merged into unique keys carrying a count and a value sum. k-d
// trees degrade in these ~29 dimensions; instead the unique keys form a trie
// (one level per dimension, siblings sorted by value) searched depth-first,
// nearest value first, abandoning a prefix once its partial squared distance
// exceeds the current k-th distance (counting duplicates). Prefixes are shared,
// so most keys are dismissed a few levels down, and an exact key holding >= k
// points ends the search at once. Queries far from every key make the trie
// visit too many nodes: past a budget, the query is answered by the column
// pass instead (exact int32 distances to every unique key over int8 key
// columns), the pass that also answers all actions of one context at once
// (EstimateSharedPrefix). Keys or queries that are not small integers
// (FromPoints, FromJson) are answered by the specification itself,
// EstimateBruteForce. Answers equal EstimateBruteForce (up to the order of
// floating-point additions); docs/benchmarks.md measures each path.
//
// NeighbourRule::kScikitKdTree is a compatibility mode that reproduces the
// original implementation's figures: exactly k neighbours, the tie at the k-th
// distance broken the way scikit-learn's k-d tree happened to break it (see
// reference_kdtree.h and docs/simulator.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"

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
  // Bounds on what an estimator holds, checked by FromPoints (and so by
  // FromJson): fitted keys are small integers (actions, views, tasks) and
  // values are turn scores (data::kMaxTurnScore).
  static constexpr int kMaxKeyWidth = 4096;
  static constexpr double kMaxKeyMagnitude = 1e6;
  static constexpr double kMaxValueMagnitude = data::kMaxTurnScore;

  // From explicit points (row-major keys): FitResponseEstimator's, the
  // tests' and the benchmarks'.
  static absl::StatusOr<std::shared_ptr<const ResponseEstimator>> FromPoints(
      int key_width, std::vector<double> keys, std::vector<double> values, int k_neighbors,
      NeighbourRule rule = NeighbourRule::kTieInclusive);
  ~ResponseEstimator();

  // The fitted points as a JSON object {"key_width", "k_neighbors", "rule",
  // "keys": [[...], ...], "values": [...]}, in fitted order, so that FromJson
  // rebuilds an estimator giving the same answers (the policy artifact carries
  // it for response-aware observations). FromJson validates everything it
  // reads: shapes, finite numbers, k >= 1, a known rule.
  std::string ToJson() const;
  static absl::StatusOr<std::shared_ptr<const ResponseEstimator>> FromJson(const std::string& json);

  // Under the estimator's rule.
  double Estimate(const double* key) const;
  // Estimate for `count` keys that share their first `prefix_width`
  // coordinates (0 <= prefix_width <= key_width): key s is prefix ++
  // suffixes[s * (key_width - prefix_width) ...]. One pass over the unique
  // keys computes each one's prefix distance once; the answers equal Estimate's
  // up to the order of floating-point additions. The response features ask
  // for every action in one context this way.
  void EstimateSharedPrefix(const double* prefix, int prefix_width, const double* suffixes,
                            int count, double* out) const;
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
  double mean_value() const;

 private:
  class Neighbours;
  ResponseEstimator() = default;
  void Build();
  void BuildTrie();
  double SquaredDistance(const double* a, const double* b) const;
  // False when it gave up after `budget` node visits (found is then partial).
  bool SearchTrie(int level, uint32_t begin, uint32_t end, double partial, const int32_t* query,
                  Neighbours* found, int64_t* budget) const;
  // Whether the column pass answers exactly for these coordinates.
  bool ColumnsFit(const double* values, size_t n) const;
  // The column pass (EstimateSharedPrefix's arguments; ColumnsFit must hold).
  void ScanColumns(const double* prefix, int prefix_width, const double* suffixes, int count,
                   double* out) const;
  double WeightedMean(const Neighbours& found) const;

  int key_width_ = 0;
  int k_ = 5;
  NeighbourRule rule_ = NeighbourRule::kTieInclusive;
  std::vector<double> raw_keys_, raw_values_;  // as fitted
  std::vector<double> unique_keys_;            // row-major
  std::vector<double> counts_, value_sums_;    // per unique key
  double max_value_ = 0;
  // kTieInclusive over integer keys: the trie. Level L has one node per
  // distinct prefix of length L + 1 in trie_order_; level L's node i has the
  // children [first_child[i], first_child[i + 1]) at level L + 1; the last
  // level's node i is unique key i.
  bool integer_keys_ = false;
  std::vector<int> trie_order_;  // dimension searched at each level
  struct TrieLevel {
    std::vector<int32_t> values;
    std::vector<uint32_t> first_child;
  };
  std::vector<TrieLevel> trie_;
  // Far from the data the trie prunes little; past a budget of node visits
  // the query goes to the column pass over the unique keys stored
  // column-wise as int8 (when they fit), dimensions in trie order, padded to
  // blocks of 16 keys.
  int64_t trie_budget_ = 0;
  size_t column_stride_ = 0;                         // unique keys rounded up to a multiple of 16
  std::vector<int8_t> columns_;                      // [level][key]; empty when keys do not fit
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
