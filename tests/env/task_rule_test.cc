// The task rule (env/task_rule.h): what it does at decision time, that its
// selection changes a task's action only for a confident gain under every
// held-out scorer, and that the rule in hindsight is the best of every rule.
#include "lcio/env/task_rule.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/scorer.h"
#include "test_support.h"

namespace lcio::env {
namespace {

std::vector<int> AllEpisodes(const data::Dataset& d) {
  std::vector<int> out;
  for (size_t i = 0; i < d.episodes.size(); ++i) out.push_back(static_cast<int>(i));
  return out;
}

EvalOptions Unbounded() {
  EvalOptions o;
  o.budget.latency_s = std::numeric_limits<double>::infinity();
  o.budget.money_usd = std::numeric_limits<double>::infinity();
  o.shield = true;
  return o;
}

TEST(TaskRule, ActsPerTaskAndAnswersLocallyForAnUnknownTask) {
  TaskRulePolicy policy(TaskRule{{3, 1}}, {4, 5});
  DecisionContext context;
  context.task_index = 0;
  EXPECT_EQ(policy.Act(context, nullptr), 3);
  context.task_index = 1;
  EXPECT_EQ(policy.Act(context, nullptr), 1);
  context.task_index = 2;
  EXPECT_EQ(policy.Act(context, nullptr), 0);
  EXPECT_EQ(policy.DecisionModelEpisodes(), (std::vector<int>{4, 5}));
  // Chosen on episodes 4 and 5, it may not be scored on them.
  EXPECT_FALSE(CheckDecisionModelHeldOut(policy, {1, 5}).ok());
  EXPECT_TRUE(CheckDecisionModelHeldOut(policy, {1, 2}).ok());
  // Declared in any order (a random split's training side is shuffled): a
  // binary search over it missed most planted test episodes.
  TaskRulePolicy shuffled(TaskRule{{3, 1}}, {9, 2, 7, 4, 8, 1, 6});
  for (int planted : {9, 2, 7, 4, 8, 1, 6})
    EXPECT_FALSE(CheckDecisionModelHeldOut(shuffled, {0, planted, 3}).ok()) << planted;
  EXPECT_TRUE(CheckDecisionModelHeldOut(shuffled, {0, 3, 5}).ok());
}

TEST(TaskRule, SelectsTheBetterActionOfEachTask) {
  // Task a answers well locally, task b in the cloud: no single action is as
  // good as deciding per task, under any scorer.
  const data::Dataset d = testing::TwoTaskDataset(
      [](int task, int action) { return (task == 0) == (action == 0) ? 9.0 : 1.0; });
  auto selected = SelectTaskRule(d, AllEpisodes(d), testing::TwoViewConfig(), Unbounded(), 1);
  ASSERT_TRUE(selected.ok()) << selected.status();
  ASSERT_EQ(selected->rule.action_of_task.size(), 2u);
  EXPECT_EQ(selected->rule.action_of_task[0], 0);
  EXPECT_NE(selected->rule.action_of_task[1], 0);
  EXPECT_GT(selected->worst_margin, selected->start_worst_margin);
  EXPECT_GT(selected->worst_margin, 0);
  // It declares what it consulted: its selection episodes, whatever their order.
  std::vector<int> sorted = AllEpisodes(d);
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(selected->consulted_episodes, sorted);
  EXPECT_NE(DescribeTaskRule(selected->rule, d, ActionTable::Create(2).value()).find("a -> local"),
            std::string::npos);
}

TEST(TaskRule, KeepsOneActionWhenTasksDoNotDiffer) {
  // Every turn scores the same: no change is a gain, so every task keeps the
  // best single action.
  const data::Dataset d = testing::TwoTaskDataset([](int, int) { return 5.0; });
  auto selected = SelectTaskRule(d, AllEpisodes(d), testing::TwoViewConfig(), Unbounded(), 1);
  ASSERT_TRUE(selected.ok()) << selected.status();
  EXPECT_EQ(selected->rule.action_of_task[0], selected->rule.action_of_task[1]);
  EXPECT_EQ(selected->worst_margin, selected->start_worst_margin);
}

TEST(TaskRule, NeedsTwoSelectionEpisodes) {
  const data::Dataset d = testing::SmallDataset();
  auto selected = SelectTaskRule(d, {0}, testing::TwoViewConfig(), Unbounded(), 1);
  EXPECT_EQ(selected.status().code(), absl::StatusCode::kInvalidArgument);
}

// The worst case over `scorers` of `rule`'s mean reward minus the best fixed
// action's, written out from EvaluatePolicy.
double WorstMarginOf(const TaskRule& rule,
                     const std::vector<std::shared_ptr<const Scorer>>& scorers,
                     const data::Dataset& d, int num_actions) {
  const std::vector<int> episodes = AllEpisodes(d);
  double worst = std::numeric_limits<double>::infinity();
  for (const auto& scorer : scorers) {
    TaskRulePolicy policy(rule, {});
    const double reward = EvaluatePolicy(*scorer, d, episodes, policy, Unbounded()).reward;
    double best_fixed = -std::numeric_limits<double>::infinity();
    for (int a = 0; a < num_actions; ++a) {
      TaskRulePolicy fixed(TaskRule{std::vector<int>(d.tasks.size(), a)}, {});
      best_fixed =
          std::max(best_fixed, EvaluatePolicy(*scorer, d, episodes, fixed, Unbounded()).reward);
    }
    worst = std::min(worst, reward - best_fixed);
  }
  return worst;
}

TEST(TaskRuleInHindsight, IsTheBestOfEveryRule) {
  // Task a answers best locally, task b with the cloud and view 1, and every
  // other answer is worse by an amount of its own: one rule is best.
  const data::Dataset d = testing::TwoTaskDataset([](int task, int action) {
    if (task == 0) return action == 0 ? 9.0 : 2.0 + action;
    return action == 1 ? 8.0 : 1.0 + 0.5 * action;
  });
  const SimulatorConfig config = testing::TwoViewConfig();
  auto scorers = HeldOutScorersFittedOn(d, AllEpisodes(d), config, 1);
  ASSERT_TRUE(scorers.ok()) << scorers.status();
  auto best = BestTaskRuleInHindsight(*scorers, d, AllEpisodes(d), Unbounded());
  ASSERT_TRUE(best.ok()) << best.status();
  const int num_actions = (*scorers).front()->primary().actions().size();
  ASSERT_EQ(num_actions, 5);
  EXPECT_EQ(best->evaluations, num_actions * num_actions);
  // Its reported margin is its own, and no rule of the 25 has a larger one.
  EXPECT_NEAR(best->worst_margin, WorstMarginOf(best->rule, *scorers, d, num_actions), 1e-12);
  EXPECT_GT(best->worst_margin, best->start_worst_margin);
  for (int a = 0; a < num_actions; ++a)
    for (int b = 0; b < num_actions; ++b)
      EXPECT_LE(WorstMarginOf(TaskRule{{a, b}}, *scorers, d, num_actions),
                best->worst_margin + 1e-12)
          << a << ", " << b;
  // And at least as good as the confident ascent on the same episodes.
  auto selected = SelectTaskRule(d, AllEpisodes(d), config, Unbounded(), 1);
  ASSERT_TRUE(selected.ok()) << selected.status();
  EXPECT_GE(best->worst_margin, selected->worst_margin - 1e-12);
}

TEST(TaskRuleInHindsight, RefusesTooManyRulesAndNoScorers) {
  data::Dataset d = testing::TwoTaskDataset([](int, int) { return 5.0; });
  auto scorers = HeldOutScorersFittedOn(d, AllEpisodes(d), testing::TwoViewConfig(), 1);
  ASSERT_TRUE(scorers.ok()) << scorers.status();
  EXPECT_EQ(BestTaskRuleInHindsight({}, d, AllEpisodes(d), Unbounded()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BestTaskRuleInHindsight(*scorers, d, {}, Unbounded()).status().code(),
            absl::StatusCode::kInvalidArgument);
  // 5 actions ^ 9 tasks = 1953125 rules: refused before any is scored.
  for (int t = 2; t < 9; ++t) d.tasks.push_back(absl::StrCat("t", t));
  auto refused = BestTaskRuleInHindsight(*scorers, d, AllEpisodes(d), Unbounded());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("5 actions ^ 9 tasks is more than 100000 rules"),
            std::string::npos)
      << refused.status();
}

}  // namespace
}  // namespace lcio::env
