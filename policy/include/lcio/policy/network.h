// A trained MLP as one plain value, and its one forward pass: what training
// learns (networks.h keeps its parameters in this form), what the evaluator
// scores with, what an artifact stores and what the inference engine serves
// on the CPU. The forward runs the kernels of policy/src/kernels.cc, so a
// policy scores the same, bit for bit, in training, evaluation and serving;
// TorchScript stays the file format and the CUDA path, and
// InferenceEngine::Load checks it against this forward. LibTorch-free.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lcio::policy {

enum class Activation { kTanh, kRelu };
// "tanh" or "relu": the artifact's spelling.
std::string ActivationName(Activation activation);
absl::StatusOr<Activation> ParseActivation(const std::string& name);

// Per-layer outputs of a forward pass, kept for the backward pass.
struct MlpCache {
  int rows = 0;
  std::vector<std::vector<float>> outputs;  // [layer] rows x width; outputs[0] = input
};

// y = act(... act(x W_1 + b_1) ...) W_n + b_n; higher scores are preferred.
struct Network {
  std::vector<int> sizes;  // {in, hidden..., out}
  Activation activation = Activation::kTanh;
  // Layer l: weights[l] is [sizes[l]][sizes[l + 1]] row-major (input-major,
  // the kernels' layout), biases[l] has sizes[l + 1] values.
  std::vector<std::vector<float>> weights, biases;

  int num_layers() const { return static_cast<int>(weights.size()); }
  int input_size() const { return sizes.front(); }
  int output_size() const { return sizes.back(); }
  // Shapes chain and agree with `sizes`, at least one layer, every parameter
  // finite. The message names the layer and the rule.
  absl::Status Validate() const;
  // out = net(x) for `rows` rows (row-major); keeps every layer's output in
  // `cache` when given. Thread-safe: scratch is the caller's or the stack's.
  void Forward(const float* x, int rows, float* out, MlpCache* cache = nullptr) const;
};

}  // namespace lcio::policy
