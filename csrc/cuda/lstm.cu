// LSTM over a sequence on the GPU (see kernels.h), the CPU kernel's layouts and formulas
// (csrc/cpu/lstm.cpp): N batch, L steps, D features, U units, G = 4U gates i, f, c~, o.
//   z_t = x_t W + h_{t-1} R + b;  i, f, o = sigmoid(z), c~ = tanh(z);
//   c_t = f c_{t-1} + i c~;       h_t = o tanh(c_t).
// Forward: Z = x W + b for all steps in one GEMM; per step one GEMM adds h_{t-1} R into Z_t
// and one fused kernel activates the gates (kept in Z for backward) and updates c and h.
// Backward: per step, in reverse, one GEMM dh = dz_{t+1} R^T and one fused kernel for the
// gate gradients and the carried dc; then dW, dR, db and dx over all steps at once.
#include "cuda/kernels.h"

namespace dlfast {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoidf(float v) { return 1.f / (1.f + expf(-v)); }

// Step t for every (n, u): z (row stride ldz) becomes the activated gates; c, h (row stride
// lds) the new state; c_prev (row stride ldcp) null for zeros.
__global__ void cell_forward_kernel(float* z, int64_t ldz, float* c, float* h, int64_t lds,
                                    const float* c_prev, int64_t ldcp, int64_t N, int64_t U) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= N * U) return;
  const int64_t n = idx / U, u = idx % U;
  float* zr = z + n * ldz;
  const float i = sigmoidf(zr[u]), f = sigmoidf(zr[U + u]);
  const float g = tanhf(zr[2 * U + u]), o = sigmoidf(zr[3 * U + u]);
  const float cn = c_prev ? f * c_prev[n * ldcp + u] + i * g : i * g;
  zr[u] = i, zr[U + u] = f, zr[2 * U + u] = g, zr[3 * U + u] = o;
  c[n * lds + u] = cn;
  h[n * lds + u] = o * tanhf(cn);
}

// Backward of step t: dh = dh_rec (null at the last step) + dH_t (null: none) + dhL (last
// step only, else null); dc (N x U) carried in place to dc_{t-1}; dz (row stride ldz) written.
__global__ void cell_backward_kernel(float* dz, int64_t ldz, float* dc, const float* dh_rec,
                                     const float* dH, int64_t lddH, const float* dhL,
                                     const float* a, int64_t lda, const float* c, int64_t ldc,
                                     const float* c_prev, int64_t ldcp, int64_t N, int64_t U) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= N * U) return;
  const int64_t n = idx / U, u = idx % U;
  float d_h = dh_rec ? dh_rec[idx] : 0.f;
  if (dH) d_h += dH[n * lddH + u];
  if (dhL) d_h += dhL[idx];
  const float* ar = a + n * lda;
  const float i = ar[u], f = ar[U + u], g = ar[2 * U + u], o = ar[3 * U + u];
  const float tc = tanhf(c[n * ldc + u]);
  const float dcell = dc[idx] + d_h * o * (1.f - tc * tc);
  const float cp = c_prev ? c_prev[n * ldcp + u] : 0.f;
  float* dr = dz + n * ldz;
  dr[u] = dcell * g * i * (1.f - i);
  dr[U + u] = dcell * cp * f * (1.f - f);
  dr[2 * U + u] = dcell * i * (1.f - g * g);
  dr[3 * U + u] = d_h * tc * o * (1.f - o);
  dc[idx] = dcell * f;
}

// Hprev[n, t] = h_{t-1} of row n: h0 (or zeros) at t = 0, else H[n, t-1].
__global__ void shift_states_kernel(float* Hprev, const float* H, const float* h0, int64_t N,
                                    int64_t L, int64_t U) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= N * L * U) return;
  const int64_t u = idx % U, t = (idx / U) % L, n = idx / (U * L);
  Hprev[idx] = t > 0 ? H[idx - U] : (h0 ? h0[n * U + u] : 0.f);
}

unsigned blocks(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

void lstm_forward(float* H, float* C, float* Z, const float* x, const float* W, const float* R,
                  const float* b, const float* h0, const float* c0, const LstmShape& s,
                  cudaStream_t stream) {
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 4 * U;
  if (N <= 0 || L <= 0 || U <= 0) return;
  gemm(Z, x, W, b, N * L, G, D, D, G, G, false, false, false, Activation::linear, stream);
  for (int64_t t = 0; t < L; ++t) {
    const float* h_prev = t > 0 ? H + (t - 1) * U : h0;
    const float* c_prev = t > 0 ? C + (t - 1) * U : c0;
    const int64_t ld_prev = t > 0 ? L * U : U;
    if (h_prev)
      gemm(Z + t * G, h_prev, R, nullptr, N, G, U, ld_prev, G, L * G, false, false, true,
           Activation::linear, stream);
    cell_forward_kernel<<<blocks(N * U), kThreads, 0, stream>>>(
        Z + t * G, L * G, C + t * U, H + t * U, L * U, c_prev, ld_prev, N, U);
  }
}

int64_t lstm_backward_workspace(const LstmShape& s) {
  const int64_t G = 4 * s.U;
  return s.N * s.L * G + 2 * s.N * s.U + s.N * s.L * s.U;
}

void lstm_backward(float* dx, float* dW, float* dR, float* db, float* dh0, float* dc0,
                   const float* dH, const float* dhL, const float* dcL, const float* x,
                   const float* W, const float* R, const float* h0, const float* c0,
                   const float* H, const float* C, const float* Z, const LstmShape& s,
                   bool accumulate, float* work, cudaStream_t stream) {
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 4 * U, NL = N * L;
  if (N <= 0 || L <= 0 || U <= 0) return;
  float* dZ = work;             // [N, L, G]
  float* dc = dZ + NL * G;      // [N, U], carried
  float* dh = dc + N * U;       // [N, U], dz_{t+1} R^T
  float* Hprev = dh + N * U;    // [N, L, U]
  if (dcL)
    cudaMemcpyAsync(dc, dcL, sizeof(float) * N * U, cudaMemcpyDeviceToDevice, stream);
  else
    cudaMemsetAsync(dc, 0, sizeof(float) * N * U, stream);
  for (int64_t t = L - 1; t >= 0; --t) {
    const bool last = t == L - 1;
    if (!last)
      gemm(dh, dZ + (t + 1) * G, R, nullptr, N, U, G, L * G, G, U, false, true, false,
           Activation::linear, stream);
    const float* c_prev = t > 0 ? C + (t - 1) * U : c0;
    const int64_t ld_cp = t > 0 ? L * U : U;
    cell_backward_kernel<<<blocks(N * U), kThreads, 0, stream>>>(
        dZ + t * G, L * G, dc, last ? nullptr : dh, dH ? dH + t * U : nullptr, L * U,
        last ? dhL : nullptr, Z + t * G, L * G, C + t * U, L * U, c_prev, ld_cp, N, U);
  }
  if (dh0)
    gemm(dh0, dZ, R, nullptr, N, U, G, L * G, G, U, false, true, false, Activation::linear,
         stream);
  if (dc0) cudaMemcpyAsync(dc0, dc, sizeof(float) * N * U, cudaMemcpyDeviceToDevice, stream);
  shift_states_kernel<<<blocks(NL * U), kThreads, 0, stream>>>(Hprev, H, h0, N, L, U);
  gemm(dW, x, dZ, nullptr, D, G, NL, D, G, G, true, false, accumulate, Activation::linear, stream);
  gemm(dR, Hprev, dZ, nullptr, U, G, NL, U, G, G, true, false, accumulate, Activation::linear,
       stream);
  if (db) column_sum(db, dZ, NL, G, accumulate, stream);
  if (dx) gemm(dx, dZ, W, nullptr, NL, D, G, G, G, D, false, true, false, Activation::linear, stream);
}

}  // namespace cuda
}  // namespace dlfast
