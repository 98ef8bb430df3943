// The evaluation protocol: each scorer's definition, the held-out check on
// decision models, and the worst case over held-out scorers.
#include "lcio/env/scorer.h"

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/task_action_means.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace lcio::env {
namespace {

using lcio::testing::SmallDataset;
using lcio::testing::TwoViewConfig;

// Two episodes whose every cell is worked out by hand below.
//   ep 0: a local 1, a local 3, b cloud 2
//   ep 1: b local 4, a cloud+{0} 5
data::Dataset HandCounted() {
  data::Dataset d;
  d.tasks = {"a", "b"};
  d.num_views = 2;
  d.source = "<hand-counted>";
  struct Logged {
    int task;
    bool cloud;
    std::vector<int> views;
    double score;
  };
  const std::vector<std::vector<Logged>> episodes = {
      {{0, false, {}, 1}, {0, false, {}, 3}, {1, true, {}, 2}},
      {{1, false, {}, 4}, {0, true, {0}, 5}}};
  for (size_t e = 0; e < episodes.size(); ++e) {
    data::Episode ep;
    ep.id = static_cast<int64_t>(e);
    ep.image_paths = {"v0.jpg", "v1.jpg"};
    for (const Logged& l : episodes[e]) {
      data::Turn turn;
      turn.task = d.tasks[l.task];
      turn.task_index = l.task;
      turn.target = l.cloud ? data::Target::kCloud : data::Target::kLocal;
      turn.uploaded_views = l.views;
      turn.answer = "fine";
      turn.score = l.score;
      ep.turns.push_back(turn);
      ep.association.push_back({0.2, 0.3});
    }
    d.episodes.push_back(ep);
  }
  return d;
}

TEST(TaskActionMeansTest, CellsShrinkTowardActionClassAndGlobalMeans) {
  const data::Dataset d = HandCounted();
  auto actions = ActionTable::Create(2);
  ASSERT_TRUE(actions.ok());
  // Actions: 0 local, 1 cloud, 2 cloud+{0}, 3 cloud+{1}, 4 cloud+{0,1}.
  auto m = TaskActionMeans::Fit(d, {0, 1}, *actions, data::RefusalRule{}, 2.0);
  ASSERT_TRUE(m.ok()) << m.status();
  // global 15/5 = 3; class local (8 + 2*3)/(3 + 2) = 2.8; cloud without views
  // (2 + 6)/3; cloud with views (5 + 6)/3.
  EXPECT_DOUBLE_EQ(m->global_mean(), 3.0);
  const double local_action = (8 + 2 * 2.8) / 5;  // 2.72
  EXPECT_NEAR(m->Estimate(0, 0), (4 + 2 * local_action) / 4, 1e-12);
  EXPECT_NEAR(m->Estimate(1, 0), (4 + 2 * local_action) / 3, 1e-12);
  const double cloud_action = (2 + 2 * (8.0 / 3)) / 3;
  EXPECT_NEAR(m->Estimate(1, 1), (2 + 2 * cloud_action) / 3, 1e-12);
  EXPECT_NEAR(m->Estimate(0, 1), cloud_action, 1e-12);  // empty cell: its action
  const double with_views = 11.0 / 3;
  const double view0_action = (5 + 2 * with_views) / 3;
  EXPECT_NEAR(m->Estimate(0, 2), (5 + 2 * view0_action) / 3, 1e-12);
  EXPECT_NEAR(m->Estimate(1, 2), view0_action, 1e-12);
  // Never logged: the class of views-uploading cloud calls.
  EXPECT_NEAR(m->Estimate(0, 3), with_views, 1e-12);
  EXPECT_NEAR(m->Estimate(1, 4), with_views, 1e-12);
  // Out of range: the global mean.
  EXPECT_DOUBLE_EQ(m->Estimate(-1, 0), 3.0);
  EXPECT_DOUBLE_EQ(m->Estimate(0, 99), 3.0);
  EXPECT_NEAR(m->max_value(), (5 + 2 * view0_action) / 3, 1e-12);
  // No prior: plain cell means where there are turns.
  auto plain = TaskActionMeans::Fit(d, {0, 1}, *actions, data::RefusalRule{}, 0.0);
  ASSERT_TRUE(plain.ok());
  EXPECT_DOUBLE_EQ(plain->Estimate(0, 0), 2.0);
  EXPECT_DOUBLE_EQ(plain->Estimate(1, 0), 4.0);
  EXPECT_DOUBLE_EQ(plain->Estimate(0, 2), 5.0);
  EXPECT_FALSE(TaskActionMeans::Fit(d, {}, *actions, data::RefusalRule{}).ok());
  EXPECT_FALSE(TaskActionMeans::Fit(d, {2}, *actions, data::RefusalRule{}).ok());
  EXPECT_FALSE(TaskActionMeans::Fit(d, {0}, *actions, data::RefusalRule{}, -1).ok());
}

TEST(TaskActionMeansTest, RefusalsScoreZero) {
  data::Dataset d = HandCounted();
  d.episodes[1].turns[0].answer = "sorry, I can't";
  auto actions = ActionTable::Create(2);
  auto m = TaskActionMeans::Fit(d, {0, 1}, *actions, data::RefusalRule{}, 0.0);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->Estimate(1, 0), 0.0);
  EXPECT_DOUBLE_EQ(m->global_mean(), 11.0 / 5);
}

TEST(ScorerTest, EachKindIsFittedWhereItsDefinitionSays) {
  const data::Dataset d = SmallDataset();
  const Split split{{0, 1, 2, 3, 4}, {5, 6}};
  const SimulatorConfig config = TwoViewConfig();
  auto in_sample = Scorer::Create(ScorerKind::kInSample, d, split, config, 1);
  auto held_out = Scorer::Create(ScorerKind::kHeldOut, d, split, config, 1);
  auto cross_fit = Scorer::Create(ScorerKind::kCrossFit, d, split, config, 1);
  auto task_action = Scorer::Create(ScorerKind::kTaskAction, d, split, config, 1);
  ASSERT_TRUE(in_sample.ok() && held_out.ok() && cross_fit.ok() && task_action.ok());
  EXPECT_EQ((*in_sample)->FittedEpisodes(), split.train);
  EXPECT_EQ((*held_out)->FittedEpisodes(), split.test);
  EXPECT_EQ((*task_action)->FittedEpisodes(), split.test);
  EXPECT_EQ((*cross_fit)->FittedEpisodes(), split.test);
  EXPECT_EQ((*in_sample)->name(), "in_sample");
  EXPECT_EQ((*cross_fit)->name(), "cross_fit");
  // Cross-fitting: each test episode is scored by a kNN fitted on the other
  // test episodes only (two episodes: two folds of one).
  ASSERT_EQ((*cross_fit)->num_simulators(), 2);
  EXPECT_EQ((*cross_fit)->For(d.episodes[5]).fitted_episodes(), std::vector<int>{6});
  EXPECT_EQ((*cross_fit)->For(d.episodes[6]).fitted_episodes(), std::vector<int>{5});

  // task_action answers the test side's task x action means, kNN the others.
  auto means =
      TaskActionMeans::Fit(d, split.test, (*task_action)->primary().actions(), config.refusal);
  ASSERT_TRUE(means.ok());
  DecisionContext context;
  context.association = {0.1, 0.2};
  for (int task = 0; task < 2; ++task) {
    context.task_index = task;
    for (int a = 0; a < 5; ++a) {
      EXPECT_DOUBLE_EQ((*task_action)->primary().Response(context, a), means->Estimate(task, a));
      std::vector<double> key(ResponseKeyWidth(2, config.time_span));
      EncodeResponseKey((*held_out)->primary().actions(), config.time_span, context, a, key.data());
      EXPECT_DOUBLE_EQ((*held_out)->primary().Response(context, a),
                       (*held_out)->primary().estimator()->Estimate(key.data()));
    }
  }

  // Scoring through a Scorer equals scoring with the simulator it assigns.
  FixedPolicy cloud(1, "cloud");
  const EvalOptions options{Budget{100, 1}, false, 1};
  auto test_fitted = Simulator::Create(d, split.test, config);
  ASSERT_TRUE(test_fitted.ok());
  const PolicyResult via_scorer = EvaluatePolicy(**held_out, d, split.test, cloud, options);
  const PolicyResult direct = EvaluatePolicy(**test_fitted, d, split.test, cloud, options);
  EXPECT_DOUBLE_EQ(via_scorer.reward, direct.reward);
  // in_sample scores exactly as a simulator fitted on the training side does,
  // which differs from the test side's.
  auto train_fitted = Simulator::Create(d, split.train, config);
  ASSERT_TRUE(train_fitted.ok());
  const PolicyResult in_sample_result = EvaluatePolicy(**in_sample, d, split.test, cloud, options);
  EXPECT_DOUBLE_EQ(in_sample_result.reward,
                   EvaluatePolicy(**train_fitted, d, split.test, cloud, options).reward);
  EXPECT_NE(in_sample_result.reward, direct.reward);
  // Cross-fitted scores differ from the leaky held-out ones (no self-hits).
  const PolicyResult crossed = EvaluatePolicy(**cross_fit, d, split.test, cloud, options);
  EXPECT_NE(crossed.reward, direct.reward);

  EXPECT_FALSE(
      Scorer::Create(ScorerKind::kCrossFit, d, Split{{0, 1, 2, 3, 4, 5}, {6}}, config, 1).ok());
  EXPECT_FALSE(ParseScorerKind("held-out").ok());
  for (ScorerKind kind : AllScorerKinds()) EXPECT_EQ(*ParseScorerKind(ScorerKindName(kind)), kind);
  EXPECT_FALSE(IsHeldOut(ScorerKind::kInSample));
  EXPECT_TRUE(IsHeldOut(ScorerKind::kTaskAction));
}

TEST(ScorerTest, OracleAndClairvoyantGreedyPlanWithTheEpisodesOwnScorer) {
  const data::Dataset d = SmallDataset();
  const Split split{{0, 1, 2, 3, 4}, {5, 6}};
  auto cross_fit = Scorer::Create(ScorerKind::kCrossFit, d, split, TwoViewConfig(), 1);
  ASSERT_TRUE(cross_fit.ok());
  const Budget budget{100, 1};
  for (int e : split.test) {
    // The fold's simulator alone, as a single-simulator Oracle, plans the same.
    auto alone =
        Scorer::Single("fold", std::shared_ptr<const Simulator>(std::shared_ptr<void>(),
                                                                &(*cross_fit)->For(d.episodes[e])));
    OraclePolicy per_episode(*cross_fit), single(alone);
    per_episode.BeginEpisode(d.episodes[e], budget, 0);
    single.BeginEpisode(d.episodes[e], budget, 0);
    EXPECT_EQ(per_episode.plan(), single.plan());
    EXPECT_DOUBLE_EQ(per_episode.plan_reward(), single.plan_reward());
  }
  GreedyPolicy clairvoyant(*cross_fit, "Greedy (clairvoyant)", true);
  OraclePolicy oracle(*cross_fit);
  const EvalOptions options{budget, false, 1};
  const PolicyResult g = EvaluatePolicy(**cross_fit, d, split.test, clairvoyant, options);
  const PolicyResult o = EvaluatePolicy(**cross_fit, d, split.test, oracle, options);
  EXPECT_GE(o.reward, g.reward - 1e-12);
}

TEST(HeldOutCheckTest, FailsWhenADecisionModelHasSeenATestEpisode) {
  const data::Dataset d = SmallDataset();
  const Split split{{0, 1, 2, 3, 4}, {5, 6}};
  auto train = Simulator::Create(d, split.train, TwoViewConfig());
  auto leaky = Simulator::Create(d, {0, 1, 2, 3, 4, 6}, TwoViewConfig());
  ASSERT_TRUE(train.ok() && leaky.ok());
  EXPECT_TRUE(CheckDecisionModelHeldOut(GreedyPolicy(*train), split.test).ok());
  const absl::Status s = CheckDecisionModelHeldOut(GreedyPolicy(*leaky), split.test);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("episode index 6"), std::string::npos) << s;
  // Bounds know the scorer by design; model-free baselines consult nothing.
  auto held_out = Scorer::Create(ScorerKind::kHeldOut, d, split, TwoViewConfig(), 1);
  ASSERT_TRUE(held_out.ok());
  EXPECT_TRUE(
      CheckDecisionModelHeldOut(GreedyPolicy(*held_out, "clairvoyant", true), split.test).ok());
  EXPECT_FALSE(
      CheckDecisionModelHeldOut(GreedyPolicy(*held_out, "not a bound", false), split.test).ok());
  EXPECT_TRUE(CheckDecisionModelHeldOut(OraclePolicy(*held_out), split.test).ok());
  for (const auto& p : MakeModelFreeBaselines((*train)->actions(), true))
    EXPECT_TRUE(CheckDecisionModelHeldOut(*p, split.test).ok());
}

AggregateResult Row(const std::string& name, std::vector<double> by_split) {
  AggregateResult r;
  r.name = name;
  r.shielded = true;
  r.splits = static_cast<int>(by_split.size());
  for (double v : by_split) r.reward += v / by_split.size();
  r.reward_by_split = std::move(by_split);
  return r;
}

TEST(ResponseModelFamilyTest, PessimisticIsTheSmallerOfTheTwoAnswers) {
  const data::Dataset d = SmallDataset();
  SimulatorConfig config = TwoViewConfig();
  auto knn = Simulator::Create(d, {0, 1, 2, 3, 4}, config);
  config.response_model = ResponseModelFamily::kTaskActionMeans;
  auto means = Simulator::Create(d, {0, 1, 2, 3, 4}, config);
  config.response_model = ResponseModelFamily::kPessimistic;
  auto pessimistic = Simulator::Create(d, {0, 1, 2, 3, 4}, config);
  ASSERT_TRUE(knn.ok() && means.ok() && pessimistic.ok());
  DecisionContext context;
  context.association = {0.3, 0.1};
  int smaller_from_each[2] = {0, 0};
  for (int task = 0; task < 2; ++task) {
    context.task_index = task;
    for (int a = 0; a < 5; ++a) {
      const double k = (*knn)->Response(context, a), m = (*means)->Response(context, a);
      EXPECT_DOUBLE_EQ((*pessimistic)->Response(context, a), std::min(k, m));
      ++smaller_from_each[k < m ? 0 : 1];
    }
    context.previous_actions.push_back(2);
    context.previous_tasks.push_back(task);
  }
  EXPECT_GT(smaller_from_each[0], 0);  // the hand-made data exercise both sides
  EXPECT_GT(smaller_from_each[1], 0);
  EXPECT_DOUBLE_EQ((*pessimistic)->max_response(),
                   std::min((*knn)->max_response(), (*means)->max_response()));
  for (auto family : {ResponseModelFamily::kKnn, ResponseModelFamily::kTaskActionMeans,
                      ResponseModelFamily::kPessimistic})
    EXPECT_EQ(*ParseResponseModelFamily(ResponseModelFamilyName(family)), family);
  EXPECT_FALSE(ParseResponseModelFamily("optimistic").ok());
}

TEST(WorstCaseTest, SmallestPairedMarginOverHeldOutScorersAgainstTheBestOtherBaseline) {
  using R = MethodRole;
  // Under held_out the candidate leads Greedy; under task_action it trails
  // Local by less than a standard error; in_sample (worse still) is ignored.
  ScoredRows in_sample{"in_sample",
                       false,
                       {Row("Local", {1, 1, 1}), Row("P", {0, 0, 0}), Row("Oracle", {2, 2, 2})},
                       {R::kBaseline, R::kCandidate, R::kBound},
                       2};
  ScoredRows held_out{
      "held_out",
      true,
      {Row("Local", {0.8, 0.8, 0.8}), Row("Fixed 0 (local)", {0.8, 0.8, 0.8}),
       Row("Greedy", {0.9, 0.9, 0.9}), Row("Cloud", {5, 5, 5}), Row("P", {1.0, 1.1, 1.2}),
       Row("Oracle", {2, 2, 2})},
      {R::kBaseline, R::kBaseline, R::kBaseline, R::kReference, R::kCandidate, R::kBound},
      5};
  ScoredRows task_action{
      "task_action",
      true,
      {Row("Local", {1.0, 1.0, 1.0}), Row("Fixed 0 (local)", {1.0, 1.0, 1.0}),
       Row("Greedy", {0.5, 0.5, 0.5}), Row("Cloud", {5, 5, 5}), Row("P", {0.9, 1.0, 1.05}),
       Row("Oracle", {2, 2, 2})},
      {R::kBaseline, R::kBaseline, R::kBaseline, R::kReference, R::kCandidate, R::kBound},
      5};
  const auto rows = WorstCase({in_sample, held_out, task_action}, true);
  const auto p = std::find_if(rows.begin(), rows.end(), [](auto& r) { return r.name == "P"; });
  ASSERT_NE(p, rows.end());
  EXPECT_EQ(p->scorer, "task_action");
  EXPECT_EQ(p->best_baseline, "Local");  // Cloud is a reference, not a baseline
  const double d1 = -0.1, d2 = 0.0, d3 = 0.05, mean = (d1 + d2 + d3) / 3;
  const double var =
      ((d1 - mean) * (d1 - mean) + (d2 - mean) * (d2 - mean) + (d3 - mean) * (d3 - mean)) / 2;
  EXPECT_NEAR(p->margin.mean, mean, 1e-12);
  EXPECT_NEAR(p->margin.standard_error, std::sqrt(var / 3), 1e-12);
  EXPECT_EQ(p->verdict, "tie");
  EXPECT_NEAR(p->percent_of_oracle, 100 * ((0.9 + 1.0 + 1.05) / 3) / 2, 1e-9);
  // Local's rival is Greedy under held_out, not Fixed 0 (the same decisions).
  const auto local =
      std::find_if(rows.begin(), rows.end(), [](auto& r) { return r.name == "Local"; });
  ASSERT_NE(local, rows.end());
  EXPECT_EQ(local->scorer, "held_out");
  EXPECT_EQ(local->best_baseline, "Greedy");
  EXPECT_EQ(local->verdict, "behind");
  // Bounds and references get no row; unshielded rows are another table.
  for (const auto& r : rows) EXPECT_TRUE(r.name != "Oracle" && r.name != "Cloud") << r.name;
  EXPECT_TRUE(WorstCase({in_sample, held_out, task_action}, false).empty());
  EXPECT_TRUE(WorstCase({in_sample}, true).empty());
  // A candidate that decides exactly like the best baseline ties with it.
  ScoredRows copy{
      "held_out",
      true,
      {Row("Local", {0.8, 0.9, 1.0}), Row("Fixed 1", {1.0, 1.1, 1.2}), Row("Q", {1.0, 1.1, 1.2})},
      {R::kBaseline, R::kBaseline, R::kCandidate},
      -1};
  const auto copied = WorstCase({copy}, true);
  ASSERT_EQ(copied.size(), 3u);
  EXPECT_EQ(copied[2].name, "Q");
  EXPECT_EQ(copied[2].best_baseline, "Fixed 1");
  EXPECT_EQ(copied[2].margin.mean, 0.0);
  EXPECT_EQ(copied[2].verdict, "tie");
  // A baseline's twin is skipped: Fixed 1's rival is Local.
  EXPECT_EQ(copied[1].best_baseline, "Local");
}

// Without the shield a row can go over a budget, and the reward carries no
// penalty for it: such a baseline is no bar (it made a shielded Greedy look
// "behind"), and such a candidate's verdict says so whatever its margin. An
// artifact that saw the test episodes gets no row.
TEST(WorstCaseTest, RowsOverABudgetAreNoBarAndGetNoRanking) {
  using R = MethodRole;
  AggregateResult over = Row("Fixed 2", {3, 3, 3});
  over.shielded = false;
  over.share_over_latency = 1.0;
  AggregateResult local = Row("Local", {0.8, 0.8, 0.8}), greedy = Row("Greedy", {1.0, 1.1, 1.2});
  AggregateResult p = Row("P", {2, 2, 2}), seen = Row("S", {9, 9, 9});
  for (AggregateResult* r : {&local, &greedy, &p, &seen}) r->shielded = false;
  p.share_over_money = 0.25;
  ScoredRows held_out{"held_out",
                      true,
                      {local, over, greedy, p, seen},
                      {R::kBaseline, R::kBaseline, R::kBaseline, R::kCandidate, R::kNotHeldOut},
                      -1};
  const auto rows = WorstCase({held_out}, false);
  ASSERT_EQ(rows.size(), 4u);  // S has none
  EXPECT_EQ(rows[2].name, "Greedy");
  EXPECT_EQ(rows[2].best_baseline, "Local");  // not Fixed 2, over the latency budget
  EXPECT_EQ(rows[2].verdict, "ahead");
  EXPECT_EQ(rows[1].name, "Fixed 2");
  EXPECT_EQ(rows[1].verdict, "over budget");
  EXPECT_EQ(rows[3].name, "P");
  EXPECT_TRUE(rows[3].over_budget);
  EXPECT_EQ(rows[3].verdict, "over budget");  // ahead of Greedy by 0.9, but over budget
  for (const auto& r : rows) EXPECT_NE(r.name, "S");
  EXPECT_STREQ(MethodRoleName(R::kNotHeldOut), "not held out");
}

TEST(WorstCaseTest, ARuleInHindsightGetsARowWithItsRoleButIsNoBaseline) {
  using R = MethodRole;
  // H (hindsight) scores above every baseline: it has its own row, marked as
  // hindsight, and is nobody's rival; the Oracle (a bound) has no row.
  ScoredRows held_out{
      "held_out",
      true,
      {Row("Local", {0.8, 0.8, 0.8}), Row("Fixed 1", {0.6, 0.6, 0.6}), Row("P", {0.7, 0.8, 0.9}),
       Row("H", {1.5, 1.5, 1.5}), Row("Oracle", {2, 2, 2})},
      {R::kBaseline, R::kBaseline, R::kCandidate, R::kHindsight, R::kBound},
      4};
  const auto rows = WorstCase({held_out}, true);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].role, R::kBaseline);
  EXPECT_EQ(rows[0].best_baseline, "Fixed 1");  // not H
  EXPECT_EQ(rows[2].role, R::kCandidate);
  EXPECT_EQ(rows[2].best_baseline, "Local");
  EXPECT_EQ(rows[3].name, "H");
  EXPECT_EQ(rows[3].role, R::kHindsight);
  EXPECT_EQ(rows[3].best_baseline, "Local");
  EXPECT_EQ(rows[3].verdict, "ahead");
  const nlohmann::json json = nlohmann::json::parse(ToJson({held_out}, rows, "{}"));
  ASSERT_EQ(json["worst_case"].size(), 4u);
  EXPECT_EQ(json["worst_case"][0]["role"], "baseline");
  EXPECT_EQ(json["worst_case"][2]["role"], "candidate");
  EXPECT_EQ(json["worst_case"][3]["role"], "hindsight");
  EXPECT_NE(WorstCaseMarkdown(rows).find("| H | hindsight | on | held_out |"), std::string::npos)
      << WorstCaseMarkdown(rows);
}

TEST(DealFoldsTest, SeededBalancedAndComplete) {
  const std::vector<int> a = DealFolds(23, 5, 7), b = DealFolds(23, 5, 7);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, DealFolds(23, 5, 8));
  std::vector<int> sizes(5, 0);
  for (int f : a) ++sizes[f];
  EXPECT_LE(
      *std::max_element(sizes.begin(), sizes.end()) - *std::min_element(sizes.begin(), sizes.end()),
      1);
}

TEST(LoggedTurnErrorTest, PredictionErrorOnHandCountedTurns) {
  const data::Dataset d = HandCounted();
  SimulatorConfig config = TwoViewConfig();
  config.response_model = ResponseModelFamily::kTaskActionMeans;
  auto model = Simulator::Create(d, {0, 1}, config);
  ASSERT_TRUE(model.ok());
  auto error = LoggedTurnError(**model, d, {0, 1});
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->turns, 5);
  // The simulator's model uses the default prior of 5 turns.
  const double m = 5;
  auto shrink = [m](double sum, double n, double prior) { return (sum + m * prior) / (n + m); };
  const double local = shrink(8, 3, shrink(8, 3, 3));
  const double cloud = shrink(2, 1, shrink(2, 1, 3));
  const double view0 = shrink(5, 1, shrink(5, 1, 3));
  const double predicted[] = {shrink(4, 2, local), shrink(4, 2, local), shrink(2, 1, cloud),
                              shrink(4, 1, local), shrink(5, 1, view0)};
  const double logged[] = {1, 3, 2, 4, 5};
  double se = 0, se_mean = 0;
  for (int i = 0; i < 5; ++i) {
    se += (predicted[i] - logged[i]) * (predicted[i] - logged[i]);
    se_mean += (3 - logged[i]) * (3 - logged[i]);
  }
  EXPECT_NEAR(error->rmse, std::sqrt(se / 5), 1e-12);
  EXPECT_NEAR(error->rmse_of_mean, std::sqrt(se_mean / 5), 1e-12);
  // Pairs with different logged values: 10. The two task-a local turns tie in
  // prediction (one half); the second of them (logged 3) is predicted below the
  // cloud turn (logged 2); the other 8 pairs are ordered the same way.
  ASSERT_LT(predicted[1], predicted[2]);
  EXPECT_NEAR(error->concordance, 8.5 / 10, 1e-12);
}

}  // namespace
}  // namespace lcio::env
