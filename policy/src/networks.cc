#include "lcio/policy/networks.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace lcio::policy {

std::string ActivationName(Activation activation) {
  return activation == Activation::kTanh ? "tanh" : "relu";
}

Mlp::Mlp(std::vector<int> sizes, Activation activation, Init init, double output_gain)
    : sizes_(std::move(sizes)), activation_(activation) {
  torch::NoGradGuard no_grad;
  const int layers = static_cast<int>(sizes_.size()) - 1;
  for (int l = 0; l < layers; ++l) {
    const int in = sizes_[l], out = sizes_[l + 1];
    // Initialise in torch's [out, in] form so that the draws match
    // torch.nn.Linear's, then store transposed.
    torch::Tensor w = torch::empty({out, in}, torch::kFloat32);
    torch::Tensor b = torch::zeros({out}, torch::kFloat32);
    if (init == Init::kOrthogonal) {
      torch::nn::init::orthogonal_(w, l + 1 == layers ? output_gain : std::sqrt(2.0));
    } else {
      torch::nn::init::kaiming_uniform_(w, std::sqrt(5.0));
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      torch::nn::init::uniform_(b, -bound, bound);
    }
    weights_.push_back(w.t().contiguous());
    biases_.push_back(b.contiguous());
    weight_grads_.push_back(torch::zeros({in, out}, torch::kFloat32));
    bias_grads_.push_back(torch::zeros({out}, torch::kFloat32));
  }
}

void Mlp::Forward(const float* x, int rows, float* out, MlpCache* cache) const {
  const int layers = num_layers();
  // Without a cache, ping-pong between two scratch buffers.
  thread_local std::vector<float> scratch[2];
  if (cache) {
    cache->rows = rows;
    cache->outputs.resize(layers + 1);
    cache->outputs[0].assign(x, x + static_cast<size_t>(rows) * sizes_[0]);
  }
  const float* input = x;
  for (int l = 0; l < layers; ++l) {
    const int in = sizes_[l], width = sizes_[l + 1];
    const bool last = l + 1 == layers;
    float* y;
    if (last) {
      y = out;
    } else if (cache) {
      cache->outputs[l + 1].resize(static_cast<size_t>(rows) * width);
      y = cache->outputs[l + 1].data();
    } else {
      scratch[l % 2].resize(static_cast<size_t>(rows) * width);
      y = scratch[l % 2].data();
    }
    kernels::LayerForward(input, rows, in, weights_[l].data_ptr<float>(),
                          biases_[l].data_ptr<float>(), width, y);
    if (!last) {
      const size_t n = static_cast<size_t>(rows) * width;
      if (activation_ == Activation::kTanh) {
        kernels::TanhInPlace(y, n);
      } else {
        kernels::ReluInPlace(y, n);
      }
    }
    if (last && cache) cache->outputs[layers].assign(out, out + static_cast<size_t>(rows) * width);
    input = y;
  }
}

void Mlp::Backward(const MlpCache& cache, const float* grad_out) {
  const int layers = num_layers();
  const int rows = cache.rows;
  thread_local std::vector<float> grad, grad_in;  // reused: no allocation per update
  grad.assign(grad_out, grad_out + static_cast<size_t>(rows) * sizes_.back());
  for (int l = layers - 1; l >= 0; --l) {
    const int in = sizes_[l], width = sizes_[l + 1];
    if (l + 1 < layers) {  // through the activation: grad holds d/d(post-activation)
      const std::vector<float>& y = cache.outputs[l + 1];
      if (activation_ == Activation::kTanh) {
        kernels::TanhBackward(y.data(), grad.data(), grad.size());
      } else {
        kernels::ReluBackward(y.data(), grad.data(), grad.size());
      }
    }
    kernels::LayerBackwardParams(cache.outputs[l].data(), grad.data(), rows, in, width,
                                 weight_grads_[l].data_ptr<float>(),
                                 bias_grads_[l].data_ptr<float>());
    if (l > 0) {
      grad_in.resize(static_cast<size_t>(rows) * in);
      kernels::LayerBackwardInput(grad.data(), weights_[l].data_ptr<float>(), rows, in, width,
                                  grad_in.data());
    }
    if (l > 0) grad.swap(grad_in);
  }
}

void Mlp::ZeroGrad() {
  // Plain fills: a LibTorch zero_() per tensor costs more than the fill itself.
  for (auto* grads : {&weight_grads_, &bias_grads_})
    for (auto& g : *grads) std::fill_n(g.data_ptr<float>(), g.numel(), 0.0f);
}

void Mlp::CopyFrom(const Mlp& other) {
  for (int l = 0; l < num_layers(); ++l) {
    weights_[l].copy_(other.weights_[l]);
    biases_[l].copy_(other.biases_[l]);
  }
}

void Mlp::SoftUpdateFrom(const Mlp& other, double tau) {
  if (tau >= 1.0) return CopyFrom(other);
  for (int l = 0; l < num_layers(); ++l) {
    for (auto [dst, src] :
         {std::pair{&weights_[l], &other.weights_[l]}, std::pair{&biases_[l], &other.biases_[l]}}) {
      float* d = dst->data_ptr<float>();
      const float* s = src->data_ptr<float>();
      for (int64_t k = 0; k < dst->numel(); ++k)
        d[k] = static_cast<float>(tau * s[k] + (1.0 - tau) * d[k]);
    }
  }
}

std::vector<ParamSpan> Mlp::Params() {
  std::vector<ParamSpan> spans;
  for (int l = 0; l < num_layers(); ++l) {
    spans.push_back(
        {weights_[l].data_ptr<float>(), weight_grads_[l].data_ptr<float>(), weights_[l].numel()});
    spans.push_back(
        {biases_[l].data_ptr<float>(), bias_grads_[l].data_ptr<float>(), biases_[l].numel()});
  }
  return spans;
}

torch::Tensor Mlp::WeightOutIn(int layer) const { return weights_[layer].t().contiguous(); }

double ClipGradNorm(const std::vector<ParamSpan>& params, double max_norm) {
  double sum = 0;
  for (const ParamSpan& p : params) sum += kernels::SumOfSquares(p.grad, p.size);
  const double norm = std::sqrt(sum);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (const ParamSpan& p : params)
      kernels::ScaleInPlace(p.grad, p.size, static_cast<float>(coef));
  return norm;
}

Adam::Adam(std::vector<ParamSpan> params, double lr, double eps, double beta1, double beta2)
    : params_(std::move(params)), lr_(lr), eps_(eps), beta1_(beta1), beta2_(beta2) {
  for (const ParamSpan& p : params_) {
    m_.emplace_back(p.size, 0.0f);
    v_.emplace_back(p.size, 0.0f);
  }
}

void Adam::Step() {
  ++t_;
  const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  const float step = static_cast<float>(lr_ / bias1);
  const float inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
  const float eps = static_cast<float>(eps_);
  for (size_t j = 0; j < params_.size(); ++j)
    kernels::AdamKernel(params_[j].value, params_[j].grad, m_[j].data(), v_[j].data(),
                        params_[j].size, b1, b2, step, inv_sqrt_bias2, eps);
}

RmsProp::RmsProp(std::vector<ParamSpan> params, double lr, double alpha, double eps)
    : params_(std::move(params)), lr_(lr), alpha_(alpha), eps_(eps) {
  for (const ParamSpan& p : params_) square_avg_.emplace_back(p.size, 0.0f);
}

void RmsProp::Step() {
  const float a = static_cast<float>(alpha_), lr = static_cast<float>(lr_);
  const float eps = static_cast<float>(eps_);
  for (size_t j = 0; j < params_.size(); ++j)
    kernels::RmsPropKernel(params_[j].value, params_[j].grad, square_avg_[j].data(),
                           params_[j].size, a, lr, eps);
}

}  // namespace lcio::policy
