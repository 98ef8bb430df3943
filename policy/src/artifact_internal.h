// Shared by artifact_io.cc and inference.cc: reading an artifact file into a
// validated TorchScript module, its metadata and its layers as plain tensors.
#pragma once

#include <torch/script.h>

#include <string>

#include "absl/status/statusor.h"
#include "lcio/policy/artifact_io.h"

namespace lcio::policy::internal {

struct LoadedArtifact {
  torch::jit::Module module;  // on the requested device
  ArtifactMetadata metadata;
  MlpExport network;  // float32, contiguous, on the CPU
};

// Reads, validates (metadata rules, network shapes against the metadata, the
// content hash, a test forward that matches the described MLP) and returns
// the artifact. Never throws: LibTorch exceptions become errors naming `path`.
absl::StatusOr<LoadedArtifact> LoadArtifactFile(const std::string& path,
                                                const torch::Device& device);

// The MLP computed with ATen ops (the reference the fast paths are checked against).
torch::Tensor MlpForward(const MlpExport& network, const torch::Tensor& input);

}  // namespace lcio::policy::internal
