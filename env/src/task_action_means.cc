#include "lcio/env/task_action_means.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lcio::env {

absl::StatusOr<TaskActionMeans> TaskActionMeans::Fit(const data::Dataset& dataset,
                                                     const std::vector<int>& episode_indices,
                                                     const ActionTable& actions,
                                                     const data::RefusalRule& refusal,
                                                     double prior_turns) {
  if (!(prior_turns >= 0))
    return absl::InvalidArgumentError(
        absl::StrCat("prior_turns = ", prior_turns, ": must be >= 0"));
  TaskActionMeans m;
  m.num_tasks_ = static_cast<int>(dataset.tasks.size());
  m.num_actions_ = actions.size();
  std::vector<double> cell_sum(m.num_tasks_ * m.num_actions_, 0.0), cell_n(cell_sum.size(), 0.0);
  std::vector<double> action_sum(m.num_actions_, 0.0), action_n(m.num_actions_, 0.0);
  double class_sum[3] = {0, 0, 0}, class_n[3] = {0, 0, 0};
  double sum = 0, n = 0;
  for (int e : episode_indices) {
    if (e < 0 || e >= static_cast<int>(dataset.episodes.size()))
      return absl::OutOfRangeError(absl::StrCat("episode index ", e, " out of range"));
    const data::Episode& episode = dataset.episodes[e];
    for (size_t t = 0; t < episode.turns.size(); ++t) {
      const data::Turn& turn = episode.turns[t];
      auto action = LoggedAction(actions, episode, static_cast<int>(t));
      if (!action.ok()) return action.status();
      if (turn.task_index < 0 || turn.task_index >= m.num_tasks_)
        return absl::InvalidArgumentError(absl::StrCat("episode ", episode.id, " turn ", t,
                                                       ": task index ", turn.task_index,
                                                       " outside [0, ", m.num_tasks_, ")"));
      const double value = refusal.ResponseScore(turn);
      const int cell = turn.task_index * m.num_actions_ + *action;
      cell_sum[cell] += value;
      cell_n[cell] += 1;
      action_sum[*action] += value;
      action_n[*action] += 1;
      class_sum[ActionClass(actions, *action)] += value;
      class_n[ActionClass(actions, *action)] += 1;
      sum += value;
      n += 1;
    }
  }
  if (n == 0)
    return absl::InvalidArgumentError("the task x action model needs at least one logged turn");
  m.global_ = sum / n;
  m.cells_.resize(cell_sum.size());
  m.max_value_ = m.global_;
  // (sum + m * prior) / (n + m), the prior itself when there is nothing to weigh.
  auto shrink = [prior_turns](double sum, double n, double prior) {
    return n + prior_turns > 0 ? (sum + prior_turns * prior) / (n + prior_turns) : prior;
  };
  for (int a = 0; a < m.num_actions_; ++a) {
    const int c = ActionClass(actions, a);
    const double action_mean =
        shrink(action_sum[a], action_n[a], shrink(class_sum[c], class_n[c], m.global_));
    for (int k = 0; k < m.num_tasks_; ++k) {
      const int cell = k * m.num_actions_ + a;
      m.cells_[cell] = shrink(cell_sum[cell], cell_n[cell], action_mean);
      m.max_value_ = std::max(m.max_value_, m.cells_[cell]);
    }
  }
  return m;
}

int TaskActionMeans::ActionClass(const ActionTable& actions, int action) {
  if (!actions.is_cloud(action)) return 0;
  return actions.views(action).empty() ? 1 : 2;
}

double TaskActionMeans::Estimate(int task, int action) const {
  if (task < 0 || task >= num_tasks_ || action < 0 || action >= num_actions_) return global_;
  return cells_[task * num_actions_ + action];
}

}  // namespace lcio::env
