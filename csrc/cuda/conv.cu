// Convolution and pooling on the GPU (see kernels.h), NHWC input, HWIO kernel, TensorFlow's
// index arithmetic (common/dispatch.h). Convolution is an implicit GEMM: the tiled kernel of
// gemm_tile.cuh with loaders that gather image windows on the fly (no im2col buffer).
// Letters: M = N*P*Q output pixels, L = R*S*C window length.
//   forward:        Y[M,K]   = col(x)[M,L] . W[L,K]            (W = w as stored)
//   weight grad:    dW[L,K]  = col(x)^T[L,M] . dz[M,K]          (split-K over the pixels)
//   input grad:     dX[NHW,C] = dcol[NHW, R*S*K] . Wt[R*S*K, C]  where dcol gathers, for each
//                   input pixel, the output pixels whose window covers it (zero otherwise).
#include <cfloat>

#include "cuda/gemm_tile.cuh"
#include "cuda/kernels.h"

namespace dlfast {
namespace cuda {
namespace {

// A loader gathering element (o, k) of an operand from p at Index::offset(s, o, k), zero where
// the offset is -1; contiguous along k (groups of 4 as one float4) when `vec`. The three
// convolution operands below differ only in their index arithmetic.
template <class Index>
struct GatherLoader {
  const float* p;
  Conv2dShape s;
  bool vec;
  static constexpr bool kAlongK = true;
  __device__ float at(int64_t o, int64_t k) const {
    const int64_t i = Index::offset(s, o, k);
    return i < 0 ? 0.f : p[i];
  }
  __device__ bool vec_ok(int64_t, int64_t) const { return vec; }
  __device__ float4 at4(int64_t o, int64_t k) const {
    const int64_t i = Index::offset(s, o, k);
    return i < 0 ? make_float4(0.f, 0.f, 0.f, 0.f) : *reinterpret_cast<const float4*>(p + i);
  }
};

// col(x)(m, l): m = (n, p, q) output pixel, l = (r, s, c) window cell; contiguous along l
// (channels) when C % 4 == 0, so a group of 4 is one float4 inside one (r, s). -1 outside
// the image.
struct WindowIndex {
  __device__ static int64_t offset(const Conv2dShape& s, int64_t m, int64_t l) {
    const int64_t c = l % s.C, rs = l / s.C, sc = rs % s.S, r = rs / s.S;
    const int64_t q = m % s.Q, np = m / s.Q, p = np % s.P, n = np / s.P;
    const int64_t h = p * s.stride_h - s.pad_top + r * s.dil_h;
    const int64_t w = q * s.stride_w - s.pad_left + sc * s.dil_w;
    if (h < 0 || h >= s.H || w < 0 || w >= s.W) return -1;
    return ((n * s.H + h) * s.W + w) * s.C + c;
  }
};
using ConvWindowLoader = GatherLoader<WindowIndex>;

// col(x)^T as the A operand of the weight gradient: element (l, m), contiguous along l.
struct ConvWindowTLoader {
  ConvWindowLoader win;
  static constexpr bool kAlongK = false;
  __device__ float at(int64_t l, int64_t m) const { return win.at(m, l); }
  __device__ bool vec_ok(int64_t, int64_t) const { return win.vec; }
  __device__ float4 at4(int64_t l, int64_t m) const { return win.at4(m, l); }
};

// dcol(i, j) for the input gradient: i = (n, h, w) input pixel, j = (r, s, k); the dz of the
// output pixel (p, q) whose window puts cell (r, s) on (h, w), -1 (zero) when there is none.
// Contiguous along j (filters) when K % 4 == 0.
struct ScatterIndex {
  __device__ static int64_t offset(const Conv2dShape& s, int64_t i, int64_t j) {
    const int64_t k = j % s.K, rs = j / s.K, sc = rs % s.S, r = rs / s.S;
    const int64_t w = i % s.W, nh = i / s.W, h = nh % s.H, n = nh / s.H;
    const int64_t ph = h + s.pad_top - r * s.dil_h, qw = w + s.pad_left - sc * s.dil_w;
    if (ph < 0 || qw < 0 || ph % s.stride_h || qw % s.stride_w) return -1;
    const int64_t p = ph / s.stride_h, q = qw / s.stride_w;
    if (p >= s.P || q >= s.Q) return -1;
    return ((n * s.P + p) * s.Q + q) * s.K + k;
  }
};
using ConvScatterLoader = GatherLoader<ScatterIndex>;

// Wt(j, c) = w[r, s, c, k] for j = (r, s, k): the B operand of the input gradient, as element
// (c, j) of a loader; contiguous along j (filters) when K % 4 == 0.
struct KernelTIndex {
  __device__ static int64_t offset(const Conv2dShape& s, int64_t c, int64_t j) {
    const int64_t k = j % s.K, rs = j / s.K;
    return (rs * s.C + c) * s.K + k;
  }
};
using KernelTLoader = GatherLoader<KernelTIndex>;

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 1 ? 1 : (b > 65535 * 16 ? 65535 * 16 : b));
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

// Output element i = ((n*P + p)*Q + q)*C + c of a pool: its window's first row/column.
struct PoolIndex {
  int64_t n, c, h0, w0;
  __device__ PoolIndex(int64_t i, const Pool2dShape& s) {
    c = i % s.C;
    const int64_t pix = i / s.C, q = pix % s.Q, np = pix / s.Q, p = np % s.P;
    n = np / s.P;
    h0 = p * s.stride_h - s.pad_top;
    w0 = q * s.stride_w - s.pad_left;
  }
};

// The first maximum of the window of output i (offset in x; -1 when the window is empty); a NaN
// counts as the maximum (NumPy's argmax): the first NaN, if any.
__device__ int64_t pool_argmax(const float* x, const Pool2dShape& s, int64_t i) {
  const PoolIndex ix(i, s);
  float best = -FLT_MAX;
  int64_t arg = -1;
  for (int64_t r = 0; r < s.R; ++r) {
    const int64_t h = ix.h0 + r;
    if (h < 0 || h >= s.H) continue;
    for (int64_t c = 0; c < s.S; ++c) {
      const int64_t w = ix.w0 + c;
      if (w < 0 || w >= s.W) continue;
      const int64_t o = ((ix.n * s.H + h) * s.W + w) * s.C + ix.c;
      if (arg < 0 || x[o] > best || (x[o] != x[o] && best == best)) best = x[o], arg = o;
    }
  }
  return arg;
}

__global__ void maxpool_forward_kernel(float* y, const float* x, Pool2dShape s, int64_t n) {
  GRID_STRIDE(i, n) {
    const int64_t o = pool_argmax(x, s, i);
    y[i] = o < 0 ? -INFINITY : x[o];
  }
}

__global__ void maxpool_backward_kernel(float* dx, const float* dy, const float* x,
                                        Pool2dShape s, int64_t n) {
  GRID_STRIDE(i, n) {
    const int64_t o = pool_argmax(x, s, i);
    if (o >= 0) atomicAdd(dx + o, dy[i]);
  }
}

// Cells of the window of output i inside the input (TensorFlow excludes the padding).
__device__ int64_t pool_count(const PoolIndex& ix, const Pool2dShape& s) {
  const int64_t h1 = min(ix.h0 + s.R, s.H), w1 = min(ix.w0 + s.S, s.W);
  const int64_t rows = h1 - max(ix.h0, int64_t(0)), cols = w1 - max(ix.w0, int64_t(0));
  return rows > 0 && cols > 0 ? rows * cols : 0;
}

__global__ void avgpool_forward_kernel(float* y, const float* x, Pool2dShape s, int64_t n) {
  GRID_STRIDE(i, n) {
    const PoolIndex ix(i, s);
    float sum = 0.f;
    for (int64_t r = max(ix.h0, int64_t(0)); r < min(ix.h0 + s.R, s.H); ++r)
      for (int64_t c = max(ix.w0, int64_t(0)); c < min(ix.w0 + s.S, s.W); ++c)
        sum += x[((ix.n * s.H + r) * s.W + c) * s.C + ix.c];
    const int64_t count = pool_count(ix, s);
    y[i] = count ? sum / float(count) : 0.f;
  }
}

__global__ void avgpool_backward_kernel(float* dx, const float* dy, Pool2dShape s, int64_t n) {
  GRID_STRIDE(i, n) {
    const PoolIndex ix(i, s);
    const int64_t count = pool_count(ix, s);
    if (!count) continue;
    const float g = dy[i] / float(count);
    for (int64_t r = max(ix.h0, int64_t(0)); r < min(ix.h0 + s.R, s.H); ++r)
      for (int64_t c = max(ix.w0, int64_t(0)); c < min(ix.w0 + s.S, s.W); ++c)
        atomicAdd(dx + ((ix.n * s.H + r) * s.W + c) * s.C + ix.c, g);
  }
}

}  // namespace

void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dShape& s, Activation act, cudaStream_t stream) {
  const int64_t M = s.N * s.P * s.Q, L = s.R * s.S * s.C;
  const bool softmax = act == Activation::softmax;
  const Epilogue ep{y, s.K, b, softmax ? Activation::linear : act, false};
  launch_gemm(ep, ConvWindowLoader{x, s, s.C % 4 == 0 && aligned16(x)},
              ColLoader{w, s.K, s.K % 4 == 0 && aligned16(w)}, M, s.K, L, stream);
  if (softmax) activation_forward(y, y, M, s.K, act, stream);
}

void conv2d_backward(float* dx, float* dw, float* db, float* dz, const float* dy,
                     const float* x, const float* w, const float* y, const Conv2dShape& s,
                     Activation act, bool accumulate, cudaStream_t stream) {
  const int64_t M = s.N * s.P * s.Q, L = s.R * s.S * s.C;
  const float* g = dy;
  if (act != Activation::linear) {
    activation_backward(dz, dy, y, M, s.K, act, stream);
    g = dz;
  }
  const ConvWindowLoader win{x, s, s.C % 4 == 0 && aligned16(x)};
  launch_gemm(Epilogue{dw, s.K, nullptr, Activation::linear, accumulate}, ConvWindowTLoader{win},
              ColLoader{g, s.K, s.K % 4 == 0 && aligned16(g)}, L, s.K, M, stream);
  if (db) column_sum(db, g, M, s.K, accumulate, stream);
  if (dx) {
    const bool vk = s.K % 4 == 0;
    launch_gemm(Epilogue{dx, s.C, nullptr, Activation::linear, false},
                ConvScatterLoader{g, s, vk && aligned16(g)}, KernelTLoader{w, s, vk && aligned16(w)},
                s.N * s.H * s.W, s.C, s.R * s.S * s.K, stream);
  }
}

void maxpool2d_forward(float* y, const float* x, const Pool2dShape& s, cudaStream_t stream) {
  const int64_t n = s.N * s.P * s.Q * s.C;
  if (n > 0) maxpool_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, s, n);
}

void maxpool2d_backward(float* dx, const float* dy, const float* x, const Pool2dShape& s,
                        cudaStream_t stream) {
  cudaMemsetAsync(dx, 0, sizeof(float) * size_t(s.N * s.H * s.W * s.C), stream);
  const int64_t n = s.N * s.P * s.Q * s.C;
  if (n > 0) maxpool_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, x, s, n);
}

void avgpool2d_forward(float* y, const float* x, const Pool2dShape& s, cudaStream_t stream) {
  const int64_t n = s.N * s.P * s.Q * s.C;
  if (n > 0) avgpool_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, s, n);
}

void avgpool2d_backward(float* dx, const float* dy, const Pool2dShape& s, cudaStream_t stream) {
  cudaMemsetAsync(dx, 0, sizeof(float) * size_t(s.N * s.H * s.W * s.C), stream);
  const int64_t n = s.N * s.P * s.Q * s.C;
  if (n > 0) avgpool_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, s, n);
}

}  // namespace cuda
}  // namespace dlfast
