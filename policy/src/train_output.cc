// TrainPolicy: a training run written as a policy artifact with its metadata.
#include "absl/strings/str_cat.h"
#include "lcio/policy/artifact_io.h"
#include "lcio/policy/task_classifier.h"
#include "lcio/policy/trainer_internal.h"

namespace lcio::policy {

absl::Status SaveTrainResult(const data::Dataset& dataset, const std::vector<int>& train_episodes,
                             const env::SimulatorConfig& config, const TrainOptions& options,
                             const TrainResult& result, const std::string& artifact_out_path,
                             const TrainingSplit& training_split) {
  if (artifact_out_path.empty()) return absl::InvalidArgumentError("artifact path is empty");
  // The task classifier learns the training episodes' prompts only.
  std::vector<std::string> prompts;
  std::vector<int> labels;
  for (int e : train_episodes)
    for (const data::Turn& turn : dataset.episodes[e].turns) {
      prompts.push_back(turn.question);
      labels.push_back(turn.task_index);
    }
  auto classifier = TaskClassifier::Train(prompts, labels, dataset.tasks);
  if (!classifier.ok()) return classifier.status();

  ArtifactMetadata metadata;
  metadata.algo = options.algo;
  metadata.layout = result.layout;
  metadata.tasks = dataset.tasks;
  for (int v = 0; v < dataset.num_views; ++v)
    metadata.view_names.push_back(absl::StrCat("view", v));
  metadata.profiles_json = config.catalog.ToJson();
  metadata.device = config.device;
  metadata.network = config.network;
  metadata.weights = config.weights;
  metadata.reference_budget = options.budgets.fixed;
  metadata.training_config_json = result.summary.config_json;
  // A hash of the canonical serialisation: the same episodes give the same
  // hash whatever the file's formatting.
  metadata.data_sha256 = data::Sha256Hex(data::ToM4A1Json(dataset));
  metadata.evaluation_json = result.summary.evaluation_json;
  metadata.classifier_json = classifier->ToJson();
  if (result.response_model) metadata.response_model_json = result.response_model->ToJson();
  metadata.training_split = training_split;
  if (result.fallback) metadata.fallback_json = result.fallback->ToJson();
  return SaveArtifact(artifact_out_path, result.network, std::move(metadata));
}

absl::StatusOr<TrainSummary> TrainPolicy(const data::Dataset& dataset,
                                         const std::vector<int>& train_episodes,
                                         const env::SimulatorConfig& config,
                                         const TrainOptions& options,
                                         const std::string& artifact_out_path) {
  if (artifact_out_path.empty()) return absl::InvalidArgumentError("artifact path is empty");
  auto run = RunTraining(dataset, train_episodes, config, options);
  if (!run.ok()) return run.status();
  if (auto s =
          SaveTrainResult(dataset, train_episodes, config, options, run->result, artifact_out_path);
      !s.ok())
    return s;
  return run->result.summary;
}

}  // namespace lcio::policy
