#include "lcio/policy/network.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels.h"
#include "lcio/data/message.h"

namespace lcio::policy {

std::string ActivationName(Activation activation) {
  return activation == Activation::kTanh ? "tanh" : "relu";
}

absl::StatusOr<Activation> ParseActivation(const std::string& name) {
  if (name == "tanh") return Activation::kTanh;
  if (name == "relu") return Activation::kRelu;
  return absl::InvalidArgumentError(absl::StrCat("network activation = \"", data::Shorten(name, 64),
                                                 "\": must be \"tanh\" or \"relu\""));
}

absl::Status Network::Validate() const {
  if (weights.empty()) return absl::InvalidArgumentError("network has no layers");
  if (weights.size() != biases.size() || sizes.size() != weights.size() + 1)
    return absl::InvalidArgumentError(absl::StrCat("network has ", weights.size(),
                                                   " weight matrices, ", biases.size(),
                                                   " bias vectors and ", sizes.size(), " sizes"));
  for (size_t l = 0; l < sizes.size(); ++l)
    if (sizes[l] < 1)
      return absl::InvalidArgumentError(
          absl::StrCat("network sizes[", l, "] = ", sizes[l], ": must be >= 1"));
  for (size_t l = 0; l < weights.size(); ++l) {
    const size_t in = sizes[l], out = sizes[l + 1];
    if (weights[l].size() != in * out || biases[l].size() != out)
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", l, ": ", weights[l].size(), " weights and ", biases[l].size(),
                       " biases; sizes give ", in, " x ", out, " and ", out));
    auto finite = [](float v) { return std::isfinite(v); };
    if (!std::all_of(weights[l].begin(), weights[l].end(), finite) ||
        !std::all_of(biases[l].begin(), biases[l].end(), finite))
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", l, " has a NaN or infinite parameter"));
  }
  return absl::OkStatus();
}

void Network::Forward(const float* x, int rows, float* out, MlpCache* cache) const {
  const int layers = num_layers();
  // Without a cache, hidden outputs ping-pong between two halves of a scratch
  // buffer: on the stack for serving-sized batches (64 rows of 64 units), so
  // that a decision allocates nothing and no state hides between calls.
  constexpr size_t kStackFloats = 4096;
  float stack[2 * kStackFloats];
  std::vector<float> heap;
  float* scratch[2] = {stack, stack + kStackFloats};
  if (cache) {
    cache->rows = rows;
    cache->outputs.resize(layers + 1);
    cache->outputs[0].assign(x, x + static_cast<size_t>(rows) * sizes[0]);
  } else {
    int widest = 1;
    for (int l = 1; l < layers; ++l) widest = std::max(widest, sizes[l]);
    const size_t needed = static_cast<size_t>(rows) * widest;
    if (needed > kStackFloats) {
      heap.resize(2 * needed);
      scratch[0] = heap.data();
      scratch[1] = heap.data() + needed;
    }
  }
  const float* input = x;
  for (int l = 0; l < layers; ++l) {
    const int in = sizes[l], width = sizes[l + 1];
    const bool last = l + 1 == layers;
    float* y;
    if (last) {
      y = out;
    } else if (cache) {
      cache->outputs[l + 1].resize(static_cast<size_t>(rows) * width);
      y = cache->outputs[l + 1].data();
    } else {
      y = scratch[l % 2];
    }
    kernels::LayerForward(input, rows, in, weights[l].data(), biases[l].data(), width, y);
    if (!last) {
      const size_t n = static_cast<size_t>(rows) * width;
      if (activation == Activation::kTanh) {
        kernels::TanhInPlace(y, n);
      } else {
        kernels::ReluInPlace(y, n);
      }
    }
    if (last && cache) cache->outputs[layers].assign(out, out + static_cast<size_t>(rows) * width);
    input = y;
  }
}

}  // namespace lcio::policy
