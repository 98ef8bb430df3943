// One network value, one forward: what the trainer evaluates with
// (NetworkPolicy) scores exactly what the inference engine serves from the
// artifact of the same run; device strings mean the same to the trainer and
// the engine; the network value checks itself.
#include "lcio/policy/network.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lcio/env/simulator.h"
#include "lcio/env/split.h"
#include "lcio/policy/inference.h"
#include "lcio/policy/testing.h"
#include "lcio/policy/trainer.h"
#include "test_support.h"

namespace lcio::policy {
namespace {

namespace fs = std::filesystem;

std::string TempPath(const std::string& name) {
  return (fs::temp_directory_path() /
          ("lcio_network_test_" + std::to_string(getpid()) + "_" + name))
      .string();
}

const env::Split& SplitOne() {
  static const env::Split* split = [] {
    auto s = env::RandomSplit(static_cast<int>(lcio::testing::EmbeddedDataset().episodes.size()), 1,
                              0.2);
    EXPECT_TRUE(s.ok());
    return new env::Split(*s);
  }();
  return *split;
}

TrainOptions Short(const std::string& algo) {
  TrainOptions options;
  options.algo = algo;
  options.timesteps = 256;
  options.device = "cpu";
  if (algo == "ppo") {
    options.ppo.n_steps = 128;
    options.ppo.batch_size = 64;
  }
  if (algo == "dqn") {
    options.dqn.learning_starts = 32;
    options.dqn.buffer_size = 1000;
  }
  return options;
}

// Contexts a random agent reaches on the test side's episodes.
std::vector<env::DecisionContext> Contexts(const env::Simulator& simulator, int count) {
  const data::Dataset& data = lcio::testing::EmbeddedDataset();
  std::mt19937_64 rng(7);
  std::vector<env::DecisionContext> contexts;
  for (int i = 0; i < count; ++i) {
    const data::Episode& episode = data.episodes[SplitOne().test[rng() % SplitOne().test.size()]];
    env::EpisodeRun run(simulator, episode, env::Budget{30, 0.05});
    const int turn = static_cast<int>(rng() % episode.turns.size());
    for (int t = 0; t < turn; ++t) run.Step(static_cast<int>(rng() % simulator.actions().size()));
    contexts.push_back(run.context());
  }
  return contexts;
}

// The trainer's own evaluation (NetworkPolicy over TrainResult::network) and
// the served artifact of the same seeded run must score every context
// identically, bit for bit: one forward, the kernels'. (It used to be a
// separate loop with std::tanh in the trainer's evaluation.)
TEST(OneForward, TrainerEvaluationScoresWhatTheEngineServes) {
  const data::Dataset& data = lcio::testing::EmbeddedDataset();
  for (const std::string algo : {"ppo", "dqn"}) {  // tanh and relu networks
    SCOPED_TRACE(algo);
    const TrainOptions options = Short(algo);
    auto trained = Train(data, SplitOne().train, env::SimulatorConfig(), options);
    ASSERT_TRUE(trained.ok()) << trained.status();
    const std::string path = TempPath(algo + ".pt");
    auto summary = TrainPolicy(data, SplitOne().train, env::SimulatorConfig(), options, path);
    ASSERT_TRUE(summary.ok()) << summary.status();
    auto engine = InferenceEngine::Load(path, "cpu");
    fs::remove(path);
    ASSERT_TRUE(engine.ok()) << engine.status();

    auto encoder = env::ObservationEncoder::Create(trained->layout);
    ASSERT_TRUE(encoder.ok());
    NetworkPolicy evaluated("trained", trained->network, *encoder);
    auto simulator = env::Simulator::Create(data, SplitOne().train, env::SimulatorConfig());
    ASSERT_TRUE(simulator.ok());
    std::vector<float> observation((*engine)->observation_size());
    std::vector<float> served((*engine)->num_actions());
    std::vector<double> scores;
    int differing = 0;
    for (const env::DecisionContext& context : Contexts(**simulator, 200)) {
      evaluated.Act(context, &scores);
      (*engine)->encoder().Encode(context, observation.data());
      ASSERT_TRUE((*engine)->Score(observation.data(), 1, served.data()).ok());
      ASSERT_EQ(scores.size(), served.size());
      for (size_t a = 0; a < served.size(); ++a)
        differing += static_cast<float>(scores[a]) != served[a] ? 1 : 0;
    }
    EXPECT_EQ(differing, 0) << "scores differ between evaluation and serving";
  }
}

// A batch too large for Forward's stack scratch gives the same rows as one
// row at a time.
TEST(OneForward, LargeBatchesEqualSingleRows) {
  Network net;
  net.sizes = {40, 96, 96, 9};
  net.activation = Activation::kTanh;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-0.3f, 0.3f);
  for (size_t l = 0; l + 1 < net.sizes.size(); ++l) {
    net.weights.emplace_back(static_cast<size_t>(net.sizes[l]) * net.sizes[l + 1]);
    net.biases.emplace_back(net.sizes[l + 1]);
    for (float& w : net.weights.back()) w = uniform(rng);
    for (float& b : net.biases.back()) b = uniform(rng);
  }
  ASSERT_TRUE(net.Validate().ok());
  const int rows = 300;
  std::vector<float> x(static_cast<size_t>(rows) * 40), batch(rows * 9), single(9);
  for (float& v : x) v = uniform(rng) < 0 ? 0.0f : uniform(rng);
  net.Forward(x.data(), rows, batch.data());
  for (int r = 0; r < rows; ++r) {
    net.Forward(x.data() + r * 40, 1, single.data());
    for (int a = 0; a < 9; ++a) ASSERT_EQ(single[a], batch[r * 9 + a]) << "row " << r;
  }
}

// The kernel sums wide layers 64 or 32 columns at a time in registers and the
// rest column by column; every path must add the same terms in the same order
// (bias, then input by input), so that a policy scores the same whatever its
// width. Each column of a layer must equal, bit for bit, a one-column layer
// built from that column alone (the plain path), with inputs spanning more
// than one of the kernel's 256-input blocks.
TEST(OneForward, EveryColumnIsTheSameSumAtAnyLayerWidth) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int in = 300, rows = 3;
  std::vector<float> x(static_cast<size_t>(rows) * in);
  for (float& v : x) v = uniform(rng) < 0 ? 0.0f : uniform(rng);
  for (int width : {1, 9, 31, 32, 33, 63, 64, 65, 96, 100, 128, 130, 200}) {
    Network layer;
    layer.sizes = {in, width};
    layer.weights.emplace_back(static_cast<size_t>(in) * width);
    layer.biases.emplace_back(width);
    for (float& w : layer.weights[0]) w = uniform(rng);
    for (float& b : layer.biases[0]) b = uniform(rng);
    ASSERT_TRUE(layer.Validate().ok());
    std::vector<float> out(static_cast<size_t>(rows) * width), one(rows);
    layer.Forward(x.data(), rows, out.data());
    for (int c = 0; c < width; ++c) {
      Network column;
      column.sizes = {in, 1};
      column.weights.emplace_back(in);
      for (int i = 0; i < in; ++i) column.weights[0][i] = layer.weights[0][i * width + c];
      column.biases.push_back({layer.biases[0][c]});
      column.Forward(x.data(), rows, one.data());
      for (int r = 0; r < rows; ++r)
        ASSERT_EQ(out[r * width + c], one[r])
            << "width " << width << ", column " << c << ", row " << r;
    }
  }
}

TEST(OneForward, ValidateNamesTheRule) {
  Network net;
  EXPECT_NE(net.Validate().message().find("no layers"), std::string::npos);
  net.sizes = {3, 2};
  net.weights = {std::vector<float>(6, 0.5f)};
  net.biases = {std::vector<float>(2, 0.0f)};
  EXPECT_TRUE(net.Validate().ok());
  net.weights[0].pop_back();
  EXPECT_NE(net.Validate().message().find("layer 0"), std::string::npos) << net.Validate();
  net.weights[0].push_back(std::numeric_limits<float>::infinity());
  EXPECT_NE(net.Validate().message().find("NaN or infinite"), std::string::npos);
  EXPECT_FALSE(ParseActivation("sigmoid").ok());
  EXPECT_EQ(*ParseActivation("relu"), Activation::kRelu);
}

// One parser: whatever the trainer says of a device string, the engine says
// too (the trainer used to accept "cuda:" and "cuda:1234" as device 0 and
// 1234, the engine refused them as malformed).
TEST(DeviceStrings, TrainerAndEngineReadThemAlike) {
  const std::string path = TempPath("device.pt");
  ASSERT_TRUE(policy::testing::WriteTestArtifact(path, {}).ok());
  const data::Dataset& data = lcio::testing::EmbeddedDataset();
  for (const std::string name : {"auto", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:", "cuda:1234",
                                 "cuda:x", "cuda:-1", "", "gpu", "CUDA", "cpu:0", "cudax"}) {
    SCOPED_TRACE("device \"" + name + "\"");
    TrainOptions options = Short("ppo");
    options.device = name;
    auto trained = Train(data, SplitOne().train, env::SimulatorConfig(), options);
    auto engine = InferenceEngine::Load(path, name);
    EXPECT_EQ(trained.status().code(), engine.status().code())
        << "trainer: " << trained.status() << "; engine: " << engine.status();
    // Training runs on the CPU kernels whatever the string; the summary says so.
    if (trained.ok()) {
      EXPECT_EQ(trained->summary.device, "cpu");
    }
  }
  fs::remove(path);
}

}  // namespace
}  // namespace lcio::policy
