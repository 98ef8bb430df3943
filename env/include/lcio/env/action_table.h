// The action space for X views: action 0 answers locally; actions 1..2^X ask
// the cloud LLM with one subset of the views, subsets ordered by size, then
// lexicographically ({}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}, {0,1,2} for X=3).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"

namespace lcio::env {

class ActionTable {
 public:
  static constexpr int kMaxViews =
      12;  // 4097 actions; beyond that the table is not a sane action space
  static absl::StatusOr<ActionTable> Create(int num_views);
  // The table's size (local + every subset); 0 outside [0, kMaxViews].
  static constexpr int SizeFor(int num_views) {
    return num_views < 0 || num_views > kMaxViews ? 0 : 1 + (1 << num_views);
  }

  int num_views() const { return num_views_; }
  int size() const { return static_cast<int>(views_.size()); }
  bool is_cloud(int action) const { return action != 0; }
  // Views uploaded by the action, ascending.
  const std::vector<int>& views(int action) const { return views_[action]; }
  int num_uploaded(int action) const { return static_cast<int>(views_[action].size()); }
  bool uploads(int action, int view) const { return (masks_[action] >> view) & 1u; }
  // The action of a logged turn: local, or cloud with these views (any order).
  absl::StatusOr<int> IndexOf(bool cloud, const std::vector<int>& views) const;
  // "local", "cloud", "cloud+{0,2}".
  std::string Describe(int action) const;

 private:
  ActionTable() = default;
  int num_views_ = 0;
  std::vector<std::vector<int>> views_;
  std::vector<unsigned> masks_;
};

// The logged action of turn `turn` of `episode`; InvalidArgument naming the
// episode and turn when the log's views do not fit the table.
absl::StatusOr<int> LoggedAction(const ActionTable& actions, const data::Episode& episode,
                                 int turn);

}  // namespace lcio::env
