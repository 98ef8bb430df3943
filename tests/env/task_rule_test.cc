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

// 2 tasks, 2 views (actions: 0 local, 1 cloud, 2 cloud+{0}, 3 cloud+{1},
// 4 cloud+{0,1}); 40 episodes of 3 turns logging local and plain cloud in
// turn. `score(task, action)` gives every logged turn's score.
template <typename Score>
data::Dataset TwoTaskDataset(Score score) {
  data::Dataset d;
  d.tasks = {"a", "b"};
  d.num_views = 2;
  d.source = "<hand-made>";
  for (int e = 0; e < 40; ++e) {
    data::Episode ep;
    ep.id = e;
    ep.image_paths = {"v0.jpg", "v1.jpg"};
    for (int t = 0; t < 3; ++t) {
      data::Turn turn;
      turn.task_index = (e / 2 + t) % 2;
      turn.task = d.tasks[turn.task_index];
      const int a = (e + t) % 2;  // 0 local, 1 cloud
      turn.target = a == 0 ? data::Target::kLocal : data::Target::kCloud;
      turn.answer = "fine";
      turn.score = score(turn.task_index, a);
      ep.turns.push_back(turn);
      ep.association.push_back({0.2, 0.3});
    }
    d.episodes.push_back(ep);
  }
  return d;
}

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
  const data::Dataset d =
      TwoTaskDataset([](int task, int action) { return (task == 0) == (action == 0) ? 9.0 : 1.0; });
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
  const data::Dataset d = TwoTaskDataset([](int, int) { return 5.0; });
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
