// The inference engine: a loaded artifact resident on its device (GPU when
// LibTorch sees one, else CPU), scoring batches under inference mode.
// LibTorch-free header (pimpl): server code includes it without torch headers.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "lcio/env/fallback.h"
#include "lcio/policy/artifact.h"

namespace lcio::policy {

// How Score computes. kAuto: on the CPU, the kernels' forward
// (Network::Forward, the one the trainer evaluates with) at every batch size;
// on a GPU, the TorchScript module on the device. kTorchScript forces the
// interpreter (for tests and bench/bench_inference.cc); kCpuLoops forces the
// kernels, CPU engines only.
enum class ScoringPath { kAuto, kTorchScript, kCpuLoops };

class InferenceEngine {
 public:
  // device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
  // Fully validates the artifact (archive, metadata, layout version, shapes,
  // a test forward through TorchScript on the device that must agree with
  // the kernels' forward) before returning: a bad file never becomes an engine.
  static absl::StatusOr<std::shared_ptr<const InferenceEngine>> Load(const std::string& path,
                                                                     const std::string& device);
  ~InferenceEngine();

  const ArtifactMetadata& metadata() const;
  const env::ObservationEncoder& encoder() const;
  const TaskClassifier& classifier() const;
  // The artifact's fallback table (empty when it has none): where a fixed
  // action answers instead of the network. Every caller that decides with
  // the engine applies it (ArtifactPolicy, the server's Decider).
  const env::FallbackTable& fallback() const;
  std::string device_name() const;
  // On the CPU, Score runs the kernels' forward, whose cost per row is barely
  // lower in a batch (bench/bench_inference.cc): batching gains little there.
  bool on_cpu() const;
  int observation_size() const;
  int num_actions() const;

  // observations: n x observation_size() floats, row-major; scores: n x
  // num_actions(). Thread-safe.
  absl::Status Score(const float* observations, int n, float* scores) const;
  absl::Status ScoreWith(ScoringPath path, const float* observations, int n, float* scores) const;

 private:
  struct Impl;
  explicit InferenceEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lcio::policy
