// A task rule: one fixed action per task, chosen on a split's training side
// for the worst case over the held-out scorers (docs/evaluation.md).
//
// Why it exists: on the M4A1 sample the held-out scorers disagree about the
// best single action (the kNN scorers favour answering locally, the task x
// action means favour the cloud with a view), and no policy trained against
// one response model beats both. A rule with one parameter per task cannot
// steer a response model through the history window, is selected by the same
// criterion the protocol reports, and so gives an honest answer to "does
// deciding per task beat every fixed action on episodes it has not seen?".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/policy_interface.h"
#include "lcio/env/scorer.h"
#include "lcio/env/simulator.h"

namespace lcio::env {

struct TaskRule {
  std::vector<int> action_of_task;  // [task index] -> action
};

// "task 0 -> 2, task 1 -> 0, ..." with the tasks' and actions' names.
std::string DescribeTaskRule(const TaskRule& rule, const data::Dataset& dataset,
                             const ActionTable& actions);

class TaskRulePolicy : public Policy {
 public:
  // `selected_on`: the dataset episodes the rule was chosen on (its decision
  // model, for CheckDecisionModelHeldOut). `in_hindsight`: chosen on the
  // episodes it is scored on (BestTaskRuleInHindsight): a reference, never a
  // decision maker, so is_bound() exempts it from that check as it does the
  // Oracle.
  TaskRulePolicy(TaskRule rule, std::vector<int> selected_on, std::string name = "Task rule",
                 bool in_hindsight = false)
      : rule_(std::move(rule)),
        selected_on_(std::move(selected_on)),
        name_(std::move(name)),
        in_hindsight_(in_hindsight) {}
  std::string name() const override { return name_; }
  int Act(const DecisionContext& context, std::vector<double>* scores) override;
  std::vector<int> DecisionModelEpisodes() const override { return selected_on_; }
  bool is_bound() const override { return in_hindsight_; }
  const TaskRule& rule() const { return rule_; }

 private:
  TaskRule rule_;
  std::vector<int> selected_on_;
  std::string name_;
  bool in_hindsight_;
};

struct TaskRuleSelection {
  TaskRule rule;
  // The worst case over the selection scorers of the rule's margin over the
  // best fixed action there (mean reward on the selection episodes).
  double worst_margin = 0;
  // The same for the best single fixed action (the rule it started from).
  double start_worst_margin = 0;
  int evaluations = 0;
  // Every episode the selection consulted: those it scored rules on and those
  // its scorers were fitted on (sorted). What a TaskRulePolicy built from it
  // declares, so the declaration cannot drift from the selection.
  std::vector<int> consulted_episodes;
};

// Chooses the rule on `episodes` (a split's training side): the held_out,
// cross_fit and task_action scorers are fitted on those episodes, and the
// rule maximising the smallest margin over the best fixed action under each
// is found by coordinate ascent from the best single action (ties keep the
// current action, so a task changes only for a strict gain). `options` gives
// the budget and the shield, as in the evaluation.
absl::StatusOr<TaskRuleSelection> SelectTaskRule(const data::Dataset& dataset,
                                                 const std::vector<int>& episodes,
                                                 const SimulatorConfig& config,
                                                 const EvalOptions& options, uint64_t seed);

// The most task rules BestTaskRuleInHindsight searches (actions ^ tasks).
inline constexpr int kMaxHindsightRules = 100000;

// The best task rule in hindsight: every rule scored on `episodes` by
// `scorers`, the one whose worst case over them of the mean margin over the
// best fixed action is largest (worst_margin; start_worst_margin is the best
// single action's). Given a split's test side and the held-out scorers fitted
// there it is an in-hindsight reference: like the Oracle it has seen the
// episodes it is scored on; unlike it, it bounds task rules only (on those
// episodes, by this criterion), and as the best of many rules on few episodes
// it is biased upward. It asks whether the scorers' disagreement could be met
// per task at all, not what a rule chosen without the test side reaches.
// INVALID_ARGUMENT above kMaxHindsightRules rules, or without scorers or
// episodes.
absl::StatusOr<TaskRuleSelection> BestTaskRuleInHindsight(
    const std::vector<std::shared_ptr<const Scorer>>& scorers, const data::Dataset& dataset,
    const std::vector<int>& episodes, const EvalOptions& options);

}  // namespace lcio::env
