// Learning test on a tiny bandit-like environment with a known optimal
// action, through the whole trainer (TrainingEnv, kNN simulator, network).
// One view, one-turn episodes; the logged answers make the response of
// local 0 (refusals), cloud text-only 1.0, cloud with the view 0.1, so that
// under the reference profiles the best action is cloud text-only (1).
#include <string>

#include "gtest/gtest.h"
#include "lcio/data/m4a1.h"
#include "lcio/policy/trainer.h"

namespace lcio::policy {
namespace {

data::Dataset BanditDataset() {
  std::string json = "[";
  int id = 0;
  for (int copy = 0; copy < 6; ++copy) {
    for (int kind = 0; kind < 3; ++kind) {
      if (id > 0) json += ",";
      const std::string action = kind == 0 ? "0" : "1";
      const std::string views = kind == 2 ? "[0]" : "null";
      const std::string answer = kind == 0 ? "sorry, no idea" : "a fine answer";
      const std::string score = kind == 1 ? "1.0" : kind == 2 ? "0.1" : "0.8";
      json += "{\"id\": " + std::to_string(id++) +
              ", \"image_paths\": [\"v0.jpg\"], \"association_score\": [[0.0]], "
              "\"interactions\": [{\"question\": \"q\", \"task_cat\": \"Query\", \"action\": " +
              action + ", \"image_index\": " + views + ", \"answer\": \"" + answer +
              "\", \"score\": " + score + ", \"interaction_time\": 1.0, \"usage_cost\": 0.001}]}";
    }
  }
  json += "]";
  auto dataset = data::ParseM4A1(json, "bandit");
  EXPECT_TRUE(dataset.ok()) << dataset.status();
  return dataset.ok() ? *std::move(dataset) : data::Dataset();
}

class BanditTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BanditTest, LearnsTheKnownBestAction) {
  const data::Dataset dataset = BanditDataset();
  ASSERT_EQ(dataset.episodes.size(), 18u);
  std::vector<int> episodes;
  for (int e = 0; e < 18; ++e) episodes.push_back(e);
  env::SimulatorConfig config;
  TrainOptions options;
  options.algo = GetParam();
  options.timesteps = 3000;
  options.seed = 7;
  options.budgets = env::BudgetDistribution();
  options.budgets.fixed = {1000.0, 1.0};  // never binding
  const std::string base = options.algo.substr(options.algo.rfind('-') + 1);
  options.ppo.n_steps = 256;  // each algorithm reads only its own
  options.ppo.learning_rate = 1e-3;
  options.a2c.learning_rate = 2e-3;
  options.dqn.learning_rate = 1e-3;
  options.dqn.target_update_interval = 100;
  options.dqn.exploration_fraction = 0.3;
  auto result = Train(dataset, episodes, config, options);
  ASSERT_TRUE(result.ok()) << result.status();
  auto encoder = env::ObservationEncoder::Create(result->layout);
  ASSERT_TRUE(encoder.ok());
  NetworkPolicy policy("bandit", result->network, *encoder);
  env::DecisionContext context;
  context.task_index = 0;
  context.association = {0.0};
  context.remaining_latency_s = 1000;
  context.remaining_money_usd = 1.0;
  std::vector<double> scores;
  EXPECT_EQ(policy.Act(context, &scores), 1)
      << "scores " << scores[0] << " " << scores[1] << " " << scores[2];
  // Training ends choosing it: the mean reward approaches the optimum
  // (1 - (1 + 0.098) / 3 = 0.634; the others are 0 and -0.48).
  EXPECT_GT(result->summary.mean_episode_reward, 0.5);
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, BanditTest,
                         ::testing::Values("ppo", "a2c", "dqn", "rc-ppo", "rc-a2c", "rc-dqn"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace lcio::policy
