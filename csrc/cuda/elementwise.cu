// Element-wise and row-wise kernels on the GPU (see kernels.h): activations, column sums,
// the losses with their gradients, accuracy counts, and the SGD / Adam updates. Formulas and
// clipping follow the CPU kernels (csrc/cpu/activation.cpp, loss.cpp, optimizer.cpp).
#include <cfloat>

#include "cuda/gemm_tile.cuh"
#include "cuda/kernels.h"

namespace dlfast {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr float kEpsilon = 1e-7f;  // Keras's probability clip

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 1 ? 1 : (b > 65535 * 16 ? 65535 * 16 : b));  // grid-stride beyond
}
unsigned blocks_for_rows(int64_t rows) {  // one warp per row, grid-stride beyond
  int64_t b = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return unsigned(b < 1 ? 1 : (b > 65535 * 16 ? 65535 * 16 : b));
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)
#define WARP_ROWS(r, rows)                                                                 \
  for (int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; r < (rows); \
       r += int64_t(gridDim.x) * blockDim.x / 32)

__global__ void activation_forward_kernel(float* y, const float* x, int64_t n, Activation act) {
  GRID_STRIDE(i, n) y[i] = apply_activation(x[i], act);
}

__global__ void activation_backward_kernel(float* dx, const float* dy, const float* y,
                                           int64_t n, Activation act) {
  GRID_STRIDE(i, n) {
    const float v = y[i], d = dy[i];
    float g = d;
    if (act == Activation::relu) g = v <= 0.f ? 0.f : d;  // a NaN y passes dy (cpu/activation.cpp)
    else if (act == Activation::sigmoid) g = d * v * (1.f - v);
    else if (act == Activation::tanh) g = d * (1.f - v * v);
    dx[i] = g;
  }
}

// Softmax of each row, one warp per row (max-shifted).
__global__ void softmax_forward_kernel(float* y, const float* x, int64_t R, int64_t C) {
  const int lane = threadIdx.x % 32;
  WARP_ROWS(r, R) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    float m = -FLT_MAX;
    for (int64_t c = lane; c < C; c += 32) m = fmaxf(m, xr[c]);
    m = warp_max(m);
    float s = 0.f;
    for (int64_t c = lane; c < C; c += 32) s += expf(xr[c] - m);
    s = warp_sum(s);
    const float inv = 1.f / s;
    for (int64_t c = lane; c < C; c += 32) yr[c] = expf(xr[c] - m) * inv;
  }
}

// dx = y * (dy - sum(dy * y)) per row.
__global__ void softmax_backward_kernel(float* dx, const float* dy, const float* y, int64_t R,
                                        int64_t C) {
  const int lane = threadIdx.x % 32;
  WARP_ROWS(r, R) {
    const float *dyr = dy + r * C, *yr = y + r * C;
    float s = 0.f;
    for (int64_t c = lane; c < C; c += 32) s += dyr[c] * yr[c];
    s = warp_sum(s);
    for (int64_t c = lane; c < C; c += 32) dx[r * C + c] = yr[c] * (dyr[c] - s);
  }
}

// out[c] (= or +=) sum over rows of x[:, c]: 32 columns x 32 row lanes per block, each lane
// summing a fixed stride of rows, then the 32 partial sums in order.
__global__ void column_sum_kernel(float* out, const float* x, int64_t R, int64_t C,
                                  bool accumulate) {
  __shared__ float part[32][33];
  const int64_t c = int64_t(blockIdx.x) * 32 + threadIdx.x;
  float s = 0.f;
  if (c < C)
    for (int64_t r = threadIdx.y; r < R; r += 32) s += x[r * C + c];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float t = 0.f;
    for (int i = 0; i < 32; ++i) t += part[i][threadIdx.x];
    out[c] = accumulate ? out[c] + t : t;
  }
}

__device__ __forceinline__ float clip_probability(float p) {
  return fminf(fmaxf(p, kEpsilon), 1.f - kEpsilon);
}

// One warp per row: work[r] = the row's loss (summed over its C entries); grad row written.
// scale_grad is d(mean)/d(entry sum): 1/N for the categorical losses, 1/(N*C) otherwise.
__global__ void loss_rows_kernel(float* grad, float* work, const float* y_pred,
                                 const float* target, const int64_t* labels, int64_t N,
                                 int64_t C, Loss kind, bool from_logits, float scale_grad) {
  const int lane = threadIdx.x % 32;
  WARP_ROWS(r, N) {
    const float* p = y_pred + r * C;
    const float* t = target ? target + r * C : nullptr;
    float* g = grad ? grad + r * C : nullptr;
    double row = 0.0;
    if (kind == Loss::mse) {
      for (int64_t c = lane; c < C; c += 32) {
        const float d = p[c] - t[c];
        row += double(d) * d;
        if (g) g[c] = 2.f * scale_grad * d;
      }
    } else if (kind == Loss::binary_crossentropy) {
      for (int64_t c = lane; c < C; c += 32) {
        const float tc = t[c];
        if (from_logits) {  // max(z,0) - z t + log(1 + exp(-|z|))
          const float z = p[c];
          row += double(fmaxf(z, 0.f)) - double(z) * tc + log1p(exp(-fabs(double(z))));
          if (g) g[c] = (1.f / (1.f + expf(-z)) - tc) * scale_grad;
        } else {
          const float q = clip_probability(p[c]);
          row -= double(tc) * log(double(q)) + double(1.f - tc) * log(double(1.f - q));
          if (g) g[c] = q == p[c] ? (q - tc) / (q * (1.f - q)) * scale_grad : 0.f;
        }
      }
    } else {  // categorical / sparse categorical
      const int64_t label = labels ? labels[r] : -1;
      if (labels && (label < 0 || label >= C)) {  // never read outside the row
        if (lane == 0) work[r] = NAN;
        if (g)
          for (int64_t c = lane; c < C; c += 32) g[c] = NAN;
        continue;
      }
      if (from_logits) {  // log-sum-exp; grad = (softmax * sum(t) - t) * scale
        float m = -FLT_MAX;
        for (int64_t c = lane; c < C; c += 32) m = fmaxf(m, p[c]);
        m = warp_max(m);
        double s = 0.0, tsum = 0.0, tz = 0.0;
        for (int64_t c = lane; c < C; c += 32) {
          s += exp(double(p[c] - m));
          const double tc = t ? double(t[c]) : (c == label ? 1.0 : 0.0);
          tsum += tc;
          tz += tc * double(p[c]);
        }
        s = warp_sum(s), tsum = warp_sum(tsum), tz = warp_sum(tz);
        const double lse = double(m) + log(s);
        row = lane == 0 ? tsum * lse - tz : 0.0;
        if (g)
          for (int64_t c = lane; c < C; c += 32) {
            const double tc = t ? double(t[c]) : (c == label ? 1.0 : 0.0);
            g[c] = float((exp(double(p[c]) - lse) * tsum - tc) * scale_grad);
          }
      } else {  // Keras: q = clip(p / sum(p)); see csrc/cpu/loss.cpp for the gradient
        double s = 0.0;
        for (int64_t c = lane; c < C; c += 32) s += double(p[c]);
        s = warp_sum(s);
        double t_unclipped = 0.0;
        for (int64_t c = lane; c < C; c += 32) {
          const float tc = t ? t[c] : (c == label ? 1.f : 0.f);
          const float q = float(double(p[c]) / s), qc = clip_probability(q);
          if (tc != 0.f) row -= double(tc) * log(double(qc));
          if (qc == q) t_unclipped += double(tc);
        }
        t_unclipped = warp_sum(t_unclipped);
        if (g)
          for (int64_t c = lane; c < C; c += 32) {
            const float tc = t ? t[c] : (c == label ? 1.f : 0.f);
            const float q = float(double(p[c]) / s);
            const double own = clip_probability(q) == q ? -double(tc) / double(p[c]) : 0.0;
            g[c] = float((own + t_unclipped / s) * scale_grad);
          }
      }
    }
    row = warp_sum(row);
    if (lane == 0) work[r] = float(row);
  }
}

// *out (= or +=) scale * sum(work[0, n)) / denom, in a fixed order (one block).
__global__ void reduce_loss_kernel(double* out, const float* work, int64_t n, double denom,
                                   double scale, bool accumulate) {
  __shared__ double part[1024];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += double(work[i]);
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double v = scale * part[0] / denom;
    *out = accumulate ? *out + v : v;
  }
}

__global__ void count_correct_kernel(unsigned long long* count, const float* y, const float* t,
                                     const int64_t* labels, int64_t N, int64_t C,
                                     float threshold) {
  const int lane = threadIdx.x % 32;
  WARP_ROWS(r, N) {
    const float* yr = y + r * C;
    bool ok;
    if (C == 1) {
      const float truth = labels ? float(labels[r]) : t[r];
      ok = (yr[0] > threshold) == (truth > 0.5f);
    } else {
      // first argmax of y (and of t): (value, -index) maximised across the warp
      float best = -FLT_MAX, tbest = -FLT_MAX;
      int64_t arg = C, targ = C;
      for (int64_t c = lane; c < C; c += 32) {
        if (yr[c] > best || arg == C) best = yr[c], arg = c;
        if (t && (t[r * C + c] > tbest || targ == C)) tbest = t[r * C + c], targ = c;
      }
      for (int o = 16; o > 0; o >>= 1) {
        const float ob = __shfl_xor_sync(0xffffffffu, best, o);
        const int64_t oa = __shfl_xor_sync(0xffffffffu, arg, o);
        if (ob > best || (ob == best && oa < arg)) best = ob, arg = oa;
        const float otb = __shfl_xor_sync(0xffffffffu, tbest, o);
        const int64_t ota = __shfl_xor_sync(0xffffffffu, targ, o);
        if (otb > tbest || (otb == tbest && ota < targ)) tbest = otb, targ = ota;
      }
      ok = arg == (labels ? labels[r] : targ);
    }
    if (lane == 0 && ok) atomicAdd(count, 1ull);
  }
}

__global__ void add_kernel(float* out, const float* a, const float* b, int64_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void sgd_kernel(float* w, float* v, const float* g, int64_t n, float lr,
                           float momentum, bool nesterov, float wd) {
  GRID_STRIDE(i, n) {
    float wi = w[i];
    if (wd != 0.f) wi -= lr * wd * wi;
    if (v) {
      const float vi = momentum * v[i] - lr * g[i];
      v[i] = vi;
      wi += nesterov ? momentum * vi - lr * g[i] : vi;
    } else {
      wi -= lr * g[i];
    }
    w[i] = wi;
  }
}

__global__ void adam_kernel(float* w, float* m, float* v, const float* g, int64_t n,
                            float lr_t, float b1, float b2, float eps, float decay) {
  GRID_STRIDE(i, n) {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi, v[i] = vi;
    w[i] = w[i] * decay - lr_t * mi / (sqrtf(vi) + eps);
  }
}

}  // namespace

void activation_forward(float* y, const float* x, int64_t R, int64_t C, Activation act,
                        cudaStream_t stream) {
  if (R * C <= 0) return;
  if (act == Activation::softmax)
    softmax_forward_kernel<<<blocks_for_rows(R), kThreads, 0, stream>>>(y, x, R, C);
  else
    activation_forward_kernel<<<blocks_for(R * C), kThreads, 0, stream>>>(y, x, R * C, act);
}

void activation_backward(float* dx, const float* dy, const float* y, int64_t R, int64_t C,
                         Activation act, cudaStream_t stream) {
  if (R * C <= 0) return;
  if (act == Activation::softmax)
    softmax_backward_kernel<<<blocks_for_rows(R), kThreads, 0, stream>>>(dx, dy, y, R, C);
  else
    activation_backward_kernel<<<blocks_for(R * C), kThreads, 0, stream>>>(dx, dy, y, R * C,
                                                                          act);
}

void add(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, a, b, n);
}

void column_sum(float* out, const float* x, int64_t R, int64_t C, bool accumulate,
                cudaStream_t stream) {
  if (C <= 0) return;
  column_sum_kernel<<<unsigned((C + 31) / 32), dim3(32, 32), 0, stream>>>(out, x, R, C,
                                                                          accumulate);
}

int64_t loss_workspace(int64_t N, int64_t) { return N > 0 ? N : 1; }

void loss_forward_backward(float* grad, double* loss, float* work, const float* y_pred,
                           const float* target, const int64_t* labels, int64_t N, int64_t C,
                           Loss loss_kind, bool from_logits, double scale, bool accumulate,
                           cudaStream_t stream) {
  const bool categorical = loss_kind == Loss::categorical_crossentropy ||
                           loss_kind == Loss::sparse_categorical_crossentropy;
  const double denom = categorical ? double(N) : double(N) * double(C);
  if (N > 0)
    loss_rows_kernel<<<blocks_for_rows(N), kThreads, 0, stream>>>(
        grad, work, y_pred, target, labels, N, C, loss_kind, from_logits, float(1.0 / denom));
  reduce_loss_kernel<<<1, 1024, 0, stream>>>(loss, work, N, denom > 0 ? denom : 1.0, scale,
                                             accumulate);
}

void count_correct(int64_t* count, const float* y_pred, const float* target,
                   const int64_t* labels, int64_t N, int64_t C, float threshold,
                   cudaStream_t stream) {
  if (N <= 0) return;
  count_correct_kernel<<<blocks_for_rows(N), kThreads, 0, stream>>>(
      reinterpret_cast<unsigned long long*>(count), y_pred, target, labels, N, C, threshold);
}

void sgd_update(float* w, float* v, const float* g, int64_t n, float lr, float momentum,
                bool nesterov, float weight_decay, cudaStream_t stream) {
  if (n <= 0) return;
  sgd_kernel<<<blocks_for(n), kThreads, 0, stream>>>(w, momentum != 0.f ? v : nullptr, g, n, lr,
                                                     momentum, nesterov, weight_decay);
}

void adam_update(float* w, float* m, float* v, const float* g, int64_t n, float lr, float beta1,
                 float beta2, float epsilon, int64_t t, float weight_decay,
                 cudaStream_t stream) {
  if (n <= 0) return;
  const double lr_t = double(lr) * std::sqrt(1.0 - std::pow(double(beta2), double(t))) /
                      (1.0 - std::pow(double(beta1), double(t)));
  const float decay = float(1.0 - double(lr) * double(weight_decay));  // as the CPU kernel
  adam_kernel<<<blocks_for(n), kThreads, 0, stream>>>(w, m, v, g, n, float(lr_t), beta1, beta2,
                                                      epsilon, decay);
}

}  // namespace cuda
}  // namespace dlfast
