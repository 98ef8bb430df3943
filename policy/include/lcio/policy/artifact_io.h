// Writing and reading artifacts (TorchScript archives; docs/artifact.md).
// LibTorch-free header: the network goes in as a policy::Network.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/policy/artifact.h"
#include "lcio/policy/network.h"

namespace lcio::policy {

// Checks the network (Network::Validate), builds the TorchScript module
// (weights as [out, in] tensors), fills metadata.policy_version (content
// hash) and created_utc, and writes one file atomically (temp file + rename).
absl::Status SaveArtifact(const std::string& path, const Network& network,
                          ArtifactMetadata metadata);
// Metadata only (validated), without building an engine.
absl::StatusOr<ArtifactMetadata> ReadArtifactMetadata(const std::string& path);

}  // namespace lcio::policy
