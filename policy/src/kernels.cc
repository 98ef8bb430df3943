// The hot loops, compiled for AVX2/FMA where the CPU has it (picked at load
// time) and, for this file only (policy/CMakeLists.txt), with -O3 and
// reassociation allowed so that dot products vectorise. The same binary on
// the same CPU always gives the same results. The flags are per file, not per
// function attributes, and the loops call no library templates (std::clamp,
// std::sqrt): GCC does not inline default-target code into a target clone,
// and a loop with a call in it does not vectorise.
#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lcio::policy::kernels {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LCIO_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LCIO_KERNEL
#endif

// Helpers of the kernels must be always_inline: GCC does not inline a
// function compiled for the default target into a target_clones clone.
#define LCIO_INLINE inline __attribute__((always_inline))

// Eight floats as one value (GCC/Clang vector extension): AVX registers in
// the x86-64-v3 clone, pairs of SSE registers in the default one. Written
// out so that the chunked sums below stay in registers whatever the
// vectoriser decides.
typedef float Vec8 __attribute__((vector_size(32)));
LCIO_INLINE Vec8 Load8(const float* p) {
  Vec8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
LCIO_INLINE void Store8(float* p, Vec8 v) { std::memcpy(p, &v, sizeof v); }

// Outputs go in chunks of 64 columns (eight Vec8, then one of 32 for a
// remainder of 32 to 63) whose sums stay in registers across the whole input
// loop: eight independent sums keep both FMA units busy where four were
// bound by the FMA's latency. The rest of a layer (e.g. a 9-action head)
// takes a plain loop. Each output is the same sum in the same order (bias,
// then input by input) on every path, so the chunking never changes a result.
constexpr int kWideChunk = 64;
constexpr int kChunk = 32;
// Inputs are compacted to their non-zero entries first, without branches:
// observations are mostly zeros (one-hots, history flags) and half of a ReLU
// layer's outputs are, in a pattern a skip-zero branch would mispredict.
constexpr int kBlock = 256;

// Writes the indices and values of block[0, n)'s non-zero entries; returns
// how many.
LCIO_INLINE int Compact(const float* block, int n, int* index, float* value) {
  int nz = 0;
  for (int i = 0; i < n; ++i) {
    index[nz] = i;
    value[nz] = block[i];
    nz += block[i] != 0.0f ? 1 : 0;
  }
  return nz;
}

LCIO_KERNEL void LayerForward(const float* x, int rows, int in, const float* w, const float* b,
                              int width, float* y) {
  int index[kBlock];
  float value[kBlock];
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * in;
    float* yr = y + static_cast<size_t>(r) * width;
    std::memcpy(yr, b, sizeof(float) * width);
    for (int i0 = 0; i0 < in; i0 += kBlock) {
      const int nz = Compact(xr + i0, std::min(kBlock, in - i0), index, value);
      const float* wb = w + static_cast<size_t>(i0) * width;
      int o0 = 0;
      for (; o0 + kWideChunk <= width; o0 += kWideChunk) {
        Vec8 a0 = Load8(yr + o0), a1 = Load8(yr + o0 + 8), a2 = Load8(yr + o0 + 16),
             a3 = Load8(yr + o0 + 24), a4 = Load8(yr + o0 + 32), a5 = Load8(yr + o0 + 40),
             a6 = Load8(yr + o0 + 48), a7 = Load8(yr + o0 + 56);
        for (int k = 0; k < nz; ++k) {
          const float* wi = wb + static_cast<size_t>(index[k]) * width + o0;
          const Vec8 v = Vec8{} + value[k];
          a0 += v * Load8(wi);
          a1 += v * Load8(wi + 8);
          a2 += v * Load8(wi + 16);
          a3 += v * Load8(wi + 24);
          a4 += v * Load8(wi + 32);
          a5 += v * Load8(wi + 40);
          a6 += v * Load8(wi + 48);
          a7 += v * Load8(wi + 56);
        }
        Store8(yr + o0, a0);
        Store8(yr + o0 + 8, a1);
        Store8(yr + o0 + 16, a2);
        Store8(yr + o0 + 24, a3);
        Store8(yr + o0 + 32, a4);
        Store8(yr + o0 + 40, a5);
        Store8(yr + o0 + 48, a6);
        Store8(yr + o0 + 56, a7);
      }
      for (; o0 + kChunk <= width; o0 += kChunk) {
        Vec8 a0 = Load8(yr + o0), a1 = Load8(yr + o0 + 8), a2 = Load8(yr + o0 + 16),
             a3 = Load8(yr + o0 + 24);
        for (int k = 0; k < nz; ++k) {
          const float* wi = wb + static_cast<size_t>(index[k]) * width + o0;
          const Vec8 v = Vec8{} + value[k];
          a0 += v * Load8(wi);
          a1 += v * Load8(wi + 8);
          a2 += v * Load8(wi + 16);
          a3 += v * Load8(wi + 24);
        }
        Store8(yr + o0, a0);
        Store8(yr + o0 + 8, a1);
        Store8(yr + o0 + 16, a2);
        Store8(yr + o0 + 24, a3);
      }
      // Input by input, not column by column: a sum over k in one scalar
      // would be a reduction, which reassociation (this file's flags) may
      // split into partial sums and so change. (An eight-column register
      // sum here was slower for a 9-action head: one chain of dependent FMAs.)
      for (int k = 0; k < nz && o0 < width; ++k) {
        const float* wi = wb + static_cast<size_t>(index[k]) * width;
        for (int o = o0; o < width; ++o) yr[o] += value[k] * wi[o];
      }
    }
  }
}

// tanh as a clamped odd rational function (degree 13 over 6; the minimax
// fit Eigen also uses), a few float ulps from std::tanh but branch-free, so it
// vectorises: libm's tanhf was a third of PPO's training time.
LCIO_KERNEL void TanhInPlace(float* y, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    constexpr float kLimit = 7.90531110763549805f;
    const float x = y[k] < -kLimit ? -kLimit : (y[k] > kLimit ? kLimit : y[k]);
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
    p[k] -= step * m[k] / (__builtin_sqrtf(v[k]) * inv_sqrt_bias2 + eps);
  }
}

LCIO_KERNEL void RmsPropKernel(float* p, const float* g, float* s, int64_t n, float a, float lr,
                               float eps) {
  for (int64_t k = 0; k < n; ++k) {
    s[k] = a * s[k] + (1.0f - a) * g[k] * g[k];
    p[k] -= lr * g[k] / (__builtin_sqrtf(s[k]) + eps);
  }
}

LCIO_KERNEL void LayerBackwardParams(const float* x, const float* g, int rows, int in, int width,
                                     float* gw, float* gb) {
  int index[kBlock];
  float value[kBlock];
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * in;
    const float* gr = g + static_cast<size_t>(r) * width;
    for (int o = 0; o < width; ++o) gb[o] += gr[o];
    for (int i0 = 0; i0 < in; i0 += kBlock) {
      const int nz = Compact(xr + i0, std::min(kBlock, in - i0), index, value);
      float* gwb = gw + static_cast<size_t>(i0) * width;
      int o0 = 0;
      for (; o0 + kChunk <= width; o0 += kChunk) {
        const Vec8 g0 = Load8(gr + o0), g1 = Load8(gr + o0 + 8), g2 = Load8(gr + o0 + 16),
                   g3 = Load8(gr + o0 + 24);
        for (int k = 0; k < nz; ++k) {
          float* gwi = gwb + static_cast<size_t>(index[k]) * width + o0;
          const Vec8 v = Vec8{} + value[k];
          Store8(gwi, Load8(gwi) + v * g0);
          Store8(gwi + 8, Load8(gwi + 8) + v * g1);
          Store8(gwi + 16, Load8(gwi + 16) + v * g2);
          Store8(gwi + 24, Load8(gwi + 24) + v * g3);
        }
      }
      for (int k = 0; k < nz && o0 < width; ++k) {
        float* gwi = gwb + static_cast<size_t>(index[k]) * width;
        for (int o = o0; o < width; ++o) gwi[o] += value[k] * gr[o];
      }
    }
  }
}

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

LCIO_KERNEL double SumOfSquares(const float* x, int64_t n) {
  double sum = 0;
  for (int64_t k = 0; k < n; ++k) sum += static_cast<double>(x[k]) * x[k];
  return sum;
}

LCIO_KERNEL void ScaleInPlace(float* x, int64_t n, float factor) {
  for (int64_t k = 0; k < n; ++k) x[k] *= factor;
}

}  // namespace lcio::policy::kernels
