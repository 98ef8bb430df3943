// Small multilayer perceptrons for the trainer, with hand-written forward and
// backward passes. Parameters live in LibTorch tensors (initialised with
// LibTorch's seeded initialisers, exported as LibTorch tensors), but the
// arithmetic runs as plain loops over their storage: for 64-unit layers and
// batches of 1-64 rows, LibTorch's per-operator dispatch and autograd cost
// (~2.5 ms per PPO minibatch update measured on this machine) dwarfs the
// arithmetic itself (~20 us). tests/policy/algo_networks_test.cc checks the
// gradients against LibTorch autograd.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lcio::policy {

enum class Activation { kTanh, kRelu };
std::string ActivationName(Activation activation);

// A view of one parameter tensor and its gradient for the optimisers.
struct ParamSpan {
  float* value;
  float* grad;
  int64_t size;
};

// Forward activations kept for the backward pass.
struct MlpCache {
  int rows = 0;
  std::vector<std::vector<float>> outputs;  // [layer] rows x width; outputs[0] = input
};

class Mlp {
 public:
  // sizes = {in, hidden..., out}. Weights are initialised in LibTorch's
  // global generator (seed it with torch::manual_seed):
  //   orthogonal: SB3's actor-critic scheme, hidden gain sqrt(2), output gain
  //               `output_gain`, zero biases;
  //   default:    torch.nn.Linear's default (Kaiming-uniform, as SB3's DQN).
  enum class Init { kOrthogonal, kTorchDefault };
  Mlp(std::vector<int> sizes, Activation activation, Init init, double output_gain = 1.0);

  int input_size() const { return sizes_.front(); }
  int output_size() const { return sizes_.back(); }
  int num_layers() const { return static_cast<int>(weights_.size()); }
  Activation activation() const { return activation_; }

  // out = net(x) for `rows` rows; keeps activations in `cache` when given.
  void Forward(const float* x, int rows, float* out, MlpCache* cache = nullptr) const;
  // Accumulates parameter gradients for d(loss)/d(out) (rows x out).
  void Backward(const MlpCache& cache, const float* grad_out);
  void ZeroGrad();
  void CopyFrom(const Mlp& other);  // same shape; for DQN's target network
  // Polyak: this = tau * other + (1 - tau) * this.
  void SoftUpdateFrom(const Mlp& other, double tau);
  std::vector<ParamSpan> Params();

  // Weights as [out, in] tensors (the stored form is [in, out] for the
  // kernels' contiguous inner loops) and biases as [out].
  at::Tensor WeightOutIn(int layer) const;
  at::Tensor Bias(int layer) const { return biases_[layer]; }
  const std::vector<int>& sizes() const { return sizes_; }

 private:
  std::vector<int> sizes_;
  Activation activation_;
  std::vector<at::Tensor> weights_, biases_;           // [in, out], [out]
  std::vector<at::Tensor> weight_grads_, bias_grads_;  // same shapes
};

// Global L2 norm clipping over every span (torch.nn.utils.clip_grad_norm_).
double ClipGradNorm(const std::vector<ParamSpan>& params, double max_norm);

// torch.optim.Adam (no weight decay, no amsgrad).
class Adam {
 public:
  Adam(std::vector<ParamSpan> params, double lr, double eps = 1e-8, double beta1 = 0.9,
       double beta2 = 0.999);
  void Step();
  void set_lr(double lr) { lr_ = lr; }

 private:
  std::vector<ParamSpan> params_;
  std::vector<std::vector<float>> m_, v_;
  double lr_, eps_, beta1_, beta2_;
  int64_t t_ = 0;
};

// torch.optim.RMSprop (not centred, no momentum), as SB3's A2C uses it.
class RmsProp {
 public:
  RmsProp(std::vector<ParamSpan> params, double lr, double alpha = 0.99, double eps = 1e-5);
  void Step();
  void set_lr(double lr) { lr_ = lr; }

 private:
  std::vector<ParamSpan> params_;
  std::vector<std::vector<float>> square_avg_;
  double lr_, alpha_, eps_;
};

}  // namespace lcio::policy
