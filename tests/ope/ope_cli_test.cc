// lcio-ope's command line: naming policies, --baseline (tools/ope_cli.h).
#include "ope_cli.h"

#include <string>

#include "gtest/gtest.h"
#include "test_support.h"

namespace lcio::cli {
namespace {

using testing::EmbeddedDataset;

TEST(ResolveBaseline, TheBaselineIsOneOfTheCandidatesOrEvaluatedFirst) {
  auto none = ResolveBaseline({"a.pt", "b.pt"}, "");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->baseline, -1);
  EXPECT_EQ(none->specs, (std::vector<std::string>{"a.pt", "b.pt"}));
  auto among = ResolveBaseline({"a.pt", "b.pt"}, "b.pt");
  ASSERT_TRUE(among.ok()) << among.status();
  EXPECT_EQ(among->baseline, 1);
  EXPECT_EQ(among->specs, (std::vector<std::string>{"a.pt", "b.pt"}));
  auto added = ResolveBaseline({"b.pt"}, "serving.pt");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->baseline, 0);
  EXPECT_EQ(added->specs, (std::vector<std::string>{"serving.pt", "b.pt"}));
}

TEST(ResolveBaseline, ErrorsNameTheFlagAndTheValue) {
  auto list = ResolveBaseline({"a.pt"}, "a.pt,b.pt");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(list.status().message().find("--baseline = \"a.pt,b.pt\""), std::string::npos)
      << list.status();
  EXPECT_NE(list.status().message().find("one policy"), std::string::npos) << list.status();
  auto blank = ResolveBaseline({"a.pt"}, " ");
  ASSERT_FALSE(blank.ok());
  EXPECT_NE(blank.status().message().find("--baseline = \" \""), std::string::npos)
      << blank.status();
  auto alone = ResolveBaseline({}, "serving.pt");
  ASSERT_FALSE(alone.ok());
  EXPECT_NE(alone.status().message().find("--baseline = \"serving.pt\""), std::string::npos)
      << alone.status();
  EXPECT_NE(alone.status().message().find("--candidates is empty"), std::string::npos)
      << alone.status();
}

TEST(MakeFlagPolicy, ErrorsNameTheFlagAndTheValue) {
  const data::Dataset& d = EmbeddedDataset();
  std::vector<int> all;
  for (size_t i = 0; i < d.episodes.size(); ++i) all.push_back(static_cast<int>(i));
  auto simulator = env::Simulator::Create(d, all, env::SimulatorConfig());
  ASSERT_TRUE(simulator.ok()) << simulator.status();
  auto fixed = MakeFlagPolicy("baseline", "fixed:99", d, **simulator);
  ASSERT_FALSE(fixed.ok());
  EXPECT_NE(fixed.status().message().find("--baseline: policy \"fixed:99\""), std::string::npos)
      << fixed.status();
  EXPECT_NE(fixed.status().message().find("fixed:N needs N in [0, 8]"), std::string::npos)
      << fixed.status();
  auto missing = MakeFlagPolicy("baseline", "/nonexistent/serving.pt", d, **simulator);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--baseline: policy \"/nonexistent/serving.pt\""),
            std::string::npos)
      << missing.status();
  auto shipped = MakeFlagPolicy(
      "baseline", std::string(LCIO_SOURCE_DIR) + "/policy/default_policy.pt", d, **simulator);
  ASSERT_TRUE(shipped.ok()) << shipped.status();
  EXPECT_EQ((*shipped)->name().rfind("rc-ppo", 0), 0u) << (*shipped)->name();
  auto local = MakeFlagPolicy("candidates", "local", d, **simulator);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ((*local)->name(), "Local");
}

}  // namespace
}  // namespace lcio::cli
