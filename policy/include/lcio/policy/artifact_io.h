// Writing and reading artifacts. Includes LibTorch: for the trainer and the
// policy library only (servers use inference.h).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/policy/artifact.h"

namespace lcio::policy {

// A trained scorer as plain layers: y = W_n act(... act(W_1 x + b_1) ...) + b_n.
// The trainer folds whatever it learned (policy logits; Q_r - lambda * Q_c)
// into this form.
struct MlpExport {
  std::vector<torch::Tensor> weights;  // [out, in], float32
  std::vector<torch::Tensor> biases;   // [out]
  std::string activation;              // "tanh" or "relu"
};

// Builds the TorchScript module, fills metadata.policy_version (content hash)
// and created_utc, and writes one file atomically (temp file + rename).
absl::Status SaveArtifact(const std::string& path, const MlpExport& network,
                          ArtifactMetadata metadata);
// Metadata only (validated), without building an engine.
absl::StatusOr<ArtifactMetadata> ReadArtifactMetadata(const std::string& path);

}  // namespace lcio::policy
