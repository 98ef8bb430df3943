#include "lcio/policy/networks.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace lcio::policy {

namespace {

// The hot loops, compiled for AVX2/FMA where the CPU has it (picked at load
// time) and with reassociation allowed so that dot products vectorise. The
// same binary on the same CPU always gives the same results.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LCIO_KERNEL                                          \
  __attribute__((target_clones("arch=x86-64-v3", "default"), \
                 optimize("O3", "associative-math", "no-signed-zeros", "no-trapping-math")))
#else
#define LCIO_KERNEL
#endif

// y[r] = b + x[r] W for a layer stored [in, width].
LCIO_KERNEL void LayerForward(const float* x, int rows, int in, const float* w, const float* b,
                              int width, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * in;
    float* yr = y + static_cast<size_t>(r) * width;
    for (int o = 0; o < width; ++o) yr[o] = b[o];
    for (int i = 0; i < in; ++i) {
      const float xi = xr[i];
      if (xi == 0.0f) continue;  // one-hot and history inputs are mostly zeros
      const float* wi = w + static_cast<size_t>(i) * width;
      for (int o = 0; o < width; ++o) yr[o] += xi * wi[o];
    }
  }
}

// tanh as a clamped odd rational function (degree 13 over 6; the minimax
// fit Eigen also uses), a few float ulps from std::tanh but branch-free, so it
// vectorises: libm's tanhf was a third of PPO's training time.
LCIO_KERNEL void TanhInPlace(float* y, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    const float x = std::clamp(y[k], -7.90531110763549805f, 7.90531110763549805f);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    y[k] = p / q;
  }
}

LCIO_KERNEL void ReluInPlace(float* y, size_t n) {
  for (size_t k = 0; k < n; ++k) y[k] = y[k] > 0.0f ? y[k] : 0.0f;
}

// grad *= activation'(y), from the activation's output y.
LCIO_KERNEL void TanhBackward(const float* y, float* grad, size_t n) {
  for (size_t k = 0; k < n; ++k) grad[k] *= 1.0f - y[k] * y[k];
}
LCIO_KERNEL void ReluBackward(const float* y, float* grad, size_t n) {
  for (size_t k = 0; k < n; ++k) grad[k] = y[k] > 0.0f ? grad[k] : 0.0f;
}

LCIO_KERNEL void AdamKernel(float* p, const float* g, float* m, float* v, int64_t n, float b1,
                            float b2, float step, float inv_sqrt_bias2, float eps) {
  for (int64_t k = 0; k < n; ++k) {
    m[k] = b1 * m[k] + (1.0f - b1) * g[k];
    v[k] = b2 * v[k] + (1.0f - b2) * g[k] * g[k];
    p[k] -= step * m[k] / (std::sqrt(v[k]) * inv_sqrt_bias2 + eps);
  }
}

LCIO_KERNEL void RmsPropKernel(float* p, const float* g, float* s, int64_t n, float a, float lr,
                               float eps) {
  for (int64_t k = 0; k < n; ++k) {
    s[k] = a * s[k] + (1.0f - a) * g[k] * g[k];
    p[k] -= lr * g[k] / (std::sqrt(s[k]) + eps);
  }
}

// gw += x^T g, gb += sum_r g.
LCIO_KERNEL void LayerBackwardParams(const float* x, const float* g, int rows, int in, int width,
                                     float* gw, float* gb) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * in;
    const float* gr = g + static_cast<size_t>(r) * width;
    for (int o = 0; o < width; ++o) gb[o] += gr[o];
    for (int i = 0; i < in; ++i) {
      const float xi = xr[i];
      if (xi == 0.0f) continue;
      float* gwi = gw + static_cast<size_t>(i) * width;
      for (int o = 0; o < width; ++o) gwi[o] += xi * gr[o];
    }
  }
}

// gx[r][i] = sum_o w[i][o] g[r][o].
LCIO_KERNEL void LayerBackwardInput(const float* g, const float* w, int rows, int in, int width,
                                    float* gx) {
  for (int r = 0; r < rows; ++r) {
    const float* gr = g + static_cast<size_t>(r) * width;
    float* gxr = gx + static_cast<size_t>(r) * in;
    for (int i = 0; i < in; ++i) {
      const float* wi = w + static_cast<size_t>(i) * width;
      float acc = 0.0f;
      for (int o = 0; o < width; ++o) acc += wi[o] * gr[o];
      gxr[i] = acc;
    }
  }
}

}  // namespace

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
    LayerForward(input, rows, in, weights_[l].data_ptr<float>(), biases_[l].data_ptr<float>(),
                 width, y);
    if (!last) {
      const size_t n = static_cast<size_t>(rows) * width;
      if (activation_ == Activation::kTanh) {
        TanhInPlace(y, n);
      } else {
        ReluInPlace(y, n);
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
        TanhBackward(y.data(), grad.data(), grad.size());
      } else {
        ReluBackward(y.data(), grad.data(), grad.size());
      }
    }
    LayerBackwardParams(cache.outputs[l].data(), grad.data(), rows, in, width,
                        weight_grads_[l].data_ptr<float>(), bias_grads_[l].data_ptr<float>());
    if (l > 0) {
      grad_in.resize(static_cast<size_t>(rows) * in);
      LayerBackwardInput(grad.data(), weights_[l].data_ptr<float>(), rows, in, width,
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
  for (const ParamSpan& p : params)
    for (int64_t k = 0; k < p.size; ++k) sum += static_cast<double>(p.grad[k]) * p.grad[k];
  const double norm = std::sqrt(sum);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (const ParamSpan& p : params)
      for (int64_t k = 0; k < p.size; ++k) p.grad[k] = static_cast<float>(p.grad[k] * coef);
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
    AdamKernel(params_[j].value, params_[j].grad, m_[j].data(), v_[j].data(), params_[j].size, b1,
               b2, step, inv_sqrt_bias2, eps);
}

RmsProp::RmsProp(std::vector<ParamSpan> params, double lr, double alpha, double eps)
    : params_(std::move(params)), lr_(lr), alpha_(alpha), eps_(eps) {
  for (const ParamSpan& p : params_) square_avg_.emplace_back(p.size, 0.0f);
}

void RmsProp::Step() {
  const float a = static_cast<float>(alpha_), lr = static_cast<float>(lr_);
  const float eps = static_cast<float>(eps_);
  for (size_t j = 0; j < params_.size(); ++j)
    RmsPropKernel(params_[j].value, params_[j].grad, square_avg_[j].data(), params_[j].size, a, lr,
                  eps);
}

}  // namespace lcio::policy
