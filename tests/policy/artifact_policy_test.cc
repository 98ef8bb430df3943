#include "lcio/policy/artifact_policy.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/fallback.h"
#include "lcio/env/simulator.h"
#include "lcio/env/split.h"
#include "lcio/policy/testing.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using lcio::policy::ArtifactPolicy;
namespace policy_testing = lcio::policy::testing;

class ArtifactPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lcio_artifact_policy_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<ArtifactPolicy> Load(const policy_testing::TestArtifactOptions& options) {
    const std::string path = (dir_ / "p.pt").string();
    auto written = policy_testing::WriteTestArtifact(path, options);
    EXPECT_TRUE(written.ok()) << written.status();
    auto policy = ArtifactPolicy::Load(path, "cpu");
    EXPECT_TRUE(policy.ok()) << policy.status();
    return policy.ok() ? *std::move(policy) : nullptr;
  }
  static lcio::env::DecisionContext Context() {
    lcio::env::DecisionContext context;
    context.previous_actions = {0, 3};
    context.previous_tasks = {1, 2};
    context.task_index = 3;
    context.association = {0.1, 0.9, 0.4};
    context.remaining_latency_s = 20;
    context.remaining_money_usd = 0.03;
    return context;
  }
  fs::path dir_;
};

TEST_F(ArtifactPolicyTest, ActReturnsTheArgmaxAndFillsScores) {
  policy_testing::TestArtifactOptions options;
  options.favoured_action = 6;
  auto policy = Load(options);
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->name(), policy->engine().metadata().policy_version);
  std::vector<double> scores;
  EXPECT_EQ(policy->Act(Context(), &scores), 6);
  ASSERT_EQ(scores.size(), 9u);
  EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(), 6);
  EXPECT_EQ(policy->error_count(), 0);
}

// A fallback table of one entry keyed on `context`'s costs and budgets.
std::string OneEntryFallback(const lcio::env::DecisionContext& context, int fixed, bool serve) {
  lcio::env::FallbackEntry e;
  e.device = "d";
  e.network = "n";
  e.budget = {context.remaining_latency_s, context.remaining_money_usd};
  e.action_time_s = context.action_time_s;
  e.action_money_usd = context.action_money_usd;
  e.fixed_action = fixed;
  e.serve_policy = serve;
  return lcio::env::FallbackTable({e}).ToJson();
}

TEST_F(ArtifactPolicyTest, TheFallbackTableAnswersWithItsFixedActionWhereItSaysSo) {
  lcio::env::DecisionContext context = Context();
  context.action_time_s = {1, 2, 3, 3, 3, 4, 4, 4, 5};
  context.action_money_usd = {0, 0.001, 0.002, 0.002, 0.002, 0.003, 0.003, 0.003, 0.004};
  policy_testing::TestArtifactOptions options;
  options.favoured_action = 6;
  options.fallback_json = OneEntryFallback(context, 2, /*serve=*/false);
  auto policy = Load(options);
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->engine().metadata().format_version, 2);
  ASSERT_EQ(policy->engine().fallback().entries().size(), 1u);
  std::vector<double> scores = {1};
  EXPECT_EQ(policy->Act(context, &scores), 2);
  EXPECT_TRUE(scores.empty());  // as a fixed action: the shield falls back to the cheapest
  // Where validation showed the network ahead, it decides.
  options.fallback_json = OneEntryFallback(context, 2, /*serve=*/true);
  policy = Load(options);
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->Act(context, &scores), 6);
  EXPECT_EQ(scores.size(), 9u);
  // Without a table: format_version 1, as before the table existed.
  options.fallback_json.clear();
  policy = Load(options);
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->engine().metadata().format_version, 1);
  EXPECT_TRUE(policy->engine().fallback().empty());
  EXPECT_EQ(policy->Act(context, &scores), 6);
}

TEST_F(ArtifactPolicyTest, ScoresMatchTheEngineOnTheEncodedContext) {
  auto policy = Load({});
  ASSERT_NE(policy, nullptr);
  const auto& engine = policy->engine();
  std::vector<float> obs(engine.observation_size()), expected(engine.num_actions());
  engine.encoder().Encode(Context(), obs.data());
  ASSERT_TRUE(engine.Score(obs.data(), 1, expected.data()).ok());
  std::vector<double> scores;
  const int action = policy->Act(Context(), &scores);
  ASSERT_EQ(scores.size(), expected.size());
  for (size_t i = 0; i < scores.size(); ++i) EXPECT_FLOAT_EQ(scores[i], expected[i]);
  EXPECT_EQ(action, std::max_element(expected.begin(), expected.end()) - expected.begin());
}

TEST_F(ArtifactPolicyTest, BadContextIsAnErrorNotACrash) {
  auto policy = Load({});
  ASSERT_NE(policy, nullptr);
  auto context = Context();
  context.association = {0.5};  // the artifact has 3 views
  auto decided = policy->Decide(context, nullptr);
  ASSERT_FALSE(decided.ok());
  EXPECT_NE(decided.status().message().find("association"), std::string::npos);
  std::vector<double> scores = {1, 2};
  EXPECT_EQ(policy->Act(context, &scores), 0);
  EXPECT_TRUE(scores.empty());
  context = Context();
  context.task_index = 9;
  EXPECT_EQ(policy->Act(context, nullptr), 0);
  EXPECT_EQ(policy->error_count(), 2);
  EXPECT_NE(policy->first_error().message().find("association"), std::string::npos);
  EXPECT_TRUE(policy->CheckCompatible(3, 4).ok());
  EXPECT_FALSE(policy->CheckCompatible(2, 4).ok());
  EXPECT_FALSE(policy->CheckCompatible(3, 5).ok());
}

// Scores that are not numbers are an error, not an argmax (which picked
// action 0 in silence).
TEST_F(ArtifactPolicyTest, NonFiniteScoresAreAnErrorNotADecision) {
  const std::string path = (dir_ / "overflow.pt").string();
  ASSERT_TRUE(policy_testing::WriteOverflowingTestArtifact(path).ok());
  auto policy = ArtifactPolicy::Load(path, "cpu");
  ASSERT_TRUE(policy.ok()) << policy.status();
  std::vector<double> scores = {1, 2};
  auto decided = (*policy)->Decide(Context(), &scores);
  ASSERT_FALSE(decided.ok());
  EXPECT_EQ(decided.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(decided.status().message().find("the policy's score for action 0 is inf"),
            std::string::npos)
      << decided.status();
  EXPECT_EQ((*policy)->Act(Context(), &scores), 0);
  EXPECT_TRUE(scores.empty());
  EXPECT_EQ((*policy)->error_count(), 1);
}

TEST_F(ArtifactPolicyTest, EvaluatesOnM4A1WithTheShield) {
  const auto& dataset = lcio::testing::EmbeddedDataset();
  ASSERT_FALSE(dataset.episodes.empty());
  policy_testing::TestArtifactOptions options;
  options.tasks = dataset.tasks;
  options.num_views = dataset.num_views;
  options.favoured_action = static_cast<int>((1u << dataset.num_views));  // cloud, every view
  auto policy = Load(options);
  ASSERT_NE(policy, nullptr);
  ASSERT_TRUE(
      policy->CheckCompatible(dataset.num_views, static_cast<int>(dataset.tasks.size())).ok());
  auto split = lcio::env::RandomSplit(static_cast<int>(dataset.episodes.size()), 1, 0.2);
  ASSERT_TRUE(split.ok());
  auto simulator = lcio::env::Simulator::Create(dataset, split->train, {});
  ASSERT_TRUE(simulator.ok()) << simulator.status();
  lcio::env::EvalOptions eval;
  eval.budget = {8.0, 0.01};  // too tight for the favoured (most expensive) action every turn
  eval.shield = true;
  const auto result = lcio::env::EvaluatePolicy(**simulator, dataset, split->test, *policy, eval);
  EXPECT_EQ(policy->error_count(), 0) << policy->first_error();
  EXPECT_GT(result.decisions, 0);
  EXPECT_GT(result.shield_overrides, 0);
  EXPECT_EQ(result.share_over_money, 0);
  eval.shield = false;
  const auto unshielded =
      lcio::env::EvaluatePolicy(**simulator, dataset, split->test, *policy, eval);
  EXPECT_GT(unshielded.share_over_money, 0);
  for (const auto& episode : unshielded.episodes)
    for (int action : episode.actions) EXPECT_EQ(action, options.favoured_action);
}

}  // namespace
