#include "device.h"

#include <torch/cuda.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"

namespace lcio::policy::internal {

absl::StatusOr<c10::Device> ParseTorchDevice(const std::string& name) {
  if (name == "auto")
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (name == "cpu") return c10::Device(c10::kCPU);
  const std::string quoted = absl::StrCat("device = \"", data::Shorten(name, 64), "\"");
  int index = 0;
  if (name.rfind("cuda", 0) != 0 || (name.size() > 4 && name[4] != ':'))
    return absl::InvalidArgumentError(absl::StrCat(quoted, ": must be auto, cpu, cuda or cuda:N"));
  if (name.size() > 4) {
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return absl::InvalidArgumentError(
          absl::StrCat(quoted, ": must be auto, cpu, cuda or cuda:N (N: 0-999)"));
    index = std::stoi(digits);
  }
  if (!torch::cuda::is_available())
    return absl::FailedPreconditionError(absl::StrCat(
        quoted, ": this LibTorch sees no CUDA device (CPU-only build or no GPU); use auto or cpu"));
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count)
    return absl::FailedPreconditionError(
        absl::StrCat(quoted, ": only ", count, " CUDA device(s) visible"));
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace lcio::policy::internal
