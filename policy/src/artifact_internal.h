// Shared by artifact_io.cc and inference.cc: reading an artifact file into a
// validated TorchScript module, its metadata and its network value.
#pragma once

#include <torch/script.h>

#include <string>

#include "absl/status/statusor.h"
#include "lcio/policy/artifact_io.h"

namespace lcio::policy::internal {

struct LoadedArtifact {
  torch::jit::Module module;  // on the requested device
  ArtifactMetadata metadata;
  Network network;  // the module's parameters, for the kernels' forward
};

// Reads, validates (metadata rules, network shapes against the metadata, the
// content hash, a test forward through the TorchScript code on `device` that
// must match Network::Forward, the kernels' forward the CPU serves and the
// trainer evaluates with) and returns the artifact. Never throws: LibTorch
// exceptions become errors naming `path`.
absl::StatusOr<LoadedArtifact> LoadArtifactFile(const std::string& path,
                                                const torch::Device& device);

}  // namespace lcio::policy::internal
