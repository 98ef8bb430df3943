// Short seeded training runs on the embedded M4A1: every algorithm beats the
// Random baseline on the test side, the same seed gives the same network, and
// the Lagrangian variant keeps episode cost under its limit where the
// unconstrained algorithm does not.
#include <algorithm>
#include <iostream>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/split.h"
#include "lcio/policy/artifact_io.h"
#include "lcio/policy/artifact_policy.h"
#include "lcio/policy/trainer.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace lcio::policy {
namespace {

const env::Split& SplitOne() {
  static const env::Split* split = [] {
    auto s = env::RandomSplit(static_cast<int>(testing::EmbeddedDataset().episodes.size()), 1, 0.2);
    EXPECT_TRUE(s.ok());
    return new env::Split(*s);
  }();
  return *split;
}

std::string Base(const std::string& algo) { return algo.substr(algo.rfind('-') + 1); }

// Short runs: SB3 defaults except where 30000 steps are too few for them
// (DQN's target network would update only three times).
TrainOptions ShortRun(const std::string& algo, uint64_t seed) {
  TrainOptions options;
  options.algo = algo;
  options.seed = seed;
  options.timesteps = 30000;
  if (Base(algo) == "dqn") {
    options.dqn.learning_rate = 1e-3;
    options.dqn.target_update_interval = 500;
  }
  return options;
}

env::PolicyResult Evaluate(const TrainResult& result, const env::Budget& budget, bool shield,
                           const std::vector<int>& episodes) {
  auto simulator =
      env::Simulator::Create(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig());
  EXPECT_TRUE(simulator.ok());
  auto encoder = env::ObservationEncoder::Create(result.layout);
  EXPECT_TRUE(encoder.ok());
  NetworkPolicy policy("trained", result.network, *encoder);
  return env::EvaluatePolicy(**simulator, testing::EmbeddedDataset(), episodes, policy,
                             {budget, shield, 1});
}

class M4a1Training : public ::testing::TestWithParam<std::string> {};

TEST_P(M4a1Training, BeatsRandomOnTheTestSide) {
  auto result = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(),
                      ShortRun(GetParam(), 1));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->summary.steps >= 30000, true);
  const env::Budget budget{30.0, 0.05};
  const env::PolicyResult trained = Evaluate(*result, budget, false, SplitOne().test);
  auto simulator =
      env::Simulator::Create(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig());
  ASSERT_TRUE(simulator.ok());
  env::RandomPolicy random("Random", (*simulator)->actions().size(), 0.5);
  const env::PolicyResult baseline = env::EvaluatePolicy(
      **simulator, testing::EmbeddedDataset(), SplitOne().test, random, {budget, false, 1});
  EXPECT_GT(trained.reward, baseline.reward) << GetParam();
  EXPECT_EQ(result->summary.multipliers.size(), GetParam().rfind("rc-", 0) == 0 ? 2u : 0u);
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, M4a1Training,
                         ::testing::Values("ppo", "a2c", "dqn", "rc-ppo", "rc-a2c", "rc-dqn"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

// Tight budgets on 4G (8 s, 0.01 USD): the unconstrained PPO's episodes go
// over budget; RC-PPO's multipliers push the measured episode cost under its
// limit. Costs as the multipliers see them: excess over the budget in units
// of the most expensive action's cost, per episode.
TEST(Constraint, RcPpoEpisodeCostFallsBelowTheLimitWherePpoDoesNot) {
  env::SimulatorConfig config;
  config.network = "4G";
  auto simulator = env::Simulator::Create(testing::EmbeddedDataset(), SplitOne().train, config);
  ASSERT_TRUE(simulator.ok());
  const env::Budget budget{8.0, 0.01};
  auto episode_cost = [&](const TrainResult& result) {
    auto encoder = env::ObservationEncoder::Create(result.layout);
    EXPECT_TRUE(encoder.ok());
    NetworkPolicy policy("trained", result.network, *encoder);
    const env::PolicyResult r = env::EvaluatePolicy(**simulator, testing::EmbeddedDataset(),
                                                    SplitOne().train, policy, {budget, false, 1});
    double cost = 0;
    for (const env::EpisodeResult& e : r.episodes)
      cost += std::max(0.0, e.latency_s - budget.latency_s) / (*simulator)->costs().max_time_s() +
              std::max(0.0, e.money_usd - budget.money_usd) / (*simulator)->costs().max_money_usd();
    return cost / r.episodes.size();
  };
  double costs[2];
  for (int constrained = 0; constrained < 2; ++constrained) {
    TrainOptions options = ShortRun(constrained ? "rc-ppo" : "ppo", 1);
    options.budgets = env::BudgetDistribution();  // fixed
    options.budgets.fixed = budget;
    auto result = Train(testing::EmbeddedDataset(), SplitOne().train, config, options);
    ASSERT_TRUE(result.ok()) << result.status();
    costs[constrained] = episode_cost(*result);
    if (constrained) {
      // Measured in training (last 10% of episodes, sampled actions) too.
      EXPECT_LE(result->summary.mean_episode_cost_latency, 0.02 + 1e-9);
      EXPECT_LE(result->summary.mean_episode_cost_money, 0.02 + 1e-9);
      EXPECT_GT(result->summary.multipliers[0] + result->summary.multipliers[1], 0.0);
    }
  }
  const double limit = 0.02 + 0.02;  // the two default limits
  EXPECT_GT(costs[0], limit);
  EXPECT_LE(costs[1], limit);
  std::cout << "episode cost: ppo " << costs[0] << ", rc-ppo " << costs[1] << "\n";
}

// The shield in training (shield_penalty): the trainer steps what the shield
// lets through and charges each replaced proposal, so the trained policy
// proposes what fits; without it the same run leans on the shield. Budgets
// drawn from the mixture around 30 s / 0.05 USD, where tight ones are rare,
// asked at 8 s / 0.01 USD on WiFi: uploads are fast there and money binds.
TEST(ShieldPenalty, TrainedPoliciesProposeWhatFits) {
  env::SimulatorConfig config;
  config.network = "WiFi";
  auto simulator = env::Simulator::Create(testing::EmbeddedDataset(), SplitOne().train, config);
  ASSERT_TRUE(simulator.ok());
  const env::Budget budget{8.0, 0.01};
  // Over three training seeds: one short run can land either way at a small
  // penalty; a penalty worth about two turns' reward holds at each seed.
  int overrides[2] = {0, 0};
  for (uint64_t seed : {1, 2, 3}) {
    for (int penalised = 0; penalised < 2; ++penalised) {
      TrainOptions options = ShortRun("rc-ppo", seed);
      options.fit_aware = true;
      options.budgets = env::BudgetDistribution();
      options.budgets.kind = env::BudgetDistribution::Kind::kMixture;
      options.budgets.fixed = env::Budget{30, 0.05};
      if (penalised) options.lagrange.shield_penalty = 2.0;
      auto result = Train(testing::EmbeddedDataset(), SplitOne().train, config, options);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->summary.shield_in_training, penalised == 1);
      // The shield acts in training, so the penalised run saw replacements.
      if (penalised) {
        EXPECT_GT(result->summary.share_shield_overrides, 0.0);
      }
      auto encoder = env::ObservationEncoder::Create(result->layout);
      ASSERT_TRUE(encoder.ok());
      NetworkPolicy policy("trained", result->network, *encoder);
      const env::PolicyResult r = env::EvaluatePolicy(**simulator, testing::EmbeddedDataset(),
                                                      SplitOne().train, policy, {budget, true, 1});
      overrides[penalised] += r.shield_overrides;
      EXPECT_EQ(r.share_over_latency + r.share_over_money, 0.0);
    }
  }
  std::cout << "shield overrides at 8 s / 0.01 USD, seeds 1-3: without the penalty " << overrides[0]
            << ", with it " << overrides[1] << "\n";
  EXPECT_GT(overrides[0], 30);
  EXPECT_LT(overrides[1], overrides[0] / 4);
}

class Determinism : public ::testing::TestWithParam<std::string> {};

TEST_P(Determinism, SameSeedSameNetworkOtherSeedOtherNetwork) {
  TrainOptions options = ShortRun(GetParam(), 3);
  options.timesteps = 4000;
  options.ppo.n_steps = 512;  // PPO only
  auto a = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  auto b = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  options.seed = 4;
  auto c = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->network.weights, b->network.weights);
  EXPECT_EQ(a->network.biases, b->network.biases);
  EXPECT_EQ(a->summary.mean_episode_reward, b->summary.mean_episode_reward);
  EXPECT_EQ(a->summary.multipliers, b->summary.multipliers);
  EXPECT_NE(a->network.weights, c->network.weights);
}

TEST(CrossFitting, TrainsDeterministicallyRecordsTheFoldsAndChecksThem) {
  TrainOptions options = ShortRun("rc-ppo", 3);
  options.timesteps = 4000;
  options.ppo.n_steps = 512;
  options.cross_fit_folds = 5;
  auto a = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  auto b = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  options.cross_fit_folds = 1;
  auto plain = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(a.ok() && b.ok() && plain.ok()) << a.status() << plain.status();
  EXPECT_EQ(a->network.weights, b->network.weights);
  // Other rewards (no episode scored by a kNN holding its own turns), so
  // another network from the same seed.
  EXPECT_NE(a->network.weights, plain->network.weights);
  EXPECT_NE(a->summary.config_json.find("\"cross_fit_folds\":5"), std::string::npos)
      << a->summary.config_json;
  options.cross_fit_folds = 0;
  auto bad = Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("cross_fit_folds"), std::string::npos);

  TrainOptions parsed;
  ASSERT_TRUE(ApplyTrainConfigJson(R"({"cross_fit_folds": 4})", &parsed).ok());
  EXPECT_EQ(parsed.cross_fit_folds, 4);
}

// The evaluator's held-out check sees what a trained network learnt from:
// exactly the training side, so it passes on the test side and fails on a
// split that shares an episode. Training against the history-free task x
// action model is recorded in the training configuration.
TEST(HeldOut, TrainedNetworksDeclareTheirTrainingEpisodes) {
  TrainOptions options = ShortRun("rc-ppo", 3);
  options.timesteps = 2048;
  options.ppo.n_steps = 512;
  auto trained =
      Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  std::vector<int> train = SplitOne().train;
  std::sort(train.begin(), train.end());
  EXPECT_EQ(trained->decision_model_episodes, train);
  auto encoder = env::ObservationEncoder::Create(trained->layout);
  ASSERT_TRUE(encoder.ok());
  NetworkPolicy policy("trained", trained->network, *encoder, trained->decision_model_episodes);
  EXPECT_TRUE(env::CheckDecisionModelHeldOut(policy, SplitOne().test).ok());
  EXPECT_EQ(
      env::CheckDecisionModelHeldOut(policy, {SplitOne().test[0], SplitOne().train[3]}).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(trained->summary.config_json.find("response_model"), std::string::npos);

  env::SimulatorConfig task_action;
  task_action.response_model = env::ResponseModelFamily::kTaskActionMeans;
  auto history_free = Train(testing::EmbeddedDataset(), SplitOne().train, task_action, options);
  ASSERT_TRUE(history_free.ok()) << history_free.status();
  EXPECT_NE(history_free->summary.config_json.find("\"response_model\":\"task_action\""),
            std::string::npos)
      << history_free->summary.config_json;
  EXPECT_NE(history_free->network.weights, trained->network.weights);
}

// A response-aware policy carries its response model in the artifact: loaded
// by the inference engine (as the server does) it encodes the same features
// and takes the same decisions as the network right after training.
// Trains with `options`, writes the artifact, loads it as the server does and
// checks that it encodes and decides exactly as the in-memory policy, turn by
// turn over the test episodes at `budget`.
// `served_on`: the simulator (its device and network) the decisions are
// replayed under, which need not be the training profile.
void ExpectArtifactDecidesAsTrained(const TrainOptions& options, const std::string& file,
                                    const env::Budget& budget,
                                    const env::SimulatorConfig& served_on = {}) {
  const data::Dataset& dataset = testing::EmbeddedDataset();
  auto trained = Train(dataset, SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const std::string path = ::testing::TempDir() + "/" + file;
  auto summary = TrainPolicy(dataset, SplitOne().train, env::SimulatorConfig(), options, path);
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto loaded = ArtifactPolicy::Load(path, "cpu");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const env::ObservationEncoder& served = (*loaded)->engine().encoder();
  EXPECT_EQ(served.layout().FeatureNames(), trained->layout.FeatureNames());

  auto encoder = env::ObservationEncoder::Create(trained->layout, trained->response_model);
  ASSERT_TRUE(encoder.ok());
  NetworkPolicy in_memory("trained", trained->network, *encoder);
  auto simulator = env::Simulator::Create(dataset, SplitOne().train, served_on);
  ASSERT_TRUE(simulator.ok());
  int decisions = 0;
  for (int e : SplitOne().test) {
    env::EpisodeRun run(**simulator, dataset.episodes[e], budget);
    while (!run.done()) {
      std::vector<float> a(encoder->size()), b(served.size());
      encoder->Encode(run.context(), a.data());
      served.Encode(run.context(), b.data());
      ASSERT_EQ(a, b) << "episode " << e << " turn " << run.turn();
      std::vector<double> expected, got;
      const int action = in_memory.Act(run.context(), &expected);
      ASSERT_EQ((*loaded)->Act(run.context(), &got), action);
      for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-4);
      run.Step(action);
      ++decisions;
    }
  }
  EXPECT_GT(decisions, 40);
  EXPECT_EQ((*loaded)->error_count(), 0);
}

TEST(ResponseFeatures, TheArtifactCarriesTheModelAndDecidesAsTrained) {
  TrainOptions options = ShortRun("rc-ppo", 4);
  options.timesteps = 4000;
  options.ppo.n_steps = 512;
  options.response_aware = true;
  auto trained =
      Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_TRUE(trained->layout.response_aware);
  ASSERT_NE(trained->response_model, nullptr);
  EXPECT_DOUBLE_EQ(trained->layout.response_scale, trained->response_model->mean_value());
  EXPECT_EQ(trained->network.sizes.front(), 25 + 4 + 3 + 2 + 9);
  EXPECT_NE(trained->summary.config_json.find("\"response_aware\":true"), std::string::npos);
  ExpectArtifactDecidesAsTrained(options, "response_aware.pt", env::Budget{30, 0.05});

  TrainOptions parsed;
  ASSERT_TRUE(ApplyTrainConfigJson(R"({"response_aware": true})", &parsed).ok());
  EXPECT_TRUE(parsed.response_aware);
}

TEST(FitFeatures, TheLayoutCarriesTheTrainingCostsAndTheArtifactDecidesAsTrained) {
  TrainOptions options = ShortRun("rc-ppo", 4);
  options.timesteps = 4000;
  options.ppo.n_steps = 512;
  options.response_aware = true;
  options.fit_aware = true;
  auto simulator =
      env::Simulator::Create(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig());
  ASSERT_TRUE(simulator.ok());
  auto trained =
      Train(testing::EmbeddedDataset(), SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_TRUE(trained->layout.fit_aware);
  EXPECT_EQ(trained->network.sizes.front(), 25 + 4 + 3 + 2 + 9 + 9);
  const env::CostModel& costs = (*simulator)->costs();
  ASSERT_EQ(trained->layout.action_time_s.size(), 9u);
  for (int a = 0; a < 9; ++a) {
    EXPECT_EQ(trained->layout.action_time_s[a], costs.time_s(a));
    EXPECT_EQ(trained->layout.action_money_usd[a], costs.money_usd(a));
  }
  EXPECT_NE(trained->summary.config_json.find("\"fit_aware\":true"), std::string::npos);
  // A budget at which some actions fit and others do not.
  ExpectArtifactDecidesAsTrained(options, "fit_aware.pt", env::Budget{12, 0.01});

  TrainOptions parsed;
  ASSERT_TRUE(ApplyTrainConfigJson(R"({"fit_aware": true})", &parsed).ok());
  EXPECT_TRUE(parsed.fit_aware);
}

// One policy for every device and network: training draws a profile per
// episode, the run is deterministic and records its distribution, and the
// artifact (layout version 4) decides as the in-memory policy under a profile
// it was not trained on.
TEST(ProfileFeatures, TrainingOverEveryProfileIsRecordedAndTheArtifactDecidesAsTrained) {
  TrainOptions options = ShortRun("rc-ppo", 4);
  options.timesteps = 4000;
  options.ppo.n_steps = 512;
  options.fit_aware = true;
  options.all_profiles = true;
  const data::Dataset& dataset = testing::EmbeddedDataset();
  auto first = Train(dataset, SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Train(dataset, SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->network.weights, second->network.weights);
  EXPECT_EQ(first->network.biases, second->network.biases);
  ASSERT_TRUE(first->layout.profile_aware);
  EXPECT_EQ(first->network.sizes.front(), 25 + 4 + 3 + 2 + 9 + 9 + 9 + 2);
  const nlohmann::json config = nlohmann::json::parse(first->summary.config_json);
  EXPECT_EQ(config.at("profile_aware"), true);
  ASSERT_EQ(config.at("training_profiles").size(), 32u);
  EXPECT_EQ(config.at("training_profiles")[0].at("device"), "Raspberry Pi-4B");
  EXPECT_EQ(config.at("training_profiles")[31].at("network"), "4G");
  // The recorded distribution reads back as the same training options.
  TrainOptions parsed;
  ASSERT_TRUE(
      ApplyTrainConfigJson(
          nlohmann::json{{"training_profiles", config.at("training_profiles")}}.dump(), &parsed)
          .ok());
  ASSERT_EQ(parsed.training_profiles.size(), 32u);
  EXPECT_EQ(parsed.training_profiles[5].device, "Raspberry Pi-5");
  EXPECT_EQ(parsed.training_profiles[5].network, "WiFi");
  ASSERT_TRUE(ApplyTrainConfigJson(R"({"training_profiles": "all"})", &parsed).ok());
  EXPECT_TRUE(parsed.all_profiles);
  EXPECT_TRUE(parsed.DrawsProfiles());
  EXPECT_FALSE(ApplyTrainConfigJson(R"({"training_profiles": "some"})", &parsed).ok());
  // A profile the policy was trained among, but not the simulator's own.
  env::SimulatorConfig on_4g;
  on_4g.device = "Raspberry Pi-5";
  on_4g.network = "4G";
  ExpectArtifactDecidesAsTrained(options, "profile_aware.pt", env::Budget{12, 0.01}, on_4g);
  auto metadata = ReadArtifactMetadata(::testing::TempDir() + "/profile_aware.pt");
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_TRUE(metadata->layout.profile_aware);
  EXPECT_EQ(metadata->layout.profile_time_scale_s, env::ObservationLayout::kProfileTimeScaleS);
  EXPECT_EQ(metadata->layout.profile_money_scale_usd,
            env::ObservationLayout::kProfileMoneyScaleUsd);
}

// A layout-3 artifact (the default policy until 2026-12-02, kept as a
// fixture) reads as before (no profile features) and its decisions do not
// depend on the per-request costs a context now carries.
TEST(ProfileFeatures, ALayout3PolicyDecidesAsBefore) {
  const std::string path =
      std::string(LCIO_SOURCE_DIR) + "/tests/policy/testdata/layout3_policy.pt";
  auto loaded = ArtifactPolicy::Load(path, "cpu");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const env::ObservationLayout& layout = (*loaded)->engine().encoder().layout();
  EXPECT_TRUE(layout.fit_aware);  // layout 3: fit features, no profile features
  EXPECT_FALSE(layout.profile_aware);
  EXPECT_EQ(static_cast<int>(layout.FeatureNames().size()), layout.size());
  for (const auto& name : layout.FeatureNames())
    EXPECT_EQ(name.find("latency_action"), std::string::npos);
  const data::Dataset& dataset = testing::EmbeddedDataset();
  env::SimulatorConfig on_4g;
  on_4g.network = "4G";
  auto simulator = env::Simulator::Create(dataset, SplitOne().train, on_4g);
  ASSERT_TRUE(simulator.ok());
  int decisions = 0;
  for (int e : SplitOne().test) {
    env::EpisodeRun run(**simulator, dataset.episodes[e], env::Budget{12, 0.01});
    while (!run.done()) {
      env::DecisionContext without_costs = run.context();
      without_costs.action_time_s.clear();
      without_costs.action_money_usd.clear();
      std::vector<double> with, without;
      const int action = (*loaded)->Act(run.context(), &with);
      ASSERT_EQ((*loaded)->Act(without_costs, &without), action);
      ASSERT_EQ(with, without);
      run.Step(action);
      ++decisions;
    }
  }
  EXPECT_GT(decisions, 40);
}

// The shipped default policy is the universal one: trained over every
// built-in device x network, it reads the request's own per-action costs,
// so the same turn scores differently on Wired and on 4G.
TEST(ProfileFeatures, TheDefaultPolicyReadsTheRequestsProfile) {
  const std::string path = std::string(LCIO_SOURCE_DIR) + "/policy/default_policy.pt";
  auto loaded = ArtifactPolicy::Load(path, "cpu");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const env::ObservationLayout& layout = (*loaded)->engine().encoder().layout();
  EXPECT_TRUE(layout.profile_aware);
  const data::Dataset& dataset = testing::EmbeddedDataset();
  env::SimulatorConfig wired, on_4g;
  on_4g.network = "4G";
  auto wired_sim = env::Simulator::Create(dataset, SplitOne().train, wired);
  auto sim_4g = env::Simulator::Create(dataset, SplitOne().train, on_4g);
  ASSERT_TRUE(wired_sim.ok() && sim_4g.ok());
  // The network's scores (the fallback table aside, which answers these
  // conversations with a fixed action per profile).
  const InferenceEngine& engine = (*loaded)->engine();
  const auto network_scores = [&engine](const env::DecisionContext& context) {
    std::vector<float> observation(engine.observation_size()), scores(engine.num_actions());
    engine.encoder().Encode(context, observation.data());
    EXPECT_TRUE(engine.Score(observation.data(), 1, scores.data()).ok());
    return scores;
  };
  int differing = 0, differing_actions = 0, decisions = 0;
  for (int e : SplitOne().test) {
    env::EpisodeRun run(**wired_sim, dataset.episodes[e], env::Budget{30, 0.05});
    while (!run.done()) {
      env::DecisionContext on_4g_context = run.context();
      env::SetActionCosts((*sim_4g)->costs(), &on_4g_context);
      if (network_scores(run.context()) != network_scores(on_4g_context)) ++differing;
      const int action = (*loaded)->Act(run.context(), nullptr);
      if ((*loaded)->Act(on_4g_context, nullptr) != action) ++differing_actions;
      run.Step(action);
      ++decisions;
    }
  }
  EXPECT_GT(decisions, 40);
  EXPECT_EQ(differing, decisions);
  // And what answers differs by profile: on Wired the plain cloud call takes
  // longer than one with a view, on 4G it is the cheap one.
  EXPECT_GT(differing_actions, 0);
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, Determinism,
                         ::testing::Values("ppo", "a2c", "dqn", "rc-ppo", "rc-a2c", "rc-dqn"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

// A short rc-ppo run over every profile with the validated fallback.
TrainOptions FallbackRun(int64_t timesteps) {
  TrainOptions options = ShortRun("rc-ppo", 4);
  options.timesteps = timesteps;
  options.ppo.n_steps = 512;
  options.fit_aware = true;
  options.all_profiles = true;
  options.fallback_validation_share = 0.2;
  return options;
}

// fallback_fixed_action reaches the selection: anchored, more cells answer
// with the table's most common fixed action than per cell, and the
// configuration records the rule (per_cell, the default, is not recorded).
TEST(ValidatedFallback, AnchoredRuleReachesTheTable) {
  TrainOptions options = FallbackRun(2000);
  const data::Dataset& dataset = testing::EmbeddedDataset();
  auto per_cell = Train(dataset, SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(per_cell.ok()) << per_cell.status();
  options.fallback_fixed_action = "anchored";
  auto anchored = Train(dataset, SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(anchored.ok()) << anchored.status();
  auto most_common = [](const env::FallbackTable& table) {
    std::map<int, int> count;
    for (const env::FallbackEntry& e : table.entries()) ++count[e.fixed_action];
    int most = 0;
    for (const auto& [action, n] : count) most = std::max(most, n);
    return most;
  };
  ASSERT_EQ(anchored->fallback->entries().size(), per_cell->fallback->entries().size());
  EXPECT_GT(most_common(*anchored->fallback), most_common(*per_cell->fallback))
      << per_cell->summary.fallback_description << " / " << anchored->summary.fallback_description;
  EXPECT_EQ(nlohmann::json::parse(anchored->summary.config_json).at("fallback_fixed_action"),
            "anchored");
  EXPECT_EQ(nlohmann::json::parse(per_cell->summary.config_json).count("fallback_fixed_action"),
            0u);
}

// The validated fallback: a share of the training side is held out of
// learning, the table covers every device x network x budget, the decisions
// depend on the whole training side and on nothing else, and the artifact
// decides as the network behind its table did in memory.
TEST(ValidatedFallback, HoldsOutValidationAndTheArtifactDecidesAsTrained) {
  TrainOptions options = FallbackRun(4000);
  const data::Dataset& dataset = testing::EmbeddedDataset();
  auto trained = Train(dataset, SplitOne().train, env::SimulatorConfig(), options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_NE(trained->fallback, nullptr);
  EXPECT_EQ(trained->fallback->entries().size(), 32u * env::DefaultFallbackBudgets().size());
  EXPECT_NE(trained->summary.fallback_description.find("policy in "), std::string::npos);
  std::vector<int> train = SplitOne().train;
  std::sort(train.begin(), train.end());
  EXPECT_EQ(trained->decision_model_episodes, train);
  EXPECT_EQ(nlohmann::json::parse(trained->summary.config_json).at("fallback_validation_share"),
            0.2);
  // Learning saw less than the whole training side: another network than
  // the same seed trained on all of it.
  TrainOptions without = options;
  without.fallback_validation_share = 0;
  auto all = Train(dataset, SplitOne().train, env::SimulatorConfig(), without);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->fallback, nullptr);
  EXPECT_NE(all->network.weights, trained->network.weights);
  EXPECT_EQ(nlohmann::json::parse(all->summary.config_json).count("fallback_validation_share"), 0u);

  const std::string path = ::testing::TempDir() + "/fallback.pt";
  ASSERT_TRUE(TrainPolicy(dataset, SplitOne().train, env::SimulatorConfig(), options, path).ok());
  auto loaded = ArtifactPolicy::Load(path, "cpu");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->engine().metadata().format_version, 2);
  EXPECT_EQ((*loaded)->engine().fallback().entries().size(), trained->fallback->entries().size());
  auto encoder = env::ObservationEncoder::Create(trained->layout, trained->response_model);
  ASSERT_TRUE(encoder.ok());
  env::FallbackPolicy in_memory(
      std::make_unique<NetworkPolicy>("trained", trained->network, *encoder), trained->fallback,
      trained->decision_model_episodes);
  int decisions = 0, fixed = 0;
  for (const char* network : {"Wired", "4G"})
    for (const env::Budget& budget : env::DefaultFallbackBudgets()) {
      env::SimulatorConfig served_on;
      served_on.network = network;
      auto simulator = env::Simulator::Create(dataset, SplitOne().train, served_on);
      ASSERT_TRUE(simulator.ok());
      for (int e : SplitOne().test) {
        env::EpisodeRun run(**simulator, dataset.episodes[e], budget);
        while (!run.done()) {
          std::vector<double> expected, got;
          const int action = in_memory.Act(run.context(), &expected);
          ASSERT_EQ((*loaded)->Act(run.context(), &got), action);
          ASSERT_EQ(got.size(), expected.size());
          fixed += expected.empty();
          run.Step(action);
          ++decisions;
        }
      }
    }
  EXPECT_GT(decisions, 200);
  EXPECT_EQ((*loaded)->error_count(), 0);
  EXPECT_GT(fixed, 0);
  std::cerr << "fallback answered " << fixed << " of " << decisions << " decisions\n";

  // With response features the model the network observes is the learning
  // slice's: fitted on 80% of the training side's turns, not all of them.
  TrainOptions aware = options;
  aware.response_aware = true;
  auto with_model = Train(dataset, SplitOne().train, env::SimulatorConfig(), aware);
  ASSERT_TRUE(with_model.ok()) << with_model.status();
  ASSERT_NE(with_model->response_model, nullptr);
  size_t training_turns = 0;
  for (int e : SplitOne().train) training_turns += dataset.episodes[e].turns.size();
  EXPECT_LT(with_model->response_model->num_points(), training_turns * 9 / 10);
  EXPECT_GT(with_model->response_model->num_points(), training_turns * 6 / 10);
  aware.fallback_validation_share = 0;
  auto without_holdout = Train(dataset, SplitOne().train, env::SimulatorConfig(), aware);
  ASSERT_TRUE(without_holdout.ok()) << without_holdout.status();
  EXPECT_EQ(without_holdout->response_model->num_points(), training_turns);

  // Too few episodes to hold any out.
  options.fallback_validation_share = 0.2;
  auto tiny = Train(dataset, {0, 1, 2, 3, 4}, env::SimulatorConfig(), options);
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tiny.status().message().find("fallback_validation_share"), std::string::npos);
  options.fallback_validation_share = 0.6;
  EXPECT_FALSE(Train(dataset, SplitOne().train, env::SimulatorConfig(), options).ok());
}

// Whatever the conversation's budget, a built-in profile is answered from
// its own entries of the shipped table (a key of costs relative to the
// budget alone mixed profiles up: at 60 s / 0.1 USD every Wired profile took
// a WiFi entry's action).
TEST(ValidatedFallback, TheDefaultPolicysTableKeepsEveryProfileInItsOwnEntries) {
  auto loaded =
      ArtifactPolicy::Load(std::string(LCIO_SOURCE_DIR) + "/policy/default_policy.pt", "cpu");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const env::FallbackTable& table = (*loaded)->engine().fallback();
  ASSERT_EQ(table.entries().size(), 96u);
  int checked = 0;
  for (const env::FallbackEntry& e : table.entries())
    for (const env::Budget& budget : {env::Budget{60, 0.1}, env::Budget{200, 0.05},
                                      env::Budget{2, 0.002}, env::Budget{30, 0}}) {
      env::DecisionContext c;
      c.action_time_s = e.action_time_s;
      c.action_money_usd = e.action_money_usd;
      c.remaining_latency_s = budget.latency_s;
      c.remaining_money_usd = budget.money_usd;
      const env::FallbackEntry* found = table.Nearest(c);
      ASSERT_NE(found, nullptr);
      // Profiles with identical costs (the fast devices) share entries.
      EXPECT_EQ(found->action_time_s, e.action_time_s) << e.device << "/" << e.network;
      EXPECT_EQ(found->network, e.network) << e.device << "/" << e.network;
      ++checked;
    }
  EXPECT_EQ(checked, 384);
}

TEST(TrainConfig, DeeplyNestedJsonIsRefusedByTheDepthLimit) {
  TrainOptions options;
  const absl::Status s =
      ApplyTrainConfigJson(std::string(100000, '[') + std::string(100000, ']'), &options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("training config: JSON nests arrays/objects more than 64 levels"),
            std::string::npos)
      << s;
}

}  // namespace
}  // namespace lcio::policy
