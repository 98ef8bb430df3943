// A history-free response model: the mean logged response of each
// (task, action) cell. It cannot be steered through the history window (the
// kNN's key is dominated by it), so a policy cannot exploit it by choosing its
// own past actions; it is one of the held-out scorers (env/scorer.h).
//
// Cells are sparse (the M4A1 sample logs 352 turns over 4 tasks x 9 actions,
// a test side about a fifth of that), so each level is shrunk toward the one
// above it with a prior worth `prior_turns` logged turns (m):
//   global    = mean of every fitted turn's response
//   class c   = (sum_c + m * global) / (n_c + m), c = local, cloud without
//               views, cloud with views (uploads share one pathway)
//   action a  = (sum_a + m * class(a)) / (n_a + m)
//   cell t,a  = (sum_ta + m * action a) / (n_ta + m)
// An empty cell answers its action's estimate, an action never logged its
// class's. Responses follow the refusal rule, as the kNN's values do.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/action_table.h"

namespace lcio::env {

class TaskActionMeans {
 public:
  static absl::StatusOr<TaskActionMeans> Fit(const data::Dataset& dataset,
                                             const std::vector<int>& episode_indices,
                                             const ActionTable& actions,
                                             const data::RefusalRule& refusal,
                                             double prior_turns = 5);
  // The class of an action: 0 local, 1 cloud without views, 2 cloud with views.
  static int ActionClass(const ActionTable& actions, int action);
  // A task outside [0, num_tasks) or an action outside the table answers the
  // global mean.
  double Estimate(int task, int action) const;
  double max_value() const { return max_value_; }
  double global_mean() const { return global_; }

 private:
  TaskActionMeans() = default;
  int num_tasks_ = 0, num_actions_ = 0;
  double global_ = 0, max_value_ = 0;
  std::vector<double> cells_;  // [task * num_actions + action]
};

}  // namespace lcio::env
