// The policy artifact: one file, a TorchScript module (loadable by LibTorch
// alone) whose forward(obs[B, D]) returns action scores [B, A] (higher is
// preferred), plus lcio's metadata as an extra file inside the same archive.
// This header is LibTorch-free so that servers and tools include it cheaply.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/env/observation.h"
#include "lcio/env/simulator.h"
#include "lcio/policy/task_classifier.h"

namespace lcio::policy {

// The split whose training side trained an artifact's network (lcio-eval
// --save_policies), so that an evaluation can check the artifact never saw
// its test episodes. Artifacts without it (known = false) come from an
// unknown split.
struct TrainingSplit {
  bool known = false;
  uint64_t seed = 0;                  // env::RandomSplit's seed
  double test_ratio = 0;              // env::RandomSplit's test_ratio
  int num_episodes = 0;               // episodes in the data set
  int train_episodes = 0;             // episodes on the training side
  std::string train_episodes_sha256;  // TrainEpisodesSha256 of the training side
};

struct ArtifactMetadata {
  // 2 added the fallback table; a version-1 artifact reads as having none.
  static constexpr int kFormatVersion = 2;
  int format_version = kFormatVersion;
  std::string policy_version;  // content hash of the network and metadata, set on save
  std::string algo;            // ppo, a2c, dqn, rc-ppo, rc-a2c, rc-dqn
  env::ObservationLayout layout;
  int num_actions = 0;
  std::vector<std::vector<int>> action_views;  // the action table, for checking
  std::vector<std::string> tasks;              // task vocabulary
  std::vector<std::string> view_names;         // e.g. "view0".. (data has no names)
  std::string profiles_json;                   // env::ProfileCatalog::ToJson()
  std::string device, network;                 // the training cost profile
  env::RewardWeights weights;
  env::Budget reference_budget;
  std::string training_config_json;  // every hyperparameter and flag
  std::string data_sha256;
  std::string evaluation_json;  // lcio-eval figures measured at the end of training
  std::string created_utc;
  std::string classifier_json;  // TaskClassifier::ToJson()
  // env::ResponseEstimator::ToJson(): the response model a response_aware
  // layout predicts with; empty otherwise.
  std::string response_model_json;
  // The network's shape, set on save from the exported layers:
  // layer_sizes = {input (= layout.size()), hidden..., output (= num_actions)}.
  std::string activation;  // of the hidden layers: "tanh" or "relu"
  std::vector<int> layer_sizes;
  TrainingSplit training_split;  // "training_split" in the JSON, only when known
  // env::FallbackTable::ToJson(): where the policy answers with the best fixed
  // action instead (docs/training.md, the validated fallback); empty: nowhere.
  std::string fallback_json;
};

// data::Sha256Hex of the sorted episode indices written as "i,j,k".
std::string TrainEpisodesSha256(std::vector<int> episodes);
// OK when `metadata` records that it was trained on exactly `train_episodes`
// (the training side of the split of `seed` and `test_ratio`) of the data set
// whose data_sha256 is `data_sha256`; FailedPrecondition naming `source`, the
// recorded and the expected values otherwise (an unknown split included).
absl::Status CheckTrainingSplit(const ArtifactMetadata& metadata, const std::string& data_sha256,
                                uint64_t seed, double test_ratio,
                                const std::vector<int>& train_episodes, const std::string& source);

// Metadata <-> JSON (the archive's extra file kMetadataFile). The *_json string
// fields are embedded as JSON values, so an artifact's metadata reads as one
// document. Unknown keys are ignored (see docs/artifact.md, versioning).
inline constexpr char kMetadataFile[] = "lcio_metadata.json";
std::string MetadataToJson(const ArtifactMetadata& metadata, bool pretty = false);
// Parses and validates; `source` names the file in messages.
absl::StatusOr<ArtifactMetadata> MetadataFromJson(const std::string& json,
                                                  const std::string& source);
// Every compatibility rule this build enforces: supported format and
// observation layout versions, consistent sizes, the action table of
// env::ActionTable for num_views, a non-empty task vocabulary matching the
// classifier's, well-formed embedded JSON. Errors name `source` and the rule.
absl::Status ValidateMetadata(const ArtifactMetadata& metadata, const std::string& source);
// The text that policy_version hashes: the metadata JSON without
// policy_version and created_utc (so equal content gives an equal version).
std::string MetadataHashText(const ArtifactMetadata& metadata);

}  // namespace lcio::policy
