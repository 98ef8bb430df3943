// The arithmetic of the small MLPs, shared by the trainer's networks
// (networks.cc) and the serving engine's loop path (inference.cc), so that a
// policy scores the same in training, evaluation and serving. Plain C++ over
// raw float arrays: no LibTorch here (see networks.h for why).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lcio::policy::kernels {

// y[r] = b + x[r] W for `rows` rows, a layer stored [in, width].
void LayerForward(const float* x, int rows, int in, const float* w, const float* b, int width,
                  float* y);
// Activations in place; the tanh is a rational approximation a few float
// ulps from std::tanh (max error 3.5e-7) that vectorises.
void TanhInPlace(float* y, size_t n);
void ReluInPlace(float* y, size_t n);
// grad *= activation'(y), from the activation's output y.
void TanhBackward(const float* y, float* grad, size_t n);
void ReluBackward(const float* y, float* grad, size_t n);
// gw += x^T g, gb += sum_r g.
void LayerBackwardParams(const float* x, const float* g, int rows, int in, int width, float* gw,
                         float* gb);
// gx[r][i] = sum_o w[i][o] g[r][o].
void LayerBackwardInput(const float* g, const float* w, int rows, int in, int width, float* gx);
// One torch.optim.Adam / RMSprop step over n parameters.
void AdamKernel(float* p, const float* g, float* m, float* v, int64_t n, float b1, float b2,
                float step, float inv_sqrt_bias2, float eps);
void RmsPropKernel(float* p, const float* g, float* s, int64_t n, float a, float lr, float eps);

// sum x^2 in double; x *= factor (gradient clipping).
double SumOfSquares(const float* x, int64_t n);
void ScaleInPlace(float* x, int64_t n, float factor);

}  // namespace lcio::policy::kernels
