// GEMM and dense layer on the GPU (see kernels.h): the plain-matrix loaders over the shared
// tiled kernel of gemm_tile.cuh, with bias and activation fused into its store.
#include "cuda/gemm_tile.cuh"
#include "cuda/kernels.h"

namespace dlfast {
namespace cuda {

int gemm_sm_count() {
  static const int count = [] {
    int device = 0, sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
      return 80;
    return sms;
  }();
  return count;
}

namespace {
bool g_allow_tf32 = false;  // host-side switch, read at each launch
}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

bool gemm_use_tf32() {
  static const bool has_tensor_cores = [] {
    int device = 0, major = 0;
    return cudaGetDevice(&device) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) ==
               cudaSuccess &&
           major >= 8;
  }();
  return g_allow_tf32 && has_tensor_cores;
}

void gemm(float* C, const float* A, const float* B, const float* bias, int64_t M, int64_t N,
          int64_t K, int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b,
          bool accumulate, Activation act, cudaStream_t stream) {
  const Epilogue ep{C, ldc, bias, act, accumulate};
  const bool va = lda % 4 == 0 && aligned16(A), vb = ldb % 4 == 0 && aligned16(B);
  // op(A)(m, k): A[m, k] (RowLoader) or A[k, m] (ColLoader); op(B)(k, n) as element (n, k)
  // of the B loader: B[k, n] (ColLoader) or B[n, k] (RowLoader).
  if (!trans_a && !trans_b)
    launch_gemm(ep, RowLoader{A, lda, va}, ColLoader{B, ldb, vb}, M, N, K, stream);
  else if (!trans_a && trans_b)
    launch_gemm(ep, RowLoader{A, lda, va}, RowLoader{B, ldb, vb}, M, N, K, stream);
  else if (trans_a && !trans_b)
    launch_gemm(ep, ColLoader{A, lda, va}, ColLoader{B, ldb, vb}, M, N, K, stream);
  else
    launch_gemm(ep, ColLoader{A, lda, va}, RowLoader{B, ldb, vb}, M, N, K, stream);
}

void dense_forward(float* y, const float* x, const float* W, const float* b, int64_t N,
                   int64_t D, int64_t U, Activation act, cudaStream_t stream) {
  const bool softmax = act == Activation::softmax;
  gemm(y, x, W, b, N, U, D, D, U, U, false, false, false, softmax ? Activation::linear : act,
       stream);
  if (softmax) activation_forward(y, y, N, U, act, stream);
}

void dense_backward(float* dx, float* dW, float* db, float* dz, const float* dy, const float* x,
                    const float* W, const float* y, int64_t N, int64_t D, int64_t U,
                    Activation act, bool accumulate, cudaStream_t stream) {
  const float* g = dy;
  if (act != Activation::linear) {
    activation_backward(dz, dy, y, N, U, act, stream);
    g = dz;
  }
  gemm(dW, x, g, nullptr, D, U, N, D, U, U, true, false, accumulate, Activation::linear, stream);
  if (db) column_sum(db, g, N, U, accumulate, stream);
  if (dx) gemm(dx, g, W, nullptr, N, D, U, U, U, D, false, true, false, Activation::linear, stream);
}

}  // namespace cuda
}  // namespace dlfast
