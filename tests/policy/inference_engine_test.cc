#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lcio/policy/inference.h"
#include "lcio/policy/testing.h"

namespace {

namespace fs = std::filesystem;
using lcio::policy::InferenceEngine;
using lcio::policy::ScoringPath;
namespace policy_testing = lcio::policy::testing;

class InferenceEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("lcio_inference_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string Write(const std::string& name, const policy_testing::TestArtifactOptions& o) {
    const std::string path = (dir_ / name).string();
    auto written = policy_testing::WriteTestArtifact(path, o);
    EXPECT_TRUE(written.ok()) << written.status();
    return path;
  }
  static std::shared_ptr<const InferenceEngine> LoadOrDie(const std::string& path) {
    auto engine = InferenceEngine::Load(path, "cpu");
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? *engine : nullptr;
  }
  static std::vector<float> RandomObservations(int n, int d, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.5f, 1.5f);
    std::vector<float> obs(static_cast<size_t>(n) * d);
    for (float& x : obs) x = (rng() % 3 == 0) ? 0.0f : uniform(rng);  // sparse, like real ones
    return obs;
  }
  static fs::path dir_;
};
fs::path InferenceEngineTest::dir_;

TEST_F(InferenceEngineTest, ExposesMetadataEncoderAndClassifier) {
  auto engine = LoadOrDie(Write("meta.pt", {}));
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->device_name(), "cpu");
  EXPECT_EQ(engine->observation_size(), engine->encoder().size());
  EXPECT_EQ(engine->num_actions(), 9);
  EXPECT_EQ(engine->encoder().actions().size(), 9);
  EXPECT_EQ(engine->classifier().tasks(), engine->metadata().tasks);
  EXPECT_EQ(engine->classifier().Predict("Query request 2").task, 2);
}

TEST_F(InferenceEngineTest, DeviceNames) {
  const std::string path = Write("device.pt", {});
  auto automatic = InferenceEngine::Load(path, "auto");
  ASSERT_TRUE(automatic.ok()) << automatic.status();
  // Debian's LibTorch has no CUDA: auto means the CPU, and asking for CUDA is an error.
  if ((*automatic)->device_name() == "cpu") {
    for (const char* name : {"cuda", "cuda:0", "cuda:3"}) {
      auto cuda = InferenceEngine::Load(path, name);
      ASSERT_FALSE(cuda.ok());
      EXPECT_NE(cuda.status().message().find(name), std::string::npos) << cuda.status();
      EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
    }
  }
  for (const char* name : {"", "gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "mps"}) {
    auto bad = InferenceEngine::Load(path, name);
    ASSERT_FALSE(bad.ok()) << name;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

TEST_F(InferenceEngineTest, AllScoringPathsAgree) {
  for (const std::string activation : {"tanh", "relu"}) {
    policy_testing::TestArtifactOptions options;
    options.activation = activation;
    options.hidden = {64, 64};
    auto engine = LoadOrDie(Write("paths_" + activation + ".pt", options));
    ASSERT_NE(engine, nullptr);
    const int d = engine->observation_size(), a = engine->num_actions();
    for (int n : {1, 2, 7, 16, 17, 64, 300}) {
      SCOPED_TRACE(activation + " batch " + std::to_string(n));
      const auto obs = RandomObservations(n, d, n);
      std::vector<float> reference(n * a), got(n * a);
      ASSERT_TRUE(
          engine->ScoreWith(ScoringPath::kTorchScript, obs.data(), n, reference.data()).ok());
      for (ScoringPath path : {ScoringPath::kAuto, ScoringPath::kCpuLoops}) {
        std::fill(got.begin(), got.end(), NAN);
        ASSERT_TRUE(engine->ScoreWith(path, obs.data(), n, got.data()).ok());
        for (int i = 0; i < n * a; ++i)
          ASSERT_NEAR(got[i], reference[i], 1e-5 * (1 + std::fabs(reference[i])))
              << "path " << static_cast<int>(path) << " index " << i;
      }
    }
  }
}

TEST_F(InferenceEngineTest, RowsAreIndependentOfTheBatch) {
  auto engine = LoadOrDie(Write("rows.pt", {}));
  ASSERT_NE(engine, nullptr);
  const int d = engine->observation_size(), a = engine->num_actions();
  const auto obs = RandomObservations(40, d, 5);
  std::vector<float> batch(40 * a), single(a);
  ASSERT_TRUE(engine->Score(obs.data(), 40, batch.data()).ok());
  for (int row = 0; row < 40; ++row) {
    ASSERT_TRUE(engine->Score(obs.data() + row * d, 1, single.data()).ok());
    for (int j = 0; j < a; ++j) EXPECT_NEAR(single[j], batch[row * a + j], 1e-5);
  }
}

TEST_F(InferenceEngineTest, RejectsBadArguments) {
  auto engine = LoadOrDie(Write("args.pt", {}));
  ASSERT_NE(engine, nullptr);
  std::vector<float> obs(engine->observation_size()), scores(engine->num_actions());
  EXPECT_TRUE(engine->Score(obs.data(), 0, scores.data()).ok());
  EXPECT_TRUE(engine->Score(nullptr, 0, nullptr).ok());
  EXPECT_FALSE(engine->Score(obs.data(), -1, scores.data()).ok());
  EXPECT_FALSE(engine->Score(nullptr, 1, scores.data()).ok());
  EXPECT_FALSE(engine->Score(obs.data(), 1, nullptr).ok());
  EXPECT_FALSE(engine->Score(obs.data(), 1 << 30, scores.data()).ok());
}

TEST_F(InferenceEngineTest, ConcurrentScoringMatchesSerial) {
  auto engine = LoadOrDie(Write("threads.pt", {}));
  ASSERT_NE(engine, nullptr);
  const int d = engine->observation_size(), a = engine->num_actions();
  constexpr int kThreads = 4, kCalls = 150;
  std::vector<std::vector<float>> inputs, expected;
  for (int t = 0; t < kThreads; ++t) {
    const int n = 1 + t * 11;  // loop and ATen paths both run concurrently
    inputs.push_back(RandomObservations(n, d, 100 + t));
    expected.emplace_back(n * a);
    ASSERT_TRUE(engine->Score(inputs[t].data(), n, expected[t].data()).ok());
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      const int n = 1 + t * 11;
      std::vector<float> got(n * a);
      for (int call = 0; call < kCalls; ++call) {
        const ScoringPath path = call % 3 == 0 ? ScoringPath::kTorchScript : ScoringPath::kAuto;
        if (!engine->ScoreWith(path, inputs[t].data(), n, got.data()).ok()) ++mismatches[t];
        for (int i = 0; i < n * a; ++i)
          if (std::fabs(got[i] - expected[t][i]) > 1e-5f) {
            ++mismatches[t];
            break;
          }
      }
    });
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST_F(InferenceEngineTest, FavouredActionWins) {
  policy_testing::TestArtifactOptions options;
  options.favoured_action = 5;
  auto engine = LoadOrDie(Write("favoured.pt", options));
  ASSERT_NE(engine, nullptr);
  const int d = engine->observation_size(), a = engine->num_actions();
  const auto obs = RandomObservations(10, d, 3);
  std::vector<float> scores(10 * a);
  ASSERT_TRUE(engine->Score(obs.data(), 10, scores.data()).ok());
  for (int row = 0; row < 10; ++row)
    EXPECT_EQ(std::max_element(scores.begin() + row * a, scores.begin() + (row + 1) * a) -
                  (scores.begin() + row * a),
              5);
}

TEST_F(InferenceEngineTest, ReferenceObservationLayoutWorks) {
  policy_testing::TestArtifactOptions options;
  options.task_one_hot = options.prompt_aware = options.budget_aware = false;
  options.num_views = 2;
  options.hidden = {4};
  options.activation = "relu";
  auto engine = LoadOrDie(Write("reference.pt", options));
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->observation_size(), (2 + 2) * 5);
  EXPECT_EQ(engine->num_actions(), 5);
}

}  // namespace
