// The task rule (env/task_rule.h): what it does at decision time, and that
// its selection changes a task's action only for a confident gain under
// every held-out scorer.
#include "lcio/env/task_rule.h"

#include <limits>

#include "gtest/gtest.h"
#include "lcio/env/evaluator.h"
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

}  // namespace
}  // namespace lcio::env
