#include "lcio/policy/inference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <regex>

#include "absl/strings/str_cat.h"
#include "artifact_internal.h"
#include "kernels.h"
#include "lcio/env/response_estimator.h"

namespace lcio::policy {
namespace {

constexpr int kMaxBatch = 1 << 20;

absl::StatusOr<torch::Device> ParseDevice(const std::string& name) {
  if (name == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0)
                                       : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  static const std::regex kCuda("cuda(:([0-9]{1,3}))?");
  std::smatch match;
  if (!std::regex_match(name, match, kCuda))
    return absl::InvalidArgumentError(
        absl::StrCat("device = \"", name, "\": must be auto, cpu, cuda or cuda:N"));
  const int index = match[2].matched ? std::stoi(match[2].str()) : 0;
  if (!torch::cuda::is_available())
    return absl::FailedPreconditionError(
        absl::StrCat("device = \"", name,
                     "\": this LibTorch sees no CUDA device (CPU-only build or no GPU); "
                     "use --device cpu or auto"));
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count)
    return absl::FailedPreconditionError(
        absl::StrCat("device = \"", name, "\": only ", count, " CUDA device(s) visible"));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string FirstLine(const std::exception& e) {
  std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

}  // namespace

struct InferenceEngine::Impl {
  ArtifactMetadata metadata;
  std::optional<env::ObservationEncoder> encoder;
  TaskClassifier classifier;
  torch::Device device{torch::kCPU};
  torch::jit::Module module;
  MlpExport network;  // on `device`, for the ATen path
  // For the loop path: per layer, weights transposed to [in][out] so the inner
  // loop runs over contiguous outputs (vectorisable without reassociation).
  std::vector<std::vector<float>> transposed;
  std::vector<std::vector<float>> biases;
  std::vector<int> sizes;  // layer_sizes
  int max_width = 0;
  bool tanh = true;

  void ScoreLoops(const float* observations, int n, float* scores) const;
  void ScoreTensor(const float* observations, int n, float* scores) const;
  void ScoreTorchScript(const float* observations, int n, float* scores) const;
};

void InferenceEngine::Impl::ScoreLoops(const float* observations, int n, float* scores) const {
  // The trainer's kernels (kernels.h), so that serving scores as training did.
  thread_local std::vector<float> scratch;
  const size_t needed = 2 * static_cast<size_t>(max_width) * n;
  if (scratch.size() < needed) scratch.resize(needed);
  const int num_layers = static_cast<int>(transposed.size());
  const float* in = observations;
  for (int l = 0; l < num_layers; ++l) {
    const int in_size = sizes[l], out_size = sizes[l + 1];
    const bool last = l + 1 == num_layers;
    float* out = last ? scores : scratch.data() + (l % 2) * static_cast<size_t>(max_width) * n;
    kernels::LayerForward(in, n, in_size, transposed[l].data(), biases[l].data(), out_size, out);
    if (!last) {
      const size_t count = static_cast<size_t>(n) * out_size;
      if (tanh)
        kernels::TanhInPlace(out, count);
      else
        kernels::ReluInPlace(out, count);
    }
    in = out;
  }
}

void InferenceEngine::Impl::ScoreTensor(const float* observations, int n, float* scores) const {
  c10::InferenceMode guard;
  torch::Tensor input =
      torch::from_blob(const_cast<float*>(observations), {n, sizes.front()}, torch::kFloat32);
  torch::Tensor output = internal::MlpForward(network, device.is_cpu() ? input : input.to(device));
  output = output.to(torch::kCPU).contiguous();
  std::memcpy(scores, output.data_ptr<float>(), sizeof(float) * n * sizes.back());
}

void InferenceEngine::Impl::ScoreTorchScript(const float* observations, int n,
                                             float* scores) const {
  c10::InferenceMode guard;
  torch::Tensor input =
      torch::from_blob(const_cast<float*>(observations), {n, sizes.front()}, torch::kFloat32);
  // forward is not const in the API but does not modify the module.
  torch::Tensor output = const_cast<torch::jit::Module&>(module)
                             .forward({device.is_cpu() ? input : input.to(device)})
                             .toTensor()
                             .to(torch::kCPU, torch::kFloat32)
                             .contiguous();
  std::memcpy(scores, output.data_ptr<float>(), sizeof(float) * n * sizes.back());
}

InferenceEngine::InferenceEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
InferenceEngine::~InferenceEngine() = default;

absl::StatusOr<std::shared_ptr<const InferenceEngine>> InferenceEngine::Load(
    const std::string& path, const std::string& device_name) {
  auto device = ParseDevice(device_name);
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
          absl::StrCat("artifact ", path, ": ", model.status().message()));
    response_model = *std::move(model);
  }
  auto encoder = env::ObservationEncoder::Create(impl->metadata.layout, std::move(response_model));
  if (!encoder.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("artifact ", path, ": ", encoder.status().message()));
  impl->encoder.emplace(*std::move(encoder));
  auto classifier = TaskClassifier::FromJson(impl->metadata.classifier_json);
  if (!classifier.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("artifact ", path, ": ", classifier.status().message()));
  impl->classifier = *std::move(classifier);
  impl->device = *device;
  impl->module = std::move(loaded->module);
  impl->sizes = impl->metadata.layer_sizes;
  impl->tanh = impl->metadata.activation == "tanh";
  impl->max_width = *std::max_element(impl->sizes.begin(), impl->sizes.end());
  try {
    impl->network.activation = loaded->network.activation;
    for (size_t l = 0; l < loaded->network.weights.size(); ++l) {
      const torch::Tensor& w = loaded->network.weights[l];  // CPU, contiguous [out, in]
      const torch::Tensor& b = loaded->network.biases[l];
      torch::Tensor wt = w.t().contiguous();
      impl->transposed.emplace_back(wt.data_ptr<float>(), wt.data_ptr<float>() + wt.numel());
      impl->biases.emplace_back(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
      impl->network.weights.push_back(w.to(*device));
      impl->network.biases.push_back(b.to(*device));
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("artifact ", path, ": moving the network to ",
                                            device_name, ": ", FirstLine(e)));
  }
  std::shared_ptr<const InferenceEngine> engine(new InferenceEngine(std::move(impl)));
  // The engine's own paths must agree with the TorchScript forward, which
  // LoadArtifactFile already checked against the metadata.
  const int d = engine->observation_size(), a = engine->num_actions();
  std::vector<float> probe(2 * d);
  for (int i = 0; i < 2 * d; ++i) probe[i] = static_cast<float>(i % 7) / 7.0f - 0.3f;
  std::vector<float> reference(2 * a), candidate(2 * a);
  if (absl::Status s =
          engine->ScoreWith(ScoringPath::kTorchScript, probe.data(), 2, reference.data());
      !s.ok())
    return s;
  for (ScoringPath scoring : {ScoringPath::kTensor, ScoringPath::kCpuLoops}) {
    if (scoring == ScoringPath::kCpuLoops && !engine->impl_->device.is_cpu()) continue;
    if (absl::Status s = engine->ScoreWith(scoring, probe.data(), 2, candidate.data()); !s.ok())
      return s;
    for (int i = 0; i < 2 * a; ++i)
      if (!std::isfinite(candidate[i]) ||
          std::fabs(candidate[i] - reference[i]) > 1e-4f * (1.0f + std::fabs(reference[i])))
        return absl::InternalError(absl::StrCat("artifact ", path, ": ",
                                                scoring == ScoringPath::kTensor ? "ATen" : "loop",
                                                " scoring disagrees with the TorchScript forward"));
  }
  return engine;
}

const ArtifactMetadata& InferenceEngine::metadata() const { return impl_->metadata; }
const env::ObservationEncoder& InferenceEngine::encoder() const { return *impl_->encoder; }
const TaskClassifier& InferenceEngine::classifier() const { return impl_->classifier; }
std::string InferenceEngine::device_name() const { return impl_->device.str(); }
int InferenceEngine::observation_size() const { return impl_->sizes.front(); }
int InferenceEngine::num_actions() const { return impl_->sizes.back(); }

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
  if (path == ScoringPath::kAuto)
    path = cpu && n <= kLoopMaxBatch ? ScoringPath::kCpuLoops : ScoringPath::kTensor;
  if (path == ScoringPath::kCpuLoops) {
    if (!cpu)
      return absl::FailedPreconditionError(
          absl::StrCat("the loop scoring path runs on the CPU; the engine is on ", device_name()));
    impl_->ScoreLoops(observations, n, scores);
    return absl::OkStatus();
  }
  try {
    if (path == ScoringPath::kTensor)
      impl_->ScoreTensor(observations, n, scores);
    else
      impl_->ScoreTorchScript(observations, n, scores);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("scoring a batch of ", n, " on ", device_name(), ": ", FirstLine(e)));
  }
  return absl::OkStatus();
}

}  // namespace lcio::policy
