#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/fallback.h"
#include "lcio/env/shield.h"
#include "lcio/env/split.h"
#include "lcio/env/training_env.h"
#include "test_support.h"

namespace lcio::env {
namespace {

TEST(ActionTableTest, ThreeViewsGiveTheReferenceLayout) {
  auto t = ActionTable::Create(3);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 9);
  const std::vector<std::vector<int>> expected = {{},     {},     {0},    {1},      {2},
                                                  {0, 1}, {0, 2}, {1, 2}, {0, 1, 2}};
  for (int a = 0; a < 9; ++a) EXPECT_EQ(t->views(a), expected[a]) << a;
  EXPECT_FALSE(t->is_cloud(0));
  EXPECT_TRUE(t->is_cloud(1));
  EXPECT_EQ(t->Describe(6), "cloud+{0,2}");
  EXPECT_EQ(*t->IndexOf(true, {2, 0}), 6);
  EXPECT_EQ(*t->IndexOf(true, {}), 1);
  EXPECT_EQ(*t->IndexOf(false, {}), 0);
  EXPECT_FALSE(t->IndexOf(true, {3}).ok());
  EXPECT_FALSE(t->IndexOf(true, {1, 1}).ok());
}

// The history window is bounded: the response kNN searches a trie as deep as
// its key on the caller's stack (10000 turns overflowed it).
// Rewards sum weights times figures up to 1000: a weight of 1e308 made
// every reward inf and the run's percentages NaN, with exit 0.
TEST(SimulatorTest, RewardWeightsAreBoundedAtCreation) {
  const data::Dataset& d = testing::EmbeddedDataset();
  SimulatorConfig config;
  config.weights.beta_usage = 1e308;
  auto sim = Simulator::Create(d, {0, 1, 2, 3}, config);
  ASSERT_FALSE(sim.ok());
  EXPECT_NE(sim.status().message().find(
                "reward weight beta_usage = 1e+308: must be a finite number in [-1e+06, 1e+06]"),
            std::string::npos)
      << sim.status();
  config.weights.beta_usage = -kMaxRewardWeight;  // the bound itself is fine
  EXPECT_TRUE(Simulator::Create(d, {0, 1, 2, 3}, config).ok());
  config.weights.beta_usage = std::nan("");
  EXPECT_FALSE(Simulator::Create(d, {0, 1, 2, 3}, config).ok());
}

TEST(SimulatorTest, TheTimeSpanIsBoundedAtCreation) {
  const data::Dataset& d = testing::EmbeddedDataset();
  std::vector<int> episodes = {0, 1, 2, 3};
  for (int span : {0, ObservationLayout::kMaxTimeSpan + 1, 10000}) {
    SimulatorConfig config;
    config.time_span = span;
    auto sim = Simulator::Create(d, episodes, config);
    ASSERT_FALSE(sim.ok()) << span;
    EXPECT_EQ(sim.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(sim.status().message().find(absl::StrCat("time_span = ", span, ": must be in [1, ",
                                                       ObservationLayout::kMaxTimeSpan, "]")),
              std::string::npos)
        << sim.status();
  }
  SimulatorConfig longest;
  longest.time_span = ObservationLayout::kMaxTimeSpan;
  auto sim = Simulator::Create(d, episodes, longest);
  ASSERT_TRUE(sim.ok()) << sim.status();
  DecisionContext context;
  context.association = {0.1, 0.2, 0.3};
  EXPECT_TRUE(std::isfinite((*sim)->Response(context, 1)));
}

TEST(ActionTableTest, AnyViewCount) {
  EXPECT_EQ(ActionTable::Create(0)->size(), 2);
  for (int x : {0, 3, 5}) EXPECT_EQ(ActionTable::SizeFor(x), ActionTable::Create(x)->size());
  EXPECT_EQ(ActionTable::SizeFor(-1), 0);
  EXPECT_EQ(ActionTable::SizeFor(ActionTable::kMaxViews + 1), 0);
  EXPECT_EQ(ActionTable::Create(5)->size(), 33);
  auto t = ActionTable::Create(4);
  EXPECT_EQ(t->views(5), std::vector<int>({3}));
  EXPECT_EQ(t->views(6), std::vector<int>({0, 1}));
  EXPECT_FALSE(ActionTable::Create(-1).ok());
  EXPECT_FALSE(ActionTable::Create(ActionTable::kMaxViews + 1).ok());
}

TEST(ObservationTest, HistoryWindowFollowsTheReference) {
  auto actions = ActionTable::Create(3);
  DecisionContext c;
  c.task_index = 2;
  std::vector<double> key(ResponseKeyWidth(3, 5));
  EncodeResponseKey(*actions, 5, c, 6, key.data());
  std::vector<double> first(25, -1.0);
  first[20] = -1, first[21] = 0, first[22] = 0, first[23] = 0, first[24] = 2;
  first.insert(first.end(), {1, 1, 0, 1});
  EXPECT_EQ(key, first);
  c.previous_actions = {6, 0};
  c.previous_tasks = {2, 3};
  c.task_index = 1;
  EncodeResponseKey(*actions, 5, c, 0, key.data());
  std::vector<double> third(10, -1.0);
  third.insert(third.end(), {-1, 0, 0, 0, 2, /*after 6*/ 1, 1, 0, 1, 3, /*after local*/ 0, 0, 0, 0,
                             1, /*action*/ 0, 0, 0, 0});
  EXPECT_EQ(key, third);
}

TEST(ObservationTest, PolicyObservationLayoutAndChecks) {
  ObservationLayout layout;
  layout.latency_scale_s = 10;
  layout.money_scale_usd = 0.01;
  auto enc = ObservationEncoder::Create(layout);
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->size(), 25 + 4 + 3 + 2);
  EXPECT_EQ(layout.FeatureNames().size(), 34u);
  DecisionContext c;
  c.task_index = 1;
  c.association = {0.1, 0.2, 0.3};
  c.remaining_latency_s = 5;
  c.remaining_money_usd = 1;  // clipped
  ASSERT_TRUE(enc->Check(c).ok());
  std::vector<float> obs(enc->size());
  enc->Encode(c, obs.data());
  EXPECT_FLOAT_EQ(obs[26], 1.0f);
  EXPECT_FLOAT_EQ(obs[29], 0.1f);
  EXPECT_FLOAT_EQ(obs[32], 0.5f);
  EXPECT_FLOAT_EQ(obs[33], ObservationLayout::kBudgetClip);
  c.association = {0.1, 2.0, 0.3};
  EXPECT_NE(enc->Check(c).message().find("association[1]"), std::string::npos);
  c.association = {0.1, 0.2};
  EXPECT_FALSE(enc->Check(c).ok());
  c.association = {0.1, 0.2, 0.3};
  c.task_index = 4;
  EXPECT_FALSE(enc->Check(c).ok());
  c.task_index = 0;
  c.remaining_latency_s = std::nan("");
  EXPECT_FALSE(enc->Check(c).ok());
  EXPECT_EQ(ObservationLayout::Reference(3, 4, 5).size(), 25);
}

TEST(ResponseEstimatorTest, TreeEqualsBruteForceWithHeavyTies) {
  std::mt19937_64 rng(7);
  const int width = 6, n = 5000;
  std::vector<double> keys, values;
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < width; ++d) keys.push_back(static_cast<double>(rng() % 3) - 1);
    values.push_back(static_cast<double>(rng() % 10));
  }
  for (int k : {1, 5, 17}) {
    auto est = ResponseEstimator::FromPoints(width, keys, values, k);
    ASSERT_TRUE(est.ok());
    EXPECT_LT((*est)->num_unique_points(), static_cast<size_t>(n));
    for (int q = 0; q < 300; ++q) {
      double query[width];
      for (double& x : query) x = static_cast<double>(rng() % 5) - 2;
      const double tree = (*est)->Estimate(query), brute = (*est)->EstimateBruteForce(query);
      EXPECT_NEAR(tree, brute, 1e-12 * std::max(1.0, std::abs(brute))) << "k=" << k;
    }
  }
}

TEST(ResponseEstimatorTest, TiesAtTheKthDistanceAreAllIncluded) {
  // Query at the origin: one point at distance 0 (value 0) and six at distance
  // 1 (values 1..6). With k = 5 all seven count.
  std::vector<double> keys = {0, 0, 1, 0, -1, 0, 0, 1, 0, -1, 1, 0, -1, 0, 5, 5};
  std::vector<double> values = {0, 1, 2, 3, 4, 5, 6, 100};
  keys.resize(16);
  auto est = ResponseEstimator::FromPoints(2, keys, values, 5);
  ASSERT_TRUE(est.ok());
  const double q[2] = {0, 0};
  const double w0 = 1 / 1e-6, w1 = 1 / (1 + 1e-6);
  const double expected = (w1 * (1 + 2 + 3 + 4 + 5 + 6)) / (w0 + 6 * w1);
  EXPECT_NEAR((*est)->Estimate(q), expected, 1e-15);
  EXPECT_NEAR((*est)->EstimateBruteForce(q), expected, 1e-15);
}

TEST(ShieldTest, NeverExceedsAndFallsBackToTheCheapest) {
  auto actions = ActionTable::Create(3);
  auto costs = CostModel::Create(ProfileCatalog::BuiltIn(), "Jetson TX2", "4G", *actions);
  ASSERT_TRUE(costs.ok());
  // 4G: 1 view costs 16.6 s; with 10 s left only local and text-only fit.
  std::vector<double> scores = {0.1, 0.5, 0.9, 0.9, 0.9, 1, 1, 1, 2};
  ShieldDecision d = Shield(*costs, 8, &scores, 10.0, 1.0);
  EXPECT_TRUE(d.overridden);
  EXPECT_EQ(d.action, 1);
  d = Shield(*costs, 8, nullptr, 10.0, 1.0);
  EXPECT_EQ(d.action, 0);
  d = Shield(*costs, 3, &scores, 100.0, 1.0);
  EXPECT_FALSE(d.overridden);
  EXPECT_EQ(d.action, 3);
  d = Shield(*costs, 3, &scores, 0.0, 0.0);
  EXPECT_TRUE(d.nothing_fits);
  EXPECT_EQ(d.action, CheapestAction(*costs));
  EXPECT_EQ(CheapestAction(*costs), 0);
}

// With the money budget lowered (fleet control) so far that nothing fits,
// Shield alone takes its cheapest action by normalised time + money: on a
// Raspberry Pi-4B over WiFi a cloud call, past the request's own budget.
TEST(ShieldTest, WithinRequestBudgetNeverExceedsTheRequestsOwnBudget) {
  const ActionTable actions = ActionTable::Create(3).value();
  const CostModel costs =
      CostModel::Create(ProfileCatalog::BuiltIn(), "Raspberry Pi-4B", "WiFi", actions).value();
  std::vector<double> scores(actions.size(), 0);
  scores[1] = 5;  // the policy prefers the plain cloud call
  const double latency_s = 10, request_money = 1e-4, lowered_money = 0.001 * request_money;
  const ShieldDecision lowered = Shield(costs, 1, &scores, latency_s, lowered_money);
  ASSERT_TRUE(lowered.nothing_fits);
  EXPECT_GT(costs.money_usd(lowered.action), request_money);  // the overspend this prevents
  for (const std::vector<double>* ranking : {&scores, static_cast<std::vector<double>*>(nullptr)}) {
    const ShieldDecision within =
        ShieldWithinRequestBudget(costs, 1, ranking, latency_s, lowered_money, request_money);
    EXPECT_FALSE(within.nothing_fits);
    EXPECT_EQ(within.action, 0);  // local: the one action the request's budget pays for
    EXPECT_TRUE(Fits(costs, within.action, latency_s, request_money));
    EXPECT_EQ(within.overridden, within.action != 1);
    for (int a = 0; a < actions.size(); ++a)
      if (Fits(costs, a, latency_s, request_money)) {
        EXPECT_LE(costs.money_usd(within.action), costs.money_usd(a)) << a;
      }
  }
  // Something fits the lowered budget: exactly Shield's decision.
  const ShieldDecision roomy = ShieldWithinRequestBudget(costs, 1, &scores, 1e3, 1.0, 2.0);
  const ShieldDecision plain = Shield(costs, 1, &scores, 1e3, 1.0);
  EXPECT_EQ(roomy.action, plain.action);
  EXPECT_EQ(roomy.overridden, plain.overridden);
  // Without a lowered budget (the request's is no higher): Shield's.
  const ShieldDecision same =
      ShieldWithinRequestBudget(costs, 1, &scores, latency_s, lowered_money, lowered_money);
  EXPECT_EQ(same.action, lowered.action);
  EXPECT_TRUE(same.nothing_fits);
  // Nothing fits the request's own budget either: Shield's decision under it.
  const ShieldDecision none = ShieldWithinRequestBudget(costs, 1, &scores, 0, lowered_money, 1e-4);
  EXPECT_TRUE(none.nothing_fits);
  EXPECT_EQ(none.action, Shield(costs, 1, &scores, 0, 1e-4).action);
}

TEST(SplitTest, SeededAndDisjoint) {
  auto a = RandomSplit(100, 3, 0.2), b = RandomSplit(100, 3, 0.2), c = RandomSplit(100, 4, 0.2);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->test, b->test);
  EXPECT_NE(a->test, c->test);
  EXPECT_EQ(a->test.size(), 20u);
  EXPECT_EQ(a->train.size(), 80u);
  std::vector<int> all = a->train;
  all.insert(all.end(), a->test.begin(), a->test.end());
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(all[i], i);
  EXPECT_FALSE(RandomSplit(100, 1, 1.5).ok());
  EXPECT_FALSE(RandomSplit(2, 1, 0.2).ok());
}

TEST(OracleTest, EqualsBruteForceOnHandMadeEpisodes) {
  const data::Dataset d = lcio::testing::SmallDataset();
  auto sim = Simulator::Create(d, {0, 1, 2, 3, 4}, lcio::testing::TwoViewConfig());
  ASSERT_TRUE(sim.ok()) << sim.status();
  for (const Budget budget : {Budget{100, 1}, Budget{4.0, 0.01}, Budget{2.5, 0.006}}) {
    for (int test : {5, 6}) {
      const data::Episode& ep = d.episodes[test];
      double best = -1e300;
      std::vector<int> seq(3);
      for (int code = 0; code < 125; ++code) {
        for (int t = 0, c = code; t < 3; ++t, c /= 5) seq[t] = c % 5;
        EpisodeRun run(**sim, ep, budget);
        for (int a : seq) run.Step(a);
        if (run.spent_time_s() > budget.latency_s || run.spent_money_usd() > budget.money_usd)
          continue;
        best = std::max(best, run.sum_reward());
      }
      OraclePolicy oracle(*sim);
      oracle.BeginEpisode(ep, budget, 0);
      EXPECT_NEAR(oracle.plan_reward(), best, 1e-12) << "episode " << test;
      EpisodeRun replay(**sim, ep, budget);
      for (int a : oracle.plan()) replay.Step(a);
      EXPECT_NEAR(replay.sum_reward(), best, 1e-12);
      EXPECT_LE(replay.spent_time_s(), budget.latency_s);
      EXPECT_LE(replay.spent_money_usd(), budget.money_usd);
    }
  }
}

TEST(OracleTest, BeatsGreedyAndEveryAffordableFixedActionOnM4A1) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  auto sim = Simulator::Create(d, split->train, SimulatorConfig{});
  ASSERT_TRUE(sim.ok());
  for (const Budget budget : {Budget{30, 0.05}, Budget{12, 0.015}}) {
    OraclePolicy oracle(*sim);
    GreedyPolicy greedy(*sim);
    const EvalOptions options{budget, false, 1};
    const PolicyResult o = EvaluatePolicy(**sim, d, split->test, oracle, options);
    const PolicyResult g = EvaluatePolicy(**sim, d, split->test, greedy, options);
    EXPECT_EQ(o.share_over_latency, 0);
    EXPECT_EQ(o.share_over_money, 0);
    for (size_t i = 0; i < o.episodes.size(); ++i) {
      if (g.episodes[i].latency_s <= budget.latency_s &&
          g.episodes[i].money_usd <= budget.money_usd) {
        EXPECT_GE(o.episodes[i].reward, g.episodes[i].reward - 1e-12) << o.episodes[i].id;
      }
    }
    for (int a = 0; a < (*sim)->actions().size(); ++a) {
      FixedPolicy fixed(a, "fixed");
      const PolicyResult f = EvaluatePolicy(**sim, d, split->test, fixed, options);
      for (size_t i = 0; i < o.episodes.size(); ++i)
        if (f.episodes[i].latency_s <= budget.latency_s &&
            f.episodes[i].money_usd <= budget.money_usd) {
          EXPECT_GE(o.episodes[i].reward, f.episodes[i].reward - 1e-12);
        }
    }
  }
}

TEST(EvaluatorTest, ShieldKeepsEveryEpisodeInsideTheBudgetsAndEveryOverrideIsCounted) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 2, 0.2);
  SimulatorConfig config;
  config.network = "4G";
  auto sim = Simulator::Create(d, split->train, config);
  ASSERT_TRUE(sim.ok());
  const Budget tight{8, 0.01};
  FixedPolicy all_views(8, "all views");
  const PolicyResult off = EvaluatePolicy(**sim, d, split->test, all_views, {tight, false, 1});
  const PolicyResult on = EvaluatePolicy(**sim, d, split->test, all_views, {tight, true, 1});
  EXPECT_EQ(off.share_over_latency, 1.0);
  EXPECT_GT(off.mean_excess_latency_s, 0);
  EXPECT_EQ(on.share_over_latency, 0.0);
  EXPECT_EQ(on.share_over_money, 0.0);
  EXPECT_GT(on.shield_overrides, 0);
  // Greedy and a fallback table replace what does not fit inside Act, where
  // the evaluator's shield never sees it: their rows reported 0 overrides,
  // and "no shield override in any cell" said nothing about fallback cells.
  // Here a table gives every conversation the call with all views.
  FallbackEntry entry;  // the only entry: every conversation's nearest
  entry.fixed_action = 8;
  entry.action_time_s.assign((*sim)->actions().size(), 0.0);
  entry.action_money_usd.assign((*sim)->actions().size(), 0.0);
  entry.budget = tight;
  auto table = std::make_shared<const FallbackTable>(std::vector<FallbackEntry>{entry});
  FallbackPolicy fallback(std::make_unique<FixedPolicy>(0, "never asked"), table, split->train);
  for (bool shield : {false, true}) {
    const PolicyResult r = EvaluatePolicy(**sim, d, split->test, fallback, {tight, shield, 1});
    EXPECT_EQ(r.share_over_latency, 0.0);  // the table keeps to the budgets itself
    EXPECT_GT(r.shield_overrides, 0) << shield;
  }
  GreedyPolicy greedy(*sim);
  const PolicyResult g = EvaluatePolicy(**sim, d, split->test, greedy, {tight, false, 1});
  EXPECT_GT(g.shield_overrides, 0);
}

// The reference's violation figure is the mean excess over the episodes that
// exceed: a split without any must not average in as an excess of 0.
TEST(EvaluatorTest, AggregateExcessIsTheMeanOverTheEpisodesThatExceed) {
  auto split_result = [](int episodes, int over, double mean_excess) {
    PolicyResult r;
    r.name = "P";
    r.episodes.resize(episodes);
    r.share_over_latency = r.share_over_money = static_cast<double>(over) / episodes;
    r.mean_excess_latency_s = mean_excess;
    r.mean_excess_money_usd = mean_excess / 100;
    return r;
  };
  // 3 of 20 episodes over by 2 s on average, then none of 20, then 1 of 20 by 6 s.
  const std::vector<AggregateResult> rows = Aggregate(
      {{split_result(20, 3, 2.0)}, {split_result(20, 0, 0.0)}, {split_result(20, 1, 6.0)}});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(rows[0].share_over_latency, 4.0 / 60);
  EXPECT_DOUBLE_EQ(rows[0].mean_excess_latency_s, (3 * 2.0 + 6.0) / 4);
  EXPECT_DOUBLE_EQ(rows[0].mean_excess_money_usd, (3 * 0.02 + 0.06) / 4);
  EXPECT_EQ(Aggregate({{split_result(20, 0, 0.0)}})[0].mean_excess_latency_s, 0.0);
}

TEST(EvaluatorTest, ShieldedPoliciesNeverExceedAnyBudgetEvenWhenTheBudgetIsExactlyOneCall) {
  // 0.005 USD is exactly one cloud call with one view: a shield without a
  // reserve spends it all and the local turns after it overspend.
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  SimulatorConfig config;
  config.network = "4G";
  auto sim = Simulator::Create(d, split->train, config);
  ASSERT_TRUE(sim.ok());
  for (const Budget budget : {Budget{30, 0.005}, Budget{16.7, 0.05}, Budget{0.02, 1e-9}}) {
    auto policies = MakeBaselines(*sim, /*include_fixed=*/true, /*include_oracle=*/false);
    for (auto& policy : policies) {
      const PolicyResult r = EvaluatePolicy(**sim, d, split->test, *policy, {budget, true, 1});
      for (const EpisodeResult& e : r.episodes) {
        // The last budget cannot pay for even the local turns: then the
        // cheapest action is taken every turn.
        if (budget.money_usd < 1e-6) {
          for (int a : e.actions) EXPECT_EQ(a, 0);
          continue;
        }
        EXPECT_LE(e.latency_s, budget.latency_s) << policy->name() << " episode " << e.id;
        EXPECT_LE(e.money_usd, budget.money_usd) << policy->name() << " episode " << e.id;
      }
    }
  }
}

TEST(TrainingEnvTest, AgentHistoryBudgetsAndCostSignals) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  auto sim = Simulator::Create(d, split->train, SimulatorConfig{});
  ASSERT_TRUE(sim.ok());
  BudgetDistribution budgets;
  budgets.kind = BudgetDistribution::Kind::kUniform;
  auto env = TrainingEnv::Create(*sim, d, split->train, (*sim)->DefaultLayout(), budgets, 5);
  ASSERT_TRUE(env.ok()) << env.status();
  std::vector<float> obs(env->observation_size());
  double excess = 0;
  int episodes = 0, episodes_over = 0, crossings_latency = 0, crossings_money = 0;
  for (int step = 0; step < 2000; ++step) {
    env->Observe(obs.data());
    for (float x : obs) ASSERT_TRUE(std::isfinite(x));
    const double spent_before = env->run().spent_time_s();
    const double money_before = env->run().spent_money_usd();
    const StepResult r = env->Step(8);
    excess += r.excess_latency_s;
    EXPECT_GE(r.excess_latency_s, 0);
    // A crossing is the one step that takes the spending past the budget.
    EXPECT_EQ(r.crossed_latency_budget, spent_before <= env->budget().latency_s &&
                                            env->run().spent_time_s() > env->budget().latency_s);
    EXPECT_EQ(r.crossed_money_budget, money_before <= env->budget().money_usd &&
                                          env->run().spent_money_usd() > env->budget().money_usd);
    crossings_latency += r.crossed_latency_budget;
    crossings_money += r.crossed_money_budget;
    if (r.done) {
      const bool over = env->run().spent_time_s() > env->budget().latency_s;
      EXPECT_EQ(crossings_latency, over ? 1 : 0);
      EXPECT_EQ(crossings_money, env->run().spent_money_usd() > env->budget().money_usd ? 1 : 0);
      episodes_over += over;
      crossings_latency = crossings_money = 0;
      EXPECT_NEAR(excess, std::max(0.0, env->run().spent_time_s() - env->budget().latency_s), 1e-9);
      EXPECT_GE(env->budget().latency_s, budgets.low.latency_s);
      EXPECT_LE(env->budget().latency_s, budgets.high.latency_s);
      excess = 0;
      ++episodes;
      env->Reset();
    }
  }
  EXPECT_GT(episodes, 300);
  EXPECT_GT(episodes_over, 0);
  EXPECT_LT(episodes_over, episodes);
  EXPECT_GT(env->cache().hits(), env->cache().misses());
}

TEST(TrainingEnvTest, ShieldInTrainingReplacesWhatDoesNotFitAndChargesThePenalty) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  auto sim = Simulator::Create(d, split->train, SimulatorConfig{});
  ASSERT_TRUE(sim.ok());
  BudgetDistribution budgets;
  budgets.kind = BudgetDistribution::Kind::kUniform;
  auto env = TrainingEnv::Create(*sim, d, split->train, (*sim)->DefaultLayout(), budgets, 5);
  ASSERT_TRUE(env.ok()) << env.status();
  // Off by default: the proposal is taken even where it breaks the budget.
  int over_without = 0;
  for (int step = 0; step < 500; ++step) {
    const StepResult r = env->Step(8);
    EXPECT_EQ(r.action, 8);
    EXPECT_FALSE(r.shield_overridden);
    if (r.done) {
      over_without += env->run().spent_money_usd() > env->budget().money_usd ||
                      env->run().spent_time_s() > env->budget().latency_s;
      env->Reset();
    }
  }
  ASSERT_GT(over_without, 0);

  const double penalty = 0.25;
  env->set_shield_penalty(penalty);
  env->Reset();
  const CostModel& costs = (*sim)->costs();
  // Scores that rank action 1 first and the proposal last: the replacement
  // must be the best-ranked action that fits, not the cheapest.
  std::vector<float> scores(costs.num_actions());
  for (int a = 0; a < costs.num_actions(); ++a) scores[a] = a == 1 ? 10.0f : -static_cast<float>(a);
  const std::vector<double> ranking(scores.begin(), scores.end());
  int overridden = 0, taken = 0, episodes = 0;
  for (int step = 0; step < 2000; ++step) {
    const DecisionContext c = env->run().context();
    const ShieldDecision expected =
        Shield(costs, 8, &ranking, c.remaining_latency_s, c.remaining_money_usd);
    const double spent_before = env->run().spent_time_s();
    const StepResult r = env->Step(8, scores.data());
    EXPECT_EQ(r.action, expected.action);
    EXPECT_EQ(r.shield_overridden, expected.overridden);
    EXPECT_NEAR(env->run().spent_time_s() - spent_before, r.outcome.time_s, 1e-9);
    EXPECT_EQ(r.outcome.time_s, costs.time_s(expected.action));
    EXPECT_DOUBLE_EQ(r.reward, r.outcome.reward - (expected.overridden ? penalty : 0.0));
    overridden += r.shield_overridden;
    taken += !r.shield_overridden;
    if (r.done) {
      // Nothing fits only when even the cheapest action breaks the budget.
      EXPECT_LE(env->run().spent_money_usd(), env->budget().money_usd + 1e-12);
      ++episodes;
      env->Reset();
    }
  }
  EXPECT_GT(episodes, 300);
  EXPECT_GT(overridden, 100);
  EXPECT_GT(taken, 100);
}

TEST(TrainingEnvTest, CrossFittingScoresAnEpisodeWithTheKnnThatHasNotSeenIt) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  const int held_out = split->train.front();
  std::vector<int> others(split->train.begin() + 1, split->train.end());
  auto sees_all = Simulator::Create(d, split->train, SimulatorConfig{});
  auto blind = Simulator::Create(d, others, SimulatorConfig{});
  ASSERT_TRUE(sees_all.ok() && blind.ok());
  std::vector<int> scorer(split->train.size(), 0);
  scorer.front() = 1;
  auto env = TrainingEnv::Create({*sees_all, *blind}, d, split->train, scorer,
                                 (*sees_all)->DefaultLayout(), BudgetDistribution{}, 5);
  ASSERT_TRUE(env.ok()) << env.status();
  const Budget budget{30, 0.05};
  bool leak_seen = false;
  for (int action = 0; action < env->num_actions(); ++action) {
    env->ResetTo(held_out, budget);
    const DecisionContext& context = env->run().context();
    const double own = (*sees_all)->Evaluate(context, action).reward;
    const double fair = (*blind)->Evaluate(context, action).reward;
    EXPECT_DOUBLE_EQ(env->Step(action).reward, fair) << "action " << action;
    leak_seen |= own != fair;
  }
  // The kNN that has seen the episode answers differently (its own logged
  // turn sits at distance 0); that is what cross-fitting removes.
  EXPECT_TRUE(leak_seen);
  // Any other training episode is scored by its scorer (here the primary).
  env->ResetTo(split->train[1], budget);
  const double primary = (*sees_all)->Evaluate(env->run().context(), 3).reward;
  EXPECT_DOUBLE_EQ(env->Step(3).reward, primary);

  EXPECT_FALSE(TrainingEnv::Create({*sees_all}, d, split->train, scorer,
                                   (*sees_all)->DefaultLayout(), BudgetDistribution{}, 5)
                   .ok());  // scorer 1 does not exist
  EXPECT_FALSE(TrainingEnv::Create({*sees_all, *blind}, d, split->train, {0},
                                   (*sees_all)->DefaultLayout(), BudgetDistribution{}, 5)
                   .ok());  // one scorer entry per episode
}

// Response features: the encoder appends, per action, the response model's
// prediction for this context divided by the scale; in training they come from
// the kNN scoring the episode, so they equal the responses the rewards use.
TEST(ObservationTest, ResponseFeaturesAreTheScoringKnnsPredictions) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  auto sees_all = Simulator::Create(d, split->train, SimulatorConfig{});
  std::vector<int> others(split->train.begin() + 1, split->train.end());
  auto blind = Simulator::Create(d, others, SimulatorConfig{});
  ASSERT_TRUE(sees_all.ok() && blind.ok());
  ObservationLayout layout = (*sees_all)->DefaultLayout();
  layout.response_aware = true;
  layout.response_scale = 0.5;
  EXPECT_EQ(layout.size(), 25 + 4 + 3 + 2 + 9);
  EXPECT_EQ(layout.FeatureNames().size(), 43u);
  EXPECT_EQ(layout.FeatureNames().back(), "predicted_response_action8");

  // A response-aware layout needs a model of the right key width.
  EXPECT_FALSE(ObservationEncoder::Create(layout).ok());
  auto narrow = ResponseEstimator::FromPoints(3, {0, 0, 0}, {1}, 5);
  ASSERT_TRUE(narrow.ok());
  EXPECT_FALSE(ObservationEncoder::Create(layout, *narrow).ok());
  ObservationLayout bad_scale = layout;
  bad_scale.response_scale = 0;
  EXPECT_FALSE(ObservationEncoder::Create(bad_scale, (*sees_all)->estimator()).ok());

  // Cross-fitted: the held-out episode's features come from the blind kNN.
  std::vector<int> scorer(split->train.size(), 0);
  scorer.front() = 1;
  auto env = TrainingEnv::Create({*sees_all, *blind}, d, split->train, scorer, layout,
                                 BudgetDistribution{}, 5);
  ASSERT_TRUE(env.ok()) << env.status();
  const ObservationEncoder& encoder = env->encoder();
  for (int episode : {split->train[0], split->train[1]}) {
    const Simulator& scoring = episode == split->train[0] ? **blind : **sees_all;
    env->ResetTo(episode, Budget{30, 0.05});
    for (int turn = 0; !env->run().done(); ++turn) {
      std::vector<float> obs(env->observation_size());
      env->Observe(obs.data());
      const DecisionContext& context = env->run().context();
      const float* features = obs.data() + 34;
      for (int a = 0; a < 9; ++a) {
        const double response = scoring.Evaluate(context, a).response;
        EXPECT_FLOAT_EQ(features[a], static_cast<float>(std::min(response / 0.5, 16.0)))
            << "episode " << episode << " turn " << turn << " action " << a;
      }
      // Without a cache the encoder's own model (the primary) answers.
      EXPECT_EQ(encoder.PredictResponses(context).size(), 9u);
      EXPECT_DOUBLE_EQ(encoder.PredictResponses(context)[2],
                       (*sees_all)->Evaluate(context, 2).response);
      env->Step(turn % 2 == 0 ? 1 : 0);
    }
  }

  // A layout without response features ignores a model and predicts nothing.
  auto plain = ObservationEncoder::Create((*sees_all)->DefaultLayout(), (*sees_all)->estimator());
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->response_model(), nullptr);
  EXPECT_TRUE(plain->PredictResponses(DecisionContext{}).empty());
}

// Fit features state, per action, the shield's own rule on the layout's costs.
TEST(ObservationTest, FitFeaturesAreTheShieldsRule) {
  SimulatorConfig on_4g;
  on_4g.network = "4G";
  auto costs_or =
      CostModel::Create(on_4g.catalog, on_4g.device, on_4g.network, ActionTable::Create(3).value());
  ASSERT_TRUE(costs_or.ok()) << costs_or.status();
  const CostModel& costs = *costs_or;
  ObservationLayout layout;
  layout.latency_scale_s = costs.max_time_s();
  layout.money_scale_usd = costs.max_money_usd();
  layout.fit_aware = true;
  for (int a = 0; a < costs.num_actions(); ++a) {
    layout.action_time_s.push_back(costs.time_s(a));
    layout.action_money_usd.push_back(costs.money_usd(a));
  }
  EXPECT_EQ(layout.size(), 25 + 4 + 3 + 2 + 9);
  EXPECT_EQ(layout.FeatureNames().back(), "fits_action8");
  auto encoder = ObservationEncoder::Create(layout);
  ASSERT_TRUE(encoder.ok()) << encoder.status();

  DecisionContext context;
  context.association = {0.2, 0.5, 0.9};
  std::vector<float> obs(encoder->size());
  int fitting = 0, not_fitting = 0;
  for (double latency : {0.0, 0.05, 0.5, 2.0, 8.0, 16.0, 17.0, 20.0, 40.0, 1e9})
    for (double money : {0.0, 0.001, 0.005, 0.01, 0.02, 1.0}) {
      context.remaining_latency_s = latency;
      context.remaining_money_usd = money;
      encoder->Encode(context, obs.data());
      for (int a = 0; a < 9; ++a) {
        const bool fits = Fits(costs, a, latency, money);
        EXPECT_EQ(obs[34 + a], fits ? 1.0f : 0.0f) << latency << " s, " << money << " USD, " << a;
        (fits ? fitting : not_fitting)++;
      }
    }
  EXPECT_GT(fitting, 50);
  EXPECT_GT(not_fitting, 50);
  // Exactly at an action's cost plus the reserve it fits; a little less, not.
  const double reserve = kDefaultReserveTurns * costs.time_s(0);
  context.remaining_money_usd = 1;
  context.remaining_latency_s = costs.time_s(2) + reserve;
  encoder->Encode(context, obs.data());
  EXPECT_EQ(obs[34 + 2], 1.0f);
  context.remaining_latency_s = 0.999 * (costs.time_s(2) + reserve);
  encoder->Encode(context, obs.data());
  EXPECT_EQ(obs[34 + 2], 0.0f);

  // The costs must be one per action, finite and non-negative.
  ObservationLayout short_costs = layout;
  short_costs.action_time_s.pop_back();
  EXPECT_NE(std::string(ObservationEncoder::Create(short_costs).status().message())
                .find("action_time_s has 8 costs"),
            std::string::npos);
  ObservationLayout negative = layout;
  negative.action_money_usd[3] = -1;
  EXPECT_NE(std::string(ObservationEncoder::Create(negative).status().message())
                .find("action_money_usd[3] = -1"),
            std::string::npos);
  ObservationLayout nan = layout;
  nan.action_time_s[0] = std::nan("");
  EXPECT_FALSE(ObservationEncoder::Create(nan).ok());
}

// A profile_aware observation encodes the decision's own device and network:
// the same context costed for Wired and for 4G reads differently, by the
// documented scales, and its fit features follow the shield's rule under the
// context's costs (not any training profile's).
TEST(ObservationTest, ProfileFeaturesAreTheRequestsOwnCosts) {
  const ActionTable actions = ActionTable::Create(3).value();
  const ProfileCatalog catalog = ProfileCatalog::BuiltIn();
  const CostModel wired = CostModel::Create(catalog, "Jetson TX2", "Wired", actions).value();
  const CostModel g4 = CostModel::Create(catalog, "Jetson TX2", "4G", actions).value();
  ObservationLayout layout;
  layout.latency_scale_s = wired.max_time_s();
  layout.money_scale_usd = wired.max_money_usd();
  layout.fit_aware = true;
  layout.profile_aware = true;
  EXPECT_EQ(layout.size(), 25 + 4 + 3 + 2 + 9 + 9 + 9 + 2);
  const std::vector<std::string> names = layout.FeatureNames();
  ASSERT_EQ(static_cast<int>(names.size()), layout.size());
  EXPECT_EQ(names[34], "fits_action0");
  EXPECT_EQ(names[43], "latency_action0");
  EXPECT_EQ(names[52], "money_action0");
  EXPECT_EQ(names[61], "remaining_latency_per_max_action");
  EXPECT_EQ(names[62], "remaining_money_per_max_action");
  // No training costs needed: they come with each context.
  auto encoder = ObservationEncoder::Create(layout);
  ASSERT_TRUE(encoder.ok()) << encoder.status();

  DecisionContext context;
  context.association = {0.2, 0.5, 0.9};
  context.remaining_latency_s = 20;
  context.remaining_money_usd = 0.02;
  // Without costs a profile_aware encoder refuses the context.
  EXPECT_NE(std::string(encoder->Check(context).message()).find("action costs: none given"),
            std::string::npos);
  DecisionContext on_wired = context, on_4g = context;
  SetActionCosts(wired, &on_wired);
  SetActionCosts(g4, &on_4g);
  ASSERT_TRUE(encoder->Check(on_wired).ok());
  ASSERT_TRUE(encoder->Check(on_4g).ok());
  std::vector<float> w(encoder->size()), g(encoder->size());
  encoder->Encode(on_wired, w.data());
  encoder->Encode(on_4g, g.data());
  // Action 2 is the cloud with view 0: Wired 4.76134 s, 4G 16.603 s (table in
  // profiles.cc) over the 10 s scale; 0.005 USD over the 0.01 USD scale on both.
  // Action 1 (cloud, no view): Wired 6.4603 s, 4G 0.5 s, 0.00049 USD.
  EXPECT_FLOAT_EQ(w[43 + 2], 0.476134f);
  EXPECT_FLOAT_EQ(g[43 + 2], 1.6603f);
  EXPECT_FLOAT_EQ(w[52 + 2], 0.5f);
  EXPECT_FLOAT_EQ(g[52 + 2], 0.5f);
  EXPECT_FLOAT_EQ(w[43 + 1], 0.64603f);
  EXPECT_FLOAT_EQ(g[43 + 1], 0.05f);
  EXPECT_FLOAT_EQ(g[52 + 1], 0.049f);
  // Action 8 (all three views): 4G 19.573 s, 0.01368 USD.
  EXPECT_FLOAT_EQ(g[43 + 8], 1.9573f);
  EXPECT_FLOAT_EQ(g[52 + 8], 1.368f);
  for (int a = 0; a < 9; ++a) {
    EXPECT_FLOAT_EQ(w[43 + a], static_cast<float>(wired.time_s(a) / 10.0)) << a;
    EXPECT_FLOAT_EQ(g[43 + a], static_cast<float>(g4.time_s(a) / 10.0)) << a;
    EXPECT_FLOAT_EQ(g[52 + a], static_cast<float>(g4.money_usd(a) / 0.01)) << a;
  }
  // Remaining budgets over the profile's most expensive action.
  EXPECT_FLOAT_EQ(g[61], static_cast<float>(20 / g4.max_time_s()));
  EXPECT_FLOAT_EQ(w[61], static_cast<float>(20 / wired.max_time_s()));
  EXPECT_FLOAT_EQ(g[62], static_cast<float>(0.02 / 0.01368));
  EXPECT_NE(w[61], g[61]);
  // The budget_aware features keep the layout's fixed scales.
  EXPECT_EQ(w[32], g[32]);
  EXPECT_EQ(w[33], g[33]);
  // Fit features: the shield's rule under each context's own costs. At 16 s
  // a one-view cloud call fits on Wired (4.8 s and the reserve of 4 local
  // turns) but not on 4G (16.6 s).
  int differ = 0;
  for (double latency : {0.0, 0.5, 5.0, 12.0, 20.0, 25.0, 40.0, 1e9})
    for (double money : {0.0, 0.001, 0.01, 0.02, 1.0}) {
      on_wired.remaining_latency_s = on_4g.remaining_latency_s = latency;
      on_wired.remaining_money_usd = on_4g.remaining_money_usd = money;
      encoder->Encode(on_wired, w.data());
      encoder->Encode(on_4g, g.data());
      for (int a = 0; a < 9; ++a) {
        EXPECT_EQ(w[34 + a], Fits(wired, a, latency, money) ? 1.0f : 0.0f) << latency << " " << a;
        EXPECT_EQ(g[34 + a], Fits(g4, a, latency, money) ? 1.0f : 0.0f) << latency << " " << a;
        differ += w[34 + a] != g[34 + a];
      }
    }
  EXPECT_GT(differ, 10);
  on_4g.remaining_latency_s = 16;
  on_4g.remaining_money_usd = 1;
  on_wired.remaining_latency_s = 16;
  on_wired.remaining_money_usd = 1;
  encoder->Encode(on_wired, w.data());
  encoder->Encode(on_4g, g.data());
  EXPECT_EQ(w[34 + 2], 1.0f);
  EXPECT_EQ(g[34 + 2], 0.0f);

  // Context costs are checked: one per action, finite, >= 0.
  DecisionContext bad = on_4g;
  bad.action_time_s.pop_back();
  EXPECT_NE(std::string(encoder->Check(bad).message()).find("action_time_s has 8 costs"),
            std::string::npos);
  bad = on_4g;
  bad.action_money_usd[2] = -0.5;
  EXPECT_NE(std::string(encoder->Check(bad).message()).find("action_money_usd[2] = -0.5"),
            std::string::npos);
  bad = on_4g;
  bad.action_time_s[0] = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(encoder->Check(bad).ok());
  // A layout that is not profile_aware ignores the context's costs.
  ObservationLayout plain = layout;
  plain.profile_aware = false;
  plain.fit_aware = false;
  auto plain_encoder = ObservationEncoder::Create(plain);
  ASSERT_TRUE(plain_encoder.ok());
  std::vector<float> p1(plain.size()), p2(plain.size());
  plain_encoder->Encode(on_wired, p1.data());
  plain_encoder->Encode(context, p2.data());
  on_wired.remaining_latency_s = context.remaining_latency_s;
  on_wired.remaining_money_usd = context.remaining_money_usd;
  plain_encoder->Encode(on_wired, p1.data());
  EXPECT_EQ(p1, p2);
}

// Training draws a profile per episode and simulates it with that profile's
// costs; without profiles nothing is drawn (the single-profile draws).
TEST(TrainingEnvTest, ProfilesAreDrawnPerEpisodeAndCostTheEpisode) {
  const data::Dataset& dataset = lcio::testing::EmbeddedDataset();
  const Split split = RandomSplit(static_cast<int>(dataset.episodes.size()), 1, 0.2).value();
  auto sim = Simulator::Create(dataset, split.train, SimulatorConfig());
  ASSERT_TRUE(sim.ok()) << sim.status();
  ObservationLayout layout = (*sim)->DefaultLayout();
  layout.profile_aware = true;
  const std::vector<ProfilePair> profiles = AllProfilePairs((*sim)->config().catalog);
  ASSERT_EQ(profiles.size(), 32u);
  auto env =
      TrainingEnv::Create({*sim}, dataset, split.train, std::vector<int>(split.train.size(), 0),
                          layout, BudgetDistribution{}, 7, profiles);
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_EQ(env->num_profiles(), 32);
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    env->Reset();
    seen.insert(env->profile());
    const ProfilePair& p = profiles[env->profile()];
    const CostModel costs =
        CostModel::Create((*sim)->config().catalog, p.device, p.network, (*sim)->actions()).value();
    const DecisionContext& c = env->run().context();
    ASSERT_EQ(c.action_time_s.size(), 9u);
    for (int a = 0; a < 9; ++a) ASSERT_EQ(c.action_time_s[a], costs.time_s(a));
    const StepResult r = env->Step(8);
    ASSERT_EQ(r.outcome.time_s, costs.time_s(8));
    ASSERT_EQ(r.outcome.money_usd, costs.money_usd(8));
  }
  EXPECT_GT(seen.size(), 25u);
  // The shield in training judges with the episode's own profile: at 8 s /
  // 0.01 USD an upload fits on WiFi and not on 4G.
  BudgetDistribution tight;
  tight.fixed = Budget{8.0, 0.01};
  auto shielded =
      TrainingEnv::Create({*sim}, dataset, split.train, std::vector<int>(split.train.size(), 0),
                          layout, tight, 7, profiles);
  ASSERT_TRUE(shielded.ok()) << shielded.status();
  shielded->set_shield_penalty(1.0);
  std::set<bool> verdicts_for_action_2;
  for (int i = 0; i < 200; ++i) {
    shielded->Reset();
    const ProfilePair& p = profiles[shielded->profile()];
    const CostModel costs =
        CostModel::Create((*sim)->config().catalog, p.device, p.network, (*sim)->actions()).value();
    const DecisionContext& c = shielded->run().context();
    const ShieldDecision expected =
        Shield(costs, 2, nullptr, c.remaining_latency_s, c.remaining_money_usd);
    const StepResult r = shielded->Step(2);
    ASSERT_EQ(r.action, expected.action) << p.device << " / " << p.network;
    ASSERT_EQ(r.shield_overridden, expected.overridden);
    ASSERT_EQ(r.outcome.time_s, costs.time_s(expected.action));
    verdicts_for_action_2.insert(r.shield_overridden);
  }
  EXPECT_EQ(verdicts_for_action_2.size(), 2u);  // some profiles fit it, some do not
  // An unknown pair is refused, naming it.
  auto unknown =
      TrainingEnv::Create({*sim}, dataset, split.train, std::vector<int>(split.train.size(), 0),
                          layout, BudgetDistribution{}, 7, {{"Jetson TX2", "Carrier pigeon"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(std::string(unknown.status().message()).find("Carrier pigeon"), std::string::npos);
}

// The encoder memoises predictions per history window for concurrent uncached
// callers (the server): any number of threads, and more windows than the memo
// holds, give exactly what the model answers.
TEST(ObservationTest, MemoisedPredictionsAreTheModelsUnderConcurrency) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  auto sim = Simulator::Create(d, split->train, SimulatorConfig{});
  ASSERT_TRUE(sim.ok());
  ObservationLayout layout = (*sim)->DefaultLayout();
  layout.response_aware = true;
  auto shared = ObservationEncoder::Create(layout, (*sim)->estimator());
  ASSERT_TRUE(shared.ok());
  // 24000 contexts at the fifth turn, mostly distinct windows (16 x 1024 fit).
  std::mt19937_64 rng(3);
  std::vector<DecisionContext> contexts(24000);
  for (DecisionContext& c : contexts) {
    for (int t = 0; t < 4; ++t) {
      c.previous_actions.push_back(static_cast<int>(rng() % 9));
      c.previous_tasks.push_back(static_cast<int>(rng() % 4));
    }
    c.task_index = static_cast<int>(rng() % 4);
    c.association = {0, 0, 0};
  }
  auto expected = [&](const DecisionContext& c) {
    std::vector<double> out(9);
    for (int a = 0; a < 9; ++a) out[a] = (*sim)->Evaluate(c, a).response;
    return out;
  };
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < contexts.size(); i += 3) {  // overlapping shares
        const std::vector<double> got = shared->PredictResponses(contexts[i]);
        const std::vector<double> want = expected(contexts[i]);
        for (int a = 0; a < 9; ++a)
          if (std::abs(got[a] - want[a]) > 1e-12) ++mismatches;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  // A second pass (memo hits, or recomputed after a full shard was cleared).
  for (size_t i = 0; i < contexts.size(); i += 7) {
    const std::vector<double> got = shared->PredictResponses(contexts[i]);
    const std::vector<double> want = expected(contexts[i]);
    for (int a = 0; a < 9; ++a) ASSERT_NEAR(got[a], want[a], 1e-12) << i << " " << a;
  }
}

TEST(BudgetDistributionTest, KindsParseAndSampleInRange) {
  std::mt19937_64 rng(1);
  constexpr int kDraws = 2000;
  auto inside = [](const Budget& b, const Budget& low, const Budget& high) {
    return b.latency_s >= low.latency_s && b.latency_s <= high.latency_s &&
           b.money_usd >= low.money_usd && b.money_usd <= high.money_usd;
  };
  BudgetDistribution dist;
  dist.fixed = {30, 0.05};
  // Fixed: always the fixed budget.
  dist.kind = *BudgetDistribution::ParseKind("fixed");
  for (int i = 0; i < 100; ++i) {
    const Budget b = dist.Sample(rng);
    EXPECT_EQ(b.latency_s, 30);
    EXPECT_EQ(b.money_usd, 0.05);
  }
  // Uniform: inside [low, high] in both budgets, centred on the middle
  // (the mean of 2000 draws is within 5 standard errors of it).
  dist.kind = *BudgetDistribution::ParseKind("uniform");
  double latency_sum = 0, money_sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    const Budget b = dist.Sample(rng);
    ASSERT_TRUE(inside(b, dist.low, dist.high)) << b.latency_s << " s, " << b.money_usd << " USD";
    latency_sum += b.latency_s;
    money_sum += b.money_usd;
  }
  const double latency_se = (dist.high.latency_s - dist.low.latency_s) / std::sqrt(12.0 * kDraws);
  const double money_se = (dist.high.money_usd - dist.low.money_usd) / std::sqrt(12.0 * kDraws);
  EXPECT_NEAR(latency_sum / kDraws, (dist.low.latency_s + dist.high.latency_s) / 2, 5 * latency_se);
  EXPECT_NEAR(money_sum / kDraws, (dist.low.money_usd + dist.high.money_usd) / 2, 5 * money_se);
  // Normal with a spread far wider than the range: clipped at both ends of
  // both budgets, never outside.
  dist.kind = *BudgetDistribution::ParseKind("normal");
  dist.stddev = {200, 1};
  int clipped[4] = {0, 0, 0, 0};  // latency at low, at high; money at low, at high
  for (int i = 0; i < kDraws; ++i) {
    const Budget b = dist.Sample(rng);
    ASSERT_TRUE(inside(b, dist.low, dist.high)) << b.latency_s << " s, " << b.money_usd << " USD";
    clipped[0] += b.latency_s == dist.low.latency_s;
    clipped[1] += b.latency_s == dist.high.latency_s;
    clipped[2] += b.money_usd == dist.low.money_usd;
    clipped[3] += b.money_usd == dist.high.money_usd;
  }
  for (int end = 0; end < 4; ++end) EXPECT_GT(clipped[end], kDraws / 10) << "end " << end;
  // Mixture without spread: the fixed budget, or (extreme_share of draws)
  // each budget in the lowest or highest tenth of its range.
  dist.kind = *BudgetDistribution::ParseKind("mixture");
  dist.stddev = {0, 0};
  int extremes = 0;
  for (int i = 0; i < kDraws; ++i) {
    const Budget b = dist.Sample(rng);
    ASSERT_TRUE(inside(b, dist.low, dist.high)) << b.latency_s << " s, " << b.money_usd << " USD";
    if (b.latency_s == 30 && b.money_usd == 0.05) continue;
    ++extremes;
    const double latency_tenth = (dist.high.latency_s - dist.low.latency_s) / 10;
    const double money_tenth = (dist.high.money_usd - dist.low.money_usd) / 10;
    EXPECT_TRUE(b.latency_s <= dist.low.latency_s + latency_tenth ||
                b.latency_s >= dist.high.latency_s - latency_tenth)
        << b.latency_s;
    EXPECT_TRUE(b.money_usd <= dist.low.money_usd + money_tenth ||
                b.money_usd >= dist.high.money_usd - money_tenth)
        << b.money_usd;
  }
  // 0.2 of 2000 draws: 400, standard error 17.9.
  EXPECT_NEAR(extremes, kDraws * dist.extreme_share, 5 * 17.9);
  EXPECT_FALSE(BudgetDistribution::ParseKind("gamma").ok());
}

}  // namespace
}  // namespace lcio::env
