// The one parser of device strings (--torch_device of lcio-train, lcio-eval
// and lcio-server): "auto" (CUDA device 0 when LibTorch sees one, else the
// CPU), "cpu", "cuda" or "cuda:N". Used by the trainer's validation and by
// InferenceEngine::Load, so that a string means the same to both.
#pragma once

#include <c10/core/Device.h>

#include <string>

#include "absl/status/statusor.h"

namespace lcio::policy::internal {

// InvalidArgument for a malformed string; FailedPrecondition for a CUDA
// device this LibTorch cannot see.
absl::StatusOr<c10::Device> ParseTorchDevice(const std::string& name);

}  // namespace lcio::policy::internal
