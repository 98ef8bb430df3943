#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "lcio/env/profiles.h"
#include "lcio/env/response_estimator.h"
#include "lcio/env/split.h"
#include "lcio/policy/artifact_io.h"
#include "lcio/policy/testing.h"

namespace lcio::policy::testing {

double TestPredictedResponse(int task, int action) { return 0.5 + 0.25 * action + 0.1 * task; }

absl::StatusOr<ArtifactMetadata> TestMetadata(const TestArtifactOptions& options) {
  ArtifactMetadata metadata;
  metadata.algo = options.algo;
  metadata.layout.num_views = options.num_views;
  metadata.layout.num_tasks = static_cast<int>(options.tasks.size());
  metadata.layout.time_span = options.time_span;
  metadata.layout.task_one_hot = options.task_one_hot;
  metadata.layout.prompt_aware = options.prompt_aware;
  metadata.layout.budget_aware = options.budget_aware;
  metadata.layout.latency_scale_s = 10.0;
  metadata.layout.money_scale_usd = 0.01;
  metadata.layout.profile_aware = options.profile_aware;
  if (options.response_aware) {
    auto actions = env::ActionTable::Create(options.num_views);
    if (!actions.ok()) return actions.status();
    const int width = env::ResponseKeyWidth(options.num_views, options.time_span);
    std::vector<double> keys, values;
    std::vector<double> key(width);
    for (int t = 0; t < metadata.layout.num_tasks; ++t)
      for (int a = 0; a < actions->size(); ++a) {
        env::DecisionContext first_turn;
        first_turn.task_index = t;
        env::EncodeResponseKey(*actions, options.time_span, first_turn, a, key.data());
        keys.insert(keys.end(), key.begin(), key.end());
        values.push_back(TestPredictedResponse(t, a));
      }
    auto model = env::ResponseEstimator::FromPoints(width, std::move(keys), std::move(values), 5);
    if (!model.ok()) return model.status();
    metadata.layout.response_aware = true;
    metadata.layout.response_scale = 2.0;
    metadata.response_model_json = (*model)->ToJson();
  }
  metadata.tasks = options.tasks;
  metadata.view_names = options.view_names;
  if (metadata.view_names.empty())
    for (int v = 0; v < options.num_views; ++v)
      metadata.view_names.push_back(absl::StrCat("view", v));
  metadata.profiles_json = env::ProfileCatalog::BuiltIn().ToJson();
  metadata.device = "Jetson TX2";
  metadata.network = "Wired";
  metadata.training_config_json =
      !options.training_config_json.empty()
          ? options.training_config_json
          : absl::StrCat(R"({"generator":"lcio::policy::testing","seed":)", options.seed, "}");
  metadata.data_sha256 = "";
  // A few prompts per task, so the classifier separates them ("<task> request k").
  std::vector<std::string> prompts;
  std::vector<int> labels;
  for (size_t t = 0; t < options.tasks.size(); ++t)
    for (int k = 0; k < 3; ++k) {
      prompts.push_back(absl::StrCat(options.tasks[t], " request ", k));
      labels.push_back(static_cast<int>(t));
    }
  auto classifier = TaskClassifier::Train(prompts, labels, options.tasks);
  if (!classifier.ok()) return classifier.status();
  metadata.classifier_json = classifier->ToJson();
  metadata.fallback_json = options.fallback_json;
  return metadata;
}

absl::StatusOr<ArtifactMetadata> WriteTestArtifact(const std::string& path,
                                                   const TestArtifactOptions& options) {
  auto metadata = TestMetadata(options);
  if (!metadata.ok()) return metadata.status();
  std::vector<int> sizes = {metadata->layout.size()};
  sizes.insert(sizes.end(), options.hidden.begin(), options.hidden.end());
  sizes.push_back(metadata->layout.num_actions());
  if (options.favoured_action >= sizes.back())
    return absl::InvalidArgumentError(
        absl::StrCat("favoured_action = ", options.favoured_action, ": must be < ", sizes.back()));
  // A local generator (not torch's global one): one seed, one set of weights,
  // whatever else the process does.
  std::mt19937_64 rng(options.seed);
  // Drawn [out, in] row by row (the order of the draws is the fixture's),
  // stored input-major as the network value keeps them.
  auto uniform = [&rng](int64_t rows, int64_t cols, double bound) {
    std::vector<float> values(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        values[c * rows + r] = static_cast<float>((env::UniformUnit(rng) * 2 - 1) * bound);
    return values;
  };
  Network network;
  auto activation = ParseActivation(options.activation);
  if (!activation.ok()) return activation.status();
  network.activation = *activation;
  network.sizes = sizes;
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(sizes[l]));
    network.weights.push_back(uniform(sizes[l + 1], sizes[l], bound));
    network.biases.push_back(uniform(sizes[l + 1], 1, bound));
  }
  if (options.favoured_action >= 0) {
    // Hidden activations are bounded (tanh) or small (relu on small weights):
    // a bias of 100 dominates the output layer.
    network.biases.back()[options.favoured_action] += 100.0f;
  }
  if (absl::Status status = SaveArtifact(path, network, *metadata); !status.ok()) return status;
  return ReadArtifactMetadata(path);
}

absl::StatusOr<ArtifactMetadata> WriteOverflowingTestArtifact(const std::string& path) {
  auto metadata = TestMetadata({});
  if (!metadata.ok()) return metadata.status();
  const int in = metadata->layout.size(), actions = metadata->layout.num_actions();
  Network network;
  network.activation = Activation::kRelu;
  network.sizes = {in, in, actions};
  std::vector<float> gate(static_cast<size_t>(in) * in, 0.0f);
  for (int i = 0; i < in; ++i) gate[static_cast<size_t>(i) * in + i] = 100.0f;
  network.weights = {std::move(gate), std::vector<float>(static_cast<size_t>(in) * actions, 1e37f)};
  network.biases = {std::vector<float>(in, -150.0f), std::vector<float>(actions, 0.0f)};
  if (absl::Status status = SaveArtifact(path, network, *metadata); !status.ok()) return status;
  return ReadArtifactMetadata(path);
}

}  // namespace lcio::policy::testing
