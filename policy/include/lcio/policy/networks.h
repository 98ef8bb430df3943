// The trainer's multilayer perceptrons, with hand-written backward passes.
// Parameters are a policy::Network (network.h: plain float arrays, the form
// training, evaluation and serving share) initialised with LibTorch's seeded
// initialisers; the forward is Network::Forward and the arithmetic the
// kernels': for 64-unit layers and batches of 1-64 rows, LibTorch's
// per-operator dispatch and autograd cost (~2.5 ms per PPO minibatch update
// measured on this machine) dwarfs the arithmetic itself (~20 us).
// tests/policy/algo_numerics_test.cc checks the gradients against LibTorch
// autograd.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lcio/policy/network.h"

namespace lcio::policy {

// A view of one parameter tensor and its gradient for the optimisers.
struct ParamSpan {
  float* value;
  float* grad;
  int64_t size;
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

  int input_size() const { return net_.input_size(); }
  int output_size() const { return net_.output_size(); }
  int num_layers() const { return net_.num_layers(); }
  Activation activation() const { return net_.activation; }
  // The parameters as they are now: what an algorithm exports.
  const Network& network() const { return net_; }

  // out = net(x) for `rows` rows; keeps activations in `cache` when given.
  void Forward(const float* x, int rows, float* out, MlpCache* cache = nullptr) const {
    net_.Forward(x, rows, out, cache);
  }
  // Accumulates parameter gradients for d(loss)/d(out) (rows x out).
  void Backward(const MlpCache& cache, const float* grad_out);
  void ZeroGrad();
  void CopyFrom(const Mlp& other);  // same shape; for DQN's target network
  // Polyak: this = tau * other + (1 - tau) * this.
  void SoftUpdateFrom(const Mlp& other, double tau);
  std::vector<ParamSpan> Params();

  // Copies as LibTorch tensors, weights [out, in] (the stored form is
  // [in, out] for the kernels' contiguous inner loops) and biases [out]: for
  // the tests against autograd.
  at::Tensor WeightOutIn(int layer) const;
  at::Tensor Bias(int layer) const;
  const std::vector<int>& sizes() const { return net_.sizes; }

 private:
  Network net_;
  std::vector<std::vector<float>> weight_grads_, bias_grads_;  // same shapes
  std::vector<float> grad_, grad_in_;  // Backward's scratch, reused across updates
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
