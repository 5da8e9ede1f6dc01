// The one tiled SGEMM kernel behind every matrix product on the GPU (dense, conv as implicit
// GEMM, LSTM): C[M,N] = A[M,K] . B[K,N] where A and B are *loaders*, small structs that fetch
// element (outer, k) of their operand from wherever it lives (a row-major matrix, its
// transpose, or an image window gathered on the fly for convolution). Included by gemm.cu and
// conv.cu, each of which instantiates the loaders it needs.
//
// Scheme: a block of 256 threads owns a BM x BN tile of C and walks K in steps of BK, staging
// a BM x BK slice of A and a BK x BN slice of B in shared memory (both stored k-major, so the
// inner loop reads a column of A and a row of B as float4s); each thread keeps a TM x TN block
// of C in registers (register blocking), split in 4-wide chunks half a tile apart so that the
// float4 shared-memory reads of a warp hit distinct banks. Global loads go in groups of four
// consecutive elements along the operand's contiguous axis, as one float4 when the loader says
// the group is aligned and inside the matrix, else as four guarded scalars (zeros outside).
// With gridDim.z > 1 the K range is split over z and partial products are atomically added
// into C (split-K, for tall reductions such as conv weight gradients); the launcher then
// clears C first unless accumulating, and never asks for bias or activation.
#pragma once
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

#include "common/dispatch.h"
#include "cuda/kernels.h"

namespace dlfast {
namespace cuda {

constexpr int kGemmThreads = 256;

__device__ __forceinline__ float apply_activation(float v, Activation act) {
  switch (act) {
    case Activation::relu: return v < 0.f ? 0.f : v;  // NaN stays NaN
    case Activation::sigmoid: return 1.f / (1.f + expf(-v));
    case Activation::tanh: return tanhf(v);
    default: return v;
  }
}

// Row-major operand: element (o, k) at p[o * ld + k]; contiguous along k. (A as stored, or
// B when trans_b: B stored N x K.)
struct RowLoader {
  const float* p;
  int64_t ld;
  bool vec;  // ld % 4 == 0 and p 16-byte aligned: groups of 4 along k may load as a float4
  static constexpr bool kAlongK = true;
  __device__ float at(int64_t o, int64_t k) const { return p[o * ld + k]; }
  __device__ bool vec_ok(int64_t, int64_t) const { return vec; }
  __device__ float4 at4(int64_t o, int64_t k) const {
    return *reinterpret_cast<const float4*>(p + o * ld + k);
  }
};

// Column-major operand: element (o, k) at p[k * ld + o]; contiguous along o. (A when trans_a:
// A stored K x M; B as stored, K x N.)
struct ColLoader {
  const float* p;
  int64_t ld;
  bool vec;
  static constexpr bool kAlongK = false;
  __device__ float at(int64_t o, int64_t k) const { return p[k * ld + o]; }
  __device__ bool vec_ok(int64_t, int64_t) const { return vec; }
  __device__ float4 at4(int64_t o, int64_t k) const {
    return *reinterpret_cast<const float4*>(p + k * ld + o);
  }
};

struct Epilogue {
  float* C;
  int64_t ldc;
  const float* bias;  // [N] or null
  Activation act;
  bool accumulate;
};

// Stage the tile rows [o0, o0 + BO) x [k0, k0 + BK) of a loader into sm[k][o] (row stride
// BO + 4), zeros outside [0, O) x [0, K).
template <int BO, int BK, class Loader>
__device__ __forceinline__ void load_tile(float (*sm)[BO + 4], const Loader& ld, int64_t o0,
                                          int64_t k0, int64_t O, int64_t K, int tid) {
  constexpr int kGroups = BO * BK / 4;
  for (int g = tid; g < kGroups; g += kGemmThreads) {
    int oi, ki;  // first element of the group inside the tile
    if (Loader::kAlongK) {
      oi = g / (BK / 4);
      ki = (g % (BK / 4)) * 4;
    } else {
      ki = g / (BO / 4);
      oi = (g % (BO / 4)) * 4;
    }
    const int64_t o = o0 + oi, k = k0 + ki;
    float v[4];
    const bool inside = Loader::kAlongK ? (o < O && k + 3 < K) : (k < K && o + 3 < O);
    if (inside && ld.vec_ok(o, k)) {
      const float4 f = ld.at4(o, k);
      v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t oj = Loader::kAlongK ? o : o + j, kj = Loader::kAlongK ? k + j : k;
        v[j] = (oj < O && kj < K) ? ld.at(oj, kj) : 0.f;
      }
    }
    if (Loader::kAlongK) {
#pragma unroll
      for (int j = 0; j < 4; ++j) sm[ki + j][oi] = v[j];
    } else {
      *reinterpret_cast<float4*>(&sm[ki][oi]) = make_float4(v[0], v[1], v[2], v[3]);
    }
  }
}

template <int BM, int BN, int BK, int TM, int TN, class LA, class LB>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_tile_kernel(Epilogue ep, LA a, LB b, int64_t M, int64_t N, int64_t K, int64_t k_chunk) {
  static_assert((BM / TM) * (BN / TN) == kGemmThreads, "one TM x TN block per thread");
  static_assert(TM % 4 == 0 && TN % 4 == 0, "register blocks are made of float4 chunks");
  __shared__ __align__(16) float As[BK][BM + 4];
  __shared__ __align__(16) float Bs[BK][BN + 4];
  constexpr int CM = TM / 4, CN = TN / 4;            // 4-wide chunks per thread
  constexpr int SM_ = BM / CM, SN = BN / CN;          // distance between a thread's chunks
  const int tid = threadIdx.x;
  const int tx = tid % (BN / TN), ty = tid / (BN / TN);
  const int64_t m0 = int64_t(blockIdx.x) * BM, n0 = int64_t(blockIdx.y) * BN;
  const int64_t k_begin = int64_t(blockIdx.z) * k_chunk;
  const int64_t k_end = k_begin + k_chunk < K ? k_begin + k_chunk : K;

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
    load_tile<BM, BK>(As, a, m0, k0, M, k_end, tid);
    load_tile<BN, BK>(Bs, b, n0, k0, N, k_end, tid);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float ra[TM], rb[TN];
#pragma unroll
      for (int c = 0; c < CM; ++c) {
        const float4 f = *reinterpret_cast<const float4*>(&As[kk][c * SM_ + ty * 4]);
        ra[4 * c] = f.x, ra[4 * c + 1] = f.y, ra[4 * c + 2] = f.z, ra[4 * c + 3] = f.w;
      }
#pragma unroll
      for (int c = 0; c < CN; ++c) {
        const float4 f = *reinterpret_cast<const float4*>(&Bs[kk][c * SN + tx * 4]);
        rb[4 * c] = f.x, rb[4 * c + 1] = f.y, rb[4 * c + 2] = f.z, rb[4 * c + 3] = f.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
    __syncthreads();
  }

  const bool split = gridDim.z > 1;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t m = m0 + (i / 4) * SM_ + ty * 4 + i % 4;
    if (m >= M) continue;
    float* crow = ep.C + m * ep.ldc;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t n = n0 + (j / 4) * SN + tx * 4 + j % 4;
      if (n >= N) continue;
      if (split) {
        atomicAdd(crow + n, acc[i][j]);
        continue;
      }
      float v = acc[i][j];
      if (ep.bias) v += ep.bias[n];
      if (ep.accumulate) v += crow[n];
      crow[n] = apply_activation(v, ep.act);
    }
  }
}

// TF32 tensor-core variant, used instead of the kernel above only when TF32 is allowed
// (set_allow_tf32, off by default, as cuBLAS and PyTorch default to full float32 for matmul)
// and the device has TF32 tensor cores (compute capability >= 8.0). Same tiles, loaders,
// shared-memory layout, split-K and epilogue; the inner product runs on WMMA 16x16x8
// fragments whose inputs are rounded to TF32 (10-bit mantissa, float32 range) and whose sums
// stay float32. The block's 8 warps tile its C as (BM/WM) x (BN/WN); each warp keeps
// (WM/16) x (WN/16) accumulator fragments. As[k][m] is A column-major and Bs[k][n] is B
// row-major, both with a leading dimension that is a multiple of 4 floats, and every
// fragment pointer is 32-byte aligned (k steps of 8 rows, columns in steps of 16). The
// epilogue goes through one 16x16 staging tile per warp in shared memory.
template <int BM, int BN, int BK, int WM, int WN, class LA, class LB>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_tf32_kernel(Epilogue ep, LA a, LB b, int64_t M, int64_t N, int64_t K, int64_t k_chunk) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  constexpr int kWarps = kGemmThreads / 32, FM = WM / 16, FN = WN / 16;
  static_assert((BM / WM) * (BN / WN) == kWarps, "one WM x WN block per warp");
  static_assert(WM % 16 == 0 && WN % 16 == 0 && BK % 8 == 0, "whole 16x16x8 fragments");
  __shared__ __align__(32) float As[BK][BM + 4];
  __shared__ __align__(32) float Bs[BK][BN + 4];
  __shared__ __align__(32) float Cs[kWarps][16 * 16];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp / (BN / WN) * WM, wn = warp % (BN / WN) * WN;  // the warp's corner
  const int64_t m0 = int64_t(blockIdx.x) * BM, n0 = int64_t(blockIdx.y) * BN;
  const int64_t k_begin = int64_t(blockIdx.z) * k_chunk;
  const int64_t k_end = k_begin + k_chunk < K ? k_begin + k_chunk : K;

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
    load_tile<BM, BK>(As, a, m0, k0, M, k_end, tid);
    load_tile<BN, BK>(Bs, b, n0, k0, N, k_end, tid);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i) {
        wmma::load_matrix_sync(fa[i], &As[kk][wm + 16 * i], BM + 4);
#pragma unroll
        for (int e = 0; e < fa[i].num_elements; ++e) fa[i].x[e] = wmma::__float_to_tf32(fa[i].x[e]);
      }
#pragma unroll
      for (int j = 0; j < FN; ++j) {
        wmma::load_matrix_sync(fb[j], &Bs[kk][wn + 16 * j], BN + 4);
#pragma unroll
        for (int e = 0; e < fb[j].num_elements; ++e) fb[j].x[e] = wmma::__float_to_tf32(fb[j].x[e]);
      }
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }

  const bool split = gridDim.z > 1;
  float* stage = Cs[warp];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 16 * 16; e += 32) {
        const int64_t m = m0 + wm + 16 * i + e / 16, n = n0 + wn + 16 * j + e % 16;
        if (m >= M || n >= N) continue;
        float* c = ep.C + m * ep.ldc + n;
        if (split) {
          atomicAdd(c, stage[e]);
          continue;
        }
        float v = stage[e];
        if (ep.bias) v += ep.bias[n];
        if (ep.accumulate) v += *c;
        *c = apply_activation(v, ep.act);
      }
      __syncwarp();
    }
#else
  __trap();  // never launched: launch_gemm checks the device's compute capability first
#endif
}

int gemm_sm_count();

// C = A . B through the loaders: picks the tile size (128 x 128 for large products, 64 x 64
// otherwise) and split-K when few tiles would leave the GPU idle on a long reduction.
template <class LA, class LB>
void launch_gemm(const Epilogue& ep, const LA& a, const LB& b, int64_t M, int64_t N, int64_t K,
                 cudaStream_t stream) {
  if (M <= 0 || N <= 0) return;
  const bool big = M >= 1024 && N >= 128;
  const int64_t BM = big ? 128 : 64, BN = big ? 128 : 64;
  const int64_t tiles = ((M + BM - 1) / BM) * ((N + BN - 1) / BN);
  const int64_t want = 2 * int64_t(gemm_sm_count());
  int64_t splits = 1;
  if (tiles < want && ep.bias == nullptr && ep.act == Activation::linear && K >= 512) {
    splits = (want + tiles - 1) / tiles;
    const int64_t max_splits = K / 256;  // each split keeps a reduction of >= 256
    if (splits > max_splits) splits = max_splits;
    if (splits > 64) splits = 64;
  }
  int64_t k_chunk = K;
  if (splits > 1) {
    k_chunk = ((K + splits - 1) / splits + 15) / 16 * 16;
    splits = (K + k_chunk - 1) / k_chunk;
    if (!ep.accumulate)
      cudaMemset2DAsync(ep.C, size_t(ep.ldc) * sizeof(float), 0, size_t(N) * sizeof(float),
                        size_t(M), stream);
  }
  if (K <= 0) {  // an empty reduction: C = act(bias) or C unchanged
    k_chunk = 1;
    splits = 1;
  }
  const dim3 grid(unsigned((M + BM - 1) / BM), unsigned((N + BN - 1) / BN), unsigned(splits));
  if (gemm_use_tf32()) {
    if (big)
      gemm_tf32_kernel<128, 128, 16, 64, 32><<<grid, kGemmThreads, 0, stream>>>(ep, a, b, M, N,
                                                                               K, k_chunk);
    else
      gemm_tf32_kernel<64, 64, 16, 32, 16><<<grid, kGemmThreads, 0, stream>>>(ep, a, b, M, N, K,
                                                                             k_chunk);
  } else if (big)
    gemm_tile_kernel<128, 128, 8, 8, 8><<<grid, kGemmThreads, 0, stream>>>(ep, a, b, M, N, K,
                                                                          k_chunk);
  else
    gemm_tile_kernel<64, 64, 16, 4, 4><<<grid, kGemmThreads, 0, stream>>>(ep, a, b, M, N, K,
                                                                         k_chunk);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace cuda
}  // namespace dlfast
