// Valid small artifacts with seeded random weights, for tests of anything that
// loads policies (inference, the evaluator, the server's reload). Not for
// production use: the network has never seen data. LibTorch-free header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/policy/artifact.h"

namespace lcio::policy::testing {

struct TestArtifactOptions {
  int num_views = 3;
  // Empty: "view0", "view1", ...; else num_views names.
  std::vector<std::string> view_names;
  // Defaults to M4A1's four tasks; the classifier learns a few prompts per task.
  std::vector<std::string> tasks = {"Assistive System", "Message Editing", "Query",
                                    "Recommendation"};
  int time_span = 5;
  bool task_one_hot = true, prompt_aware = true, budget_aware = true;
  // Response features from a small model with one point per (first-turn
  // task, action): its prediction at a first turn of task t for action a is
  // TestPredictedResponse(t, a).
  bool response_aware = false;
  // The request's own profile in the observation (layout version 4).
  bool profile_aware = false;
  std::vector<int> hidden = {16, 16};
  std::string activation = "tanh";
  std::string algo = "test";
  uint64_t seed = 1;  // same seed, same weights, same policy_version
  // When >= 0 this action outscores every other for any observation (a large
  // output bias), so a test can predict the decision.
  int favoured_action = -1;
  // env::FallbackTable::ToJson() to store (ArtifactMetadata::fallback_json);
  // empty: none.
  std::string fallback_json;
  // ArtifactMetadata::training_config_json; empty: a small generated one.
  std::string training_config_json;
};

double TestPredictedResponse(int task, int action);

// The metadata such an artifact carries (before SaveArtifact fills the
// version, time and network shape).
absl::StatusOr<ArtifactMetadata> TestMetadata(const TestArtifactOptions& options = {});
// Writes the artifact to `path` and returns the metadata as saved.
absl::StatusOr<ArtifactMetadata> WriteTestArtifact(const std::string& path,
                                                   const TestArtifactOptions& options = {});
// An artifact (TestMetadata({})) whose network is finite on the loader's
// probe observations (every feature in [-1, 1]) and scores +inf for every
// action where any feature reaches 2, as a request's budget features do: one
// ReLU unit per feature opens at 1.5, and each output weighs every unit by
// 1e37. For the tests of what a decision does with scores that are not numbers.
absl::StatusOr<ArtifactMetadata> WriteOverflowingTestArtifact(const std::string& path);

}  // namespace lcio::policy::testing
