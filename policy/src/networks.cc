#include "lcio/policy/networks.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace lcio::policy {

Mlp::Mlp(std::vector<int> sizes, Activation activation, Init init, double output_gain) {
  torch::NoGradGuard no_grad;
  net_.sizes = std::move(sizes);
  net_.activation = activation;
  const int layers = static_cast<int>(net_.sizes.size()) - 1;
  for (int l = 0; l < layers; ++l) {
    const int in = net_.sizes[l], out = net_.sizes[l + 1];
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
    const torch::Tensor wt = w.t().contiguous();
    net_.weights.emplace_back(wt.data_ptr<float>(), wt.data_ptr<float>() + wt.numel());
    net_.biases.emplace_back(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
    weight_grads_.emplace_back(static_cast<size_t>(in) * out, 0.0f);
    bias_grads_.emplace_back(out, 0.0f);
  }
}

void Mlp::Backward(const MlpCache& cache, const float* grad_out) {
  const int layers = num_layers();
  const int rows = cache.rows;
  const std::vector<int>& sizes = net_.sizes;
  grad_.assign(grad_out, grad_out + static_cast<size_t>(rows) * sizes.back());
  for (int l = layers - 1; l >= 0; --l) {
    const int in = sizes[l], width = sizes[l + 1];
    if (l + 1 < layers) {  // through the activation: grad holds d/d(post-activation)
      const std::vector<float>& y = cache.outputs[l + 1];
      if (net_.activation == Activation::kTanh) {
        kernels::TanhBackward(y.data(), grad_.data(), grad_.size());
      } else {
        kernels::ReluBackward(y.data(), grad_.data(), grad_.size());
      }
    }
    kernels::LayerBackwardParams(cache.outputs[l].data(), grad_.data(), rows, in, width,
                                 weight_grads_[l].data(), bias_grads_[l].data());
    if (l > 0) {
      grad_in_.resize(static_cast<size_t>(rows) * in);
      kernels::LayerBackwardInput(grad_.data(), net_.weights[l].data(), rows, in, width,
                                  grad_in_.data());
      grad_.swap(grad_in_);
    }
  }
}

void Mlp::ZeroGrad() {
  for (auto* grads : {&weight_grads_, &bias_grads_})
    for (auto& g : *grads) std::fill(g.begin(), g.end(), 0.0f);
}

void Mlp::CopyFrom(const Mlp& other) {
  // Element copies, not assignment: optimisers hold pointers into the arrays.
  for (int l = 0; l < num_layers(); ++l) {
    std::copy(other.net_.weights[l].begin(), other.net_.weights[l].end(), net_.weights[l].begin());
    std::copy(other.net_.biases[l].begin(), other.net_.biases[l].end(), net_.biases[l].begin());
  }
}

void Mlp::SoftUpdateFrom(const Mlp& other, double tau) {
  if (tau >= 1.0) return CopyFrom(other);
  for (int l = 0; l < num_layers(); ++l) {
    for (auto [dst, src] : {std::pair{&net_.weights[l], &other.net_.weights[l]},
                            std::pair{&net_.biases[l], &other.net_.biases[l]}}) {
      float* d = dst->data();
      const float* s = src->data();
      for (size_t k = 0; k < dst->size(); ++k)
        d[k] = static_cast<float>(tau * s[k] + (1.0 - tau) * d[k]);
    }
  }
}

std::vector<ParamSpan> Mlp::Params() {
  std::vector<ParamSpan> spans;
  for (int l = 0; l < num_layers(); ++l) {
    spans.push_back({net_.weights[l].data(), weight_grads_[l].data(),
                     static_cast<int64_t>(net_.weights[l].size())});
    spans.push_back({net_.biases[l].data(), bias_grads_[l].data(),
                     static_cast<int64_t>(net_.biases[l].size())});
  }
  return spans;
}

torch::Tensor Mlp::WeightOutIn(int layer) const {
  const int in = net_.sizes[layer], out = net_.sizes[layer + 1];
  return torch::from_blob(const_cast<float*>(net_.weights[layer].data()), {in, out},
                          torch::kFloat32)
      .t()
      .contiguous();
}

torch::Tensor Mlp::Bias(int layer) const {
  return torch::from_blob(const_cast<float*>(net_.biases[layer].data()),
                          {static_cast<int64_t>(net_.biases[layer].size())}, torch::kFloat32)
      .clone();
}

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
