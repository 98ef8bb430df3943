#include "lcio/policy/inference.h"

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "artifact_internal.h"
#include "device.h"
#include "lcio/data/message.h"
#include "lcio/env/response_estimator.h"

namespace lcio::policy {
namespace {

constexpr int kMaxBatch = 1 << 20;

std::string FirstLine(const std::exception& e) {
  std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

}  // namespace

struct InferenceEngine::Impl {
  ArtifactMetadata metadata;
  std::optional<env::ObservationEncoder> encoder;
  TaskClassifier classifier;
  env::FallbackTable fallback;
  torch::Device device{torch::kCPU};
  torch::jit::Module module;  // on `device`: the GPU path
  Network network;            // the CPU path, checked against `module` at load

  void ScoreTorchScript(const float* observations, int n, float* scores) const;
};

void InferenceEngine::Impl::ScoreTorchScript(const float* observations, int n,
                                             float* scores) const {
  c10::InferenceMode guard;
  torch::Tensor input = torch::from_blob(const_cast<float*>(observations),
                                         {n, network.input_size()}, torch::kFloat32);
  // forward is not const in the API but does not modify the module.
  torch::Tensor output = const_cast<torch::jit::Module&>(module)
                             .forward({device.is_cpu() ? input : input.to(device)})
                             .toTensor()
                             .to(torch::kCPU, torch::kFloat32)
                             .contiguous();
  std::memcpy(scores, output.data_ptr<float>(), sizeof(float) * n * network.output_size());
}

InferenceEngine::InferenceEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
InferenceEngine::~InferenceEngine() = default;

absl::StatusOr<std::shared_ptr<const InferenceEngine>> InferenceEngine::Load(
    const std::string& path, const std::string& device_name) {
  auto device = internal::ParseTorchDevice(device_name);
  if (!device.ok()) return device.status();
  auto loaded = internal::LoadArtifactFile(path, *device);
  if (!loaded.ok()) return loaded.status();
  auto impl = std::make_unique<Impl>();
  impl->metadata = std::move(loaded->metadata);
  std::shared_ptr<const env::ResponseEstimator> response_model;
  if (impl->metadata.layout.response_aware) {  // ValidateMetadata checked it is there
    auto model = env::ResponseEstimator::FromJson(impl->metadata.response_model_json);
    if (!model.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("artifact ", data::Shorten(path), ": ", model.status().message()));
    response_model = *std::move(model);
  }
  auto encoder = env::ObservationEncoder::Create(impl->metadata.layout, std::move(response_model));
  if (!encoder.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("artifact ", data::Shorten(path), ": ", encoder.status().message()));
  impl->encoder.emplace(*std::move(encoder));
  auto classifier = TaskClassifier::FromJson(impl->metadata.classifier_json);
  if (!classifier.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("artifact ", data::Shorten(path), ": ", classifier.status().message()));
  impl->classifier = *std::move(classifier);
  if (!impl->metadata.fallback_json.empty()) {  // ValidateMetadata checked it
    auto fallback = env::FallbackTable::FromJson(impl->metadata.fallback_json, path);
    if (!fallback.ok()) return fallback.status();
    impl->fallback = *std::move(fallback);
  }
  impl->device = *device;
  impl->module = std::move(loaded->module);
  impl->network = std::move(loaded->network);
  return std::shared_ptr<const InferenceEngine>(new InferenceEngine(std::move(impl)));
}

const ArtifactMetadata& InferenceEngine::metadata() const { return impl_->metadata; }
const env::ObservationEncoder& InferenceEngine::encoder() const { return *impl_->encoder; }
const TaskClassifier& InferenceEngine::classifier() const { return impl_->classifier; }
const env::FallbackTable& InferenceEngine::fallback() const { return impl_->fallback; }
std::string InferenceEngine::device_name() const { return impl_->device.str(); }
bool InferenceEngine::on_cpu() const { return impl_->device.is_cpu(); }
int InferenceEngine::observation_size() const { return impl_->network.input_size(); }
int InferenceEngine::num_actions() const { return impl_->network.output_size(); }

absl::Status InferenceEngine::Score(const float* observations, int n, float* scores) const {
  return ScoreWith(ScoringPath::kAuto, observations, n, scores);
}

absl::Status InferenceEngine::ScoreWith(ScoringPath path, const float* observations, int n,
                                        float* scores) const {
  if (n < 0 || n > kMaxBatch)
    return absl::InvalidArgumentError(
        absl::StrCat("batch size = ", n, ": must be in [0, ", kMaxBatch, "]"));
  if (n == 0) return absl::OkStatus();
  if (observations == nullptr || scores == nullptr)
    return absl::InvalidArgumentError("observations and scores must not be null");
  const bool cpu = impl_->device.is_cpu();
  if (path == ScoringPath::kAuto) path = cpu ? ScoringPath::kCpuLoops : ScoringPath::kTorchScript;
  if (path == ScoringPath::kCpuLoops) {
    if (!cpu)
      return absl::FailedPreconditionError(
          absl::StrCat("the kernels' path runs on the CPU; the engine is on ", device_name()));
    impl_->network.Forward(observations, n, scores);
    return absl::OkStatus();
  }
  try {
    impl_->ScoreTorchScript(observations, n, scores);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("scoring a batch of ", n, " on ", device_name(), ": ", FirstLine(e)));
  }
  return absl::OkStatus();
}

}  // namespace lcio::policy
