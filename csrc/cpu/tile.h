// The store of a register tile, shared by the GEMM micro-kernels and the direct convolution
// (internal linkage per ISA, like vec.h).
#pragma once
#include <cstdint>

#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// acc = 0: the start of every register tile.
template <typename T, int MR, int NV>
inline void zero_tile(vec_t<T> (&acc)[MR][NV]) {
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = vec_t<T>{};
}

// c (= or +=) acc, + bias, ReLU: the epilogue of every MR x (NV vectors) tile. Full tiles go
// straight from registers to C; edge tiles (mr < MR or nr < NR) through a buffer.
template <typename T, int MR, int NV>
inline void store_tile(const vec_t<T> (&acc)[MR][NV], T* c, int64_t ldc, int64_t mr, int64_t nr,
                       bool accumulate, const T* bias, bool relu) {
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes, NR = NV * L;
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        T* p = c + i * ldc + j * L;
        V v = acc[i][j];
        if (accumulate) v += vload(p);
        if (bias) v += vload(bias + j * L);
        if (relu) v = vmax0<T>(v);
        vstore(p, v);
      }
    return;
  }
  alignas(64) T buf[MR * NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) vstore(buf + i * NR + j * L, acc[i][j]);
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      T v = buf[i * NR + j];
      if (accumulate) v += c[i * ldc + j];
      if (bias) v += bias[j];
      if (relu) v = v < 0 ? T(0) : v;  // NaN stays NaN (vmax0)
      c[i * ldc + j] = v;
    }
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
