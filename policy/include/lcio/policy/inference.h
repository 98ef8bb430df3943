// The inference engine: a loaded artifact resident on its device (GPU when
// LibTorch sees one, else CPU), scoring batches under inference mode.
// LibTorch-free header (pimpl): server code includes it without torch headers.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "lcio/policy/artifact.h"

namespace lcio::policy {

// How Score computes. kAuto picks the fastest for the device and batch size:
// on the CPU, plain loops over the extracted weights for small batches and
// ATen matrix products for larger ones (the TorchScript interpreter's per-call
// overhead dominates for networks this small); on a GPU, ATen on the device.
// The others exist for tests and bench/bench_inference.cc.
enum class ScoringPath { kAuto, kTorchScript, kTensor, kCpuLoops };

class InferenceEngine {
 public:
  // Batches up to this size use kCpuLoops under kAuto on the CPU: for the
  // 64-64 networks the loops beat ATen's GEMM 2.7x even at 64 rows (measured:
  // docs/benchmarks.md, Inference); the server's default --batch_max is 32.
  static constexpr int kLoopMaxBatch = 64;

  // device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
  // Fully validates the artifact (archive, metadata, layout version, shapes,
  // a test forward) before returning: a bad file never becomes an engine.
  static absl::StatusOr<std::shared_ptr<const InferenceEngine>> Load(const std::string& path,
                                                                     const std::string& device);
  ~InferenceEngine();

  const ArtifactMetadata& metadata() const;
  const env::ObservationEncoder& encoder() const;
  const TaskClassifier& classifier() const;
  std::string device_name() const;
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
