// The GEMM's building blocks shared with kernels that drive them directly (the LSTM's time
// loop): register blocking, the strided micro-kernel and the packers. Internal linkage per ISA,
// like vec.h; gemm.cpp has the drivers and the packed micro-kernel.
#pragma once
#include <cstdint>
#include <type_traits>

#include "cpu/tile.h"
#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Register tile MR x (NV vectors) and cache blocks per ISA and dtype. MR*NV accumulators +
// NV loads of B + one broadcast of A must fit the register file (16 ymm/xmm, 32 zmm).
// KC: a kc x NR panel of B stays in L1 (32 KiB); MC: an mc x kc block of A stays in L2
// (512 KiB per core here); NC: a kc x nc panel of B stays in L3.
// AVX2 float: 6 x 16 tile (12 ymm accumulators), MC=144, KC=384 (B micro-panel 24 KiB, A block
// 216 KiB). KC was 256 (BLIS's Haswell value); 384 measured better at the Dense shapes on the
// 2-core Zen3, 2 threads, same process, medians: x(64x784)@W(784x256) 194 -> 169 us,
// 64x256@256x128 37 -> 29 us, 2048^3 unchanged (94 ms); 320 and 448-512 were no better.
// AVX-512: 14 x 32 (28 zmm accumulators + 2 B + 1 broadcast = 31 of 32 registers), KC=256 so
// its 32 KiB B micro-panel still fits L1; untested here (no AVX-512 on this machine).
template <typename T>
struct Blocking {
  static constexpr int MR = DLFAST_VEC_BYTES == 64 ? 14 : 6;
  static constexpr int NV = 2;
  static constexpr int NR = NV * Vec<T>::lanes;
  static constexpr int64_t KC = DLFAST_VEC_BYTES == 64 ? 256 : 384;
  static constexpr int64_t MC = MR * (sizeof(T) == 4 ? 24 : 16);
  static constexpr int64_t NC = 3072;
};

// acc += a . b over kc steps: row i of A at rows[i][k * a_cs], B at b + k*ldb + j (NR wide).
// The register tile's inner loop; the drivers below and conv2d's weight gradient (A = input
// taps read in place, accumulated over several runs of pixels before one store) call it.
template <typename T, int MR>
inline void micro_accumulate(vec_t<T> (&acc)[MR][Blocking<T>::NV], int64_t kc,
                             const T* const* rows, int64_t a_cs, const T* b, int64_t ldb) {
  using V = vec_t<T>;
  constexpr int NV = Blocking<T>::NV, L = Vec<T>::lanes;
  const T* row[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) row[i] = rows[i];
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = vload(b + k * ldb + j * L);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V ai = vsplat(row[i][k * a_cs]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
}

// The same tile with A read in place (a(i,k) at a + i*a_rs + k*a_cs; rows past mr re-read
// row 0, computed but never stored) and B at b + k*ldb + j, NR wide: the small-product path.
// MR (a template argument) may be made smaller than the register tile's for short edges: a
// tile of few rows then costs in proportion (the LSTM's batch slices end in such tiles).
template <typename T, int MR = Blocking<T>::MR>
inline void micro_strided(int64_t kc, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                          int64_t ldb, T* c, int64_t ldc, int64_t mr, int64_t nr,
                          bool accumulate, const T* bias, bool relu) {
  constexpr int NV = Blocking<T>::NV, NR = Blocking<T>::NR;
  // Ask for the C tile now (as micro_packed does), so that its lines arrive while the k
  // loop runs: the LSTM adds each step's recurrent product into Z rows computed long before.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const T* ci = c + (i < mr ? i : 0) * ldc;
    __builtin_prefetch(ci, 1);
    __builtin_prefetch(ci + NR - 1, 1);
  }
  vec_t<T> acc[MR][NV];
  zero_tile<T>(acc);
  const T* row[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) row[i] = a + (i < mr ? i : 0) * a_rs;
  micro_accumulate<T, MR>(acc, kc, row, a_cs, b, ldb);
  store_tile<T, MR, NV>(acc, c, ldc, mr, nr, accumulate, bias, relu);
}

// Calls f(std::integral_constant<int, R>{}) with the register-tile height R for a tile of
// mr <= MR rows: the smallest of 2, MR/2, 4 (when MR/2 < 4) and MR that holds the rows, so
// that a tile of few rows (the last rows of a batch of 64 = 10 x 6 + 4, of the LSTM's batch
// slices, the last kernel taps of conv2d's in-place weight gradient) costs in proportion.
template <typename T, class F>
inline void with_tile_rows(int64_t mr, F&& f) {
  constexpr int MR = Blocking<T>::MR;
  if (mr <= 2 && MR > 2)
    f(std::integral_constant<int, 2>{});
  else if (mr <= MR / 2 && MR / 2 > 2)
    f(std::integral_constant<int, MR / 2>{});
  else if (mr <= 4 && MR > 4)
    f(std::integral_constant<int, 4>{});
  else
    f(std::integral_constant<int, MR>{});
}

// micro_strided for a tile of mr <= MR rows, on the smallest register tile that holds them.
template <typename T>
inline void micro_rows(int64_t kc, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                       int64_t ldb, T* c, int64_t ldc, int64_t mr, int64_t nr, bool accumulate) {
  with_tile_rows<T>(mr, [&](auto rows) {
    micro_strided<T, decltype(rows)::value>(kc, a, a_rs, a_cs, b, ldb, c, ldc, mr, nr,
                                            accumulate, nullptr, false);
  });
}

// Packing. Both packed layouts are "R-wide panels, k-major": element (r, k) of a panel at
// k*R + r, R = MR for A and NR for B, rows past the edge zero. op(X) reaches the packer in one
// of two shapes, and each gets the loop order that reads memory contiguously:
//  - pack_strips: the R panel rows are contiguous in k (A as stored, B transposed). Each row
//    is read in order and scattered into its lane of the panel (stride R). Copying 16-k
//    chunks of all R rows in turn was slower (x(64x256) @ W(784x256)^T: 52 vs 73 GFLOP/s).
//  - pack_slices: panel row r of op(X) at k is x[k*ld + r] (A transposed, B as stored). Walk
//    k outermost and copy each contiguous source row into all panels at once, so the source
//    is read in order; a per-panel walk would stride ld through memory (one page per k when
//    ld = 1024 floats: measured 6-9 cycles per element at 1024..2048, now ~1).

// dst panels <- rows x[r*ld + k] for r < n, k < kc; `n` rows, padded to R-row panels.
// On AVX2 full panels go through L x L register transposes (L = lanes): L rows x L k's are
// loaded as L vectors, transposed, and each result vector holds L rows of one k. R = 16 (B^T
// panels): two blocks, two aligned-size stores per k. R = 6 (A panels): the 6 rows plus 2 zero
// vectors, and each k's 8-wide store overlaps the next k's slot (rewritten by the next store);
// the last L k's of a panel go through the scalar loop so nothing is written past it.
template <int R, typename T>
void pack_strips(T* __restrict dst, const T* __restrict x, int64_t ld, int64_t n, int64_t kc) {
  constexpr int L = Vec<T>::lanes;
  using V = vec_t<T>;
  for (int64_t r0 = 0; r0 < n; r0 += R, dst += R * kc) {
    const int64_t rows = min64(R, n - r0);
    const T* src = x + r0 * ld;
    int64_t k0 = 0;
    if constexpr (Transpose<T>::kHasTranspose && (R % L == 0 || R < L)) {
      if (rows == R) {
        constexpr int G = R % L == 0 ? R / L : 1;  // blocks of L rows
        const int64_t kend = R % L == 0 ? kc / L * L : (kc - 1) / L * L;
        for (; k0 < kend; k0 += L) {
#pragma GCC unroll 4
          for (int gi = 0; gi < G; ++gi) {
            V v[L];
#pragma GCC unroll 8
            for (int r = 0; r < L; ++r)
              v[r] = gi * L + r < R ? vload(src + (gi * L + r) * ld + k0) : V{};
            transpose_block(v);
#pragma GCC unroll 8
            for (int j = 0; j < L; ++j) vstore(dst + (k0 + j) * R + gi * L, v[j]);
          }
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      if (r < rows) {
        const T* row = src + r * ld;
        for (int64_t k = k0; k < kc; ++k) dst[k * R + r] = row[k];
      } else {
        for (int64_t k = k0; k < kc; ++k) dst[k * R + r] = T(0);
      }
    }
  }
}

// dst panels <- x[k*ld + r] for r < n, k < kc; padded to R-wide panels.
template <int R, typename T>
void pack_slices(T* __restrict dst, const T* __restrict x, int64_t ld, int64_t n, int64_t kc) {
  const int64_t full = n / R * R;
  for (int64_t k = 0; k < kc; ++k) {
    const T* src = x + k * ld;
    T* d = dst + k * R;
    int64_t r0 = 0;
    if (R % Vec<T>::lanes == 0) {  // B panels: whole vectors (GCC will not vectorize this
      for (; r0 < full; r0 += R, d += R * kc)   // itself, dst and src might alias)
#pragma GCC unroll 8
        for (int r = 0; r < R; r += Vec<T>::lanes) vstore(d + r, vload(src + r0 + r));
    } else {
      for (; r0 < full; r0 += R, d += R * kc)
#pragma GCC unroll 64
        for (int r = 0; r < R; ++r) d[r] = src[r0 + r];
    }
    if (r0 < n)
      for (int r = 0; r < R; ++r) d[r] = r0 + r < n ? src[r0 + r] : T(0);
  }
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
