// The split an artifact records (lcio-eval --save_policies) and the check that
// lets lcio-eval --policy=...{split}... count it as held out.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lcio/env/action_table.h"
#include "lcio/env/split.h"
#include "lcio/policy/artifact.h"
#include "nlohmann/json.hpp"

namespace {

using lcio::policy::ArtifactMetadata;
using lcio::policy::CheckTrainingSplit;
using lcio::policy::MetadataFromJson;
using lcio::policy::MetadataToJson;
using lcio::policy::TrainEpisodesSha256;
using lcio::policy::ValidateMetadata;

const std::string kData(64, 'a');

ArtifactMetadata ValidMetadata() {
  ArtifactMetadata m;
  m.algo = "rc-ppo";
  m.layout.num_views = 3;
  m.layout.num_tasks = 2;
  auto table = lcio::env::ActionTable::Create(3);
  m.num_actions = table->size();
  for (int a = 0; a < table->size(); ++a) m.action_views.push_back(table->views(a));
  m.tasks = {"control", "question"};
  m.view_names = {"view0", "view1", "view2"};
  m.device = "Jetson TX2";
  m.network = "Wired";
  m.data_sha256 = kData;
  m.classifier_json =
      lcio::policy::TaskClassifier::Train({"turn on", "what is"}, {0, 1}, m.tasks)->ToJson();
  return m;
}

// The metadata as lcio-eval --save_policies records split `seed` of 100 episodes.
ArtifactMetadata TrainedOn(uint64_t seed, double test_ratio = 0.2) {
  ArtifactMetadata m = ValidMetadata();
  const lcio::env::Split split = *lcio::env::RandomSplit(100, seed, test_ratio);
  m.training_split.known = true;
  m.training_split.seed = seed;
  m.training_split.test_ratio = test_ratio;
  m.training_split.num_episodes = 100;
  m.training_split.train_episodes = static_cast<int>(split.train.size());
  m.training_split.train_episodes_sha256 = TrainEpisodesSha256(split.train);
  return m;
}

TEST(TrainingSplit, JsonRoundTrip) {
  const ArtifactMetadata m = TrainedOn(7);
  auto back = MetadataFromJson(MetadataToJson(m), "x.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->training_split.known);
  EXPECT_EQ(back->training_split.seed, 7u);
  EXPECT_EQ(back->training_split.test_ratio, 0.2);
  EXPECT_EQ(back->training_split.num_episodes, 100);
  EXPECT_EQ(back->training_split.train_episodes, 80);
  EXPECT_EQ(back->training_split.train_episodes_sha256, m.training_split.train_episodes_sha256);
}

// Artifacts written before the field (and by lcio-train) have none: the
// split is unknown and their JSON, hence their policy_version, is unchanged.
TEST(TrainingSplit, AbsentMeansUnknown) {
  const ArtifactMetadata m = ValidMetadata();
  const std::string json = MetadataToJson(m);
  EXPECT_FALSE(nlohmann::json::parse(json).contains("training_split"));
  auto back = MetadataFromJson(json, "old.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->training_split.known);
  const lcio::env::Split split = *lcio::env::RandomSplit(100, 1, 0.2);
  const absl::Status s = CheckTrainingSplit(*back, kData, 1, 0.2, split.train, "old.pt");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("unknown"), std::string::npos) << s;
  EXPECT_NE(s.message().find("old.pt"), std::string::npos) << s;
}

TEST(TrainingSplit, AcceptsItsOwnTrainingSide) {
  const lcio::env::Split split = *lcio::env::RandomSplit(100, 3, 0.2);
  EXPECT_TRUE(CheckTrainingSplit(TrainedOn(3), kData, 3, 0.2, split.train, "a.pt").ok());
  // The hash does not depend on the order of the indices.
  std::vector<int> reversed(split.train.rbegin(), split.train.rend());
  EXPECT_EQ(TrainEpisodesSha256(reversed), TrainEpisodesSha256(split.train));
}

TEST(TrainingSplit, RefusesAnotherSplit) {
  const lcio::env::Split split2 = *lcio::env::RandomSplit(100, 2, 0.2);
  const absl::Status s = CheckTrainingSplit(TrainedOn(1), kData, 2, 0.2, split2.train, "s1.pt");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("split seed 1"), std::string::npos) << s;
  EXPECT_NE(s.message().find("split seed 2"), std::string::npos) << s;
  // The same seed with another test ratio is another training side.
  const lcio::env::Split wider = *lcio::env::RandomSplit(100, 1, 0.3);
  EXPECT_FALSE(CheckTrainingSplit(TrainedOn(1), kData, 1, 0.3, wider.train, "s1.pt").ok());
}

TEST(TrainingSplit, RefusesAnotherDataSet) {
  const lcio::env::Split split = *lcio::env::RandomSplit(100, 1, 0.2);
  const absl::Status s =
      CheckTrainingSplit(TrainedOn(1), std::string(64, 'b'), 1, 0.2, split.train, "s1.pt");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("data_sha256"), std::string::npos) << s;
}

TEST(TrainingSplit, ValidationNamesTheField) {
  ArtifactMetadata m = TrainedOn(1);
  m.training_split.train_episodes_sha256 = "not-a-hash";
  absl::Status s = ValidateMetadata(m, "x.pt");
  EXPECT_NE(s.message().find("training_split.train_episodes_sha256"), std::string::npos) << s;
  m = TrainedOn(1);
  m.training_split.test_ratio = 1.5;
  s = ValidateMetadata(m, "x.pt");
  EXPECT_NE(s.message().find("training_split.test_ratio = 1.5"), std::string::npos) << s;
  m = TrainedOn(1);
  m.training_split.train_episodes = 101;
  s = ValidateMetadata(m, "x.pt");
  EXPECT_NE(s.message().find("training_split.train_episodes = 101"), std::string::npos) << s;
}

}  // namespace
