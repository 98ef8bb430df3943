// Parity with the original evaluator: all 27 cases of
// tests/env/testdata/fixed_action_figures.json (3 splits x 9 fixed actions),
// per episode and mean, to 1e-9 relative.
#include <fstream>

#include "gtest/gtest.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/split.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace lcio::env {
namespace {

using nlohmann::json;

void ExpectClose(double expected, double actual, const std::string& what) {
  const double tolerance = 1e-9 * std::max(1.0, std::abs(expected));
  EXPECT_NEAR(expected, actual, tolerance) << what;
}

// 1e-9 relative, with an absolute floor for figures that are ~0.
void ExpectRelative(double expected, double actual, const std::string& what) {
  const double scale = std::max(std::abs(expected), 1e-12);
  EXPECT_LE(std::abs(expected - actual) / scale, 1e-9)
      << what << ": expected " << expected << ", got " << actual;
}

TEST(ParityTest, AllFixedActionCasesMatchTheReference) {
  std::ifstream in(lcio::testing::TestDataPath("fixed_action_figures.json"));
  ASSERT_TRUE(in.good());
  const json figures = json::parse(in);
  const data::Dataset& dataset = lcio::testing::EmbeddedDataset();
  ASSERT_EQ(dataset.episodes.size(), 100u);

  const json& d = figures["defaults"];
  SimulatorConfig config;
  config.device = d["local_device"];
  config.network = d["cloud_server"];
  config.weights = {d["weights"]["alpha"], d["weights"]["beta_association"],
                    d["weights"]["beta_latency"], d["weights"]["beta_usage"]};
  config.time_span = d["time_span"];
  config.k_neighbors = d["k_neighbors"];
  const Budget budget{d["latency_budget_s"], d["usage_budget_usd"]};

  int cases = 0;
  for (const json& c : figures["cases"]) {
    const std::string label = "split " + std::to_string(c["split_seed"].get<int>()) +
                              " action " + std::to_string(c["action"].get<int>());
    auto split = SplitFromIds(dataset, c["train_ids"].get<std::vector<int64_t>>(),
                              c["test_ids"].get<std::vector<int64_t>>());
    ASSERT_TRUE(split.ok()) << split.status();
    auto simulator = Simulator::Create(dataset, split->train, config);
    ASSERT_TRUE(simulator.ok()) << simulator.status();
    FixedPolicy policy(c["action"].get<int>(), "fixed");
    const PolicyResult result =
        EvaluatePolicy(**simulator, dataset, split->test, policy, EvalOptions{budget, false, 1});
    ASSERT_EQ(result.episodes.size(), c["episodes"].size()) << label;
    for (size_t i = 0; i < result.episodes.size(); ++i) {
      const json& e = c["episodes"][i];
      const EpisodeResult& r = result.episodes[i];
      ASSERT_EQ(r.id, e["id"].get<int64_t>()) << label;
      const std::string where = label + " episode " + std::to_string(r.id);
      ExpectRelative(e["response"], r.response, where + " response");
      ExpectRelative(e["association"], r.association, where + " association");
      ExpectRelative(e["latency"], r.latency_s, where + " latency");
      ExpectRelative(e["usage"], r.money_usd, where + " usage");
      ExpectRelative(e["reward"], r.reward, where + " reward");
    }
    const json& m = c["mean"];
    ExpectRelative(m["response"], result.response, label + " mean response");
    ExpectRelative(m["association"], result.association, label + " mean association");
    ExpectRelative(m["latency"], result.latency_s, label + " mean latency");
    ExpectRelative(m["usage"], result.money_usd, label + " mean usage");
    ExpectRelative(m["reward"], result.reward, label + " mean reward");
    ++cases;
  }
  EXPECT_EQ(cases, 27);
  (void)ExpectClose;
}

}  // namespace
}  // namespace lcio::env
