// Portable SIMD through GCC/Clang vector extensions: the same source becomes SSE2, AVX2 or
// AVX-512 code depending on the flags its file is compiled with (CMakeLists.txt). Everything
// here has internal linkage, so the per-ISA copies never merge at link time.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define DLFAST_VEC_BYTES 64
#elif defined(__AVX2__)
#define DLFAST_VEC_BYTES 32
#else
#define DLFAST_VEC_BYTES 16
#endif

namespace dlfast {
namespace DLFAST_ISA {
namespace {

template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(DLFAST_VEC_BYTES)));
  static constexpr int lanes = DLFAST_VEC_BYTES / sizeof(T);
};
template <typename T>
using vec_t = typename Vec<T>::type;

template <typename T>
inline vec_t<T> vload(const T* p) {
  vec_t<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void vstore(T* p, vec_t<T> v) {
  std::memcpy(p, &v, sizeof v);
}
// x - (+0) is exactly x for every x (-0 and NaN included), so the compiler may drop the
// subtraction and emit a bare broadcast (vbroadcastss from memory on AVX). The obvious
// `vec_t<T>{} + x` is not an identity (+0 + -0 = +0), so GCC kept a scalar add in front
// of every broadcast, two extra uops per FMA pair in the GEMM micro-kernel.
template <typename T>
inline vec_t<T> vsplat(T x) {
  return x - vec_t<T>{};
}
// The first n lanes (0 < n <= lanes) of p, the others zero, and their store: nothing past
// p + n is read or written (AVX-512 masks, AVX2 vmaskmov; the SSE2 build copies n elements).
// The narrow GEMM tile reads and writes rows of 10 classes with them.
#if DLFAST_VEC_BYTES == 64
inline vec_t<float> vload_first(const float* p, int n) {
  return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
}
inline vec_t<double> vload_first(const double* p, int n) {
  return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p);
}
inline void vstore_first(float* p, vec_t<float> v, int n) {
  _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v);
}
inline void vstore_first(double* p, vec_t<double> v, int n) {
  _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), v);
}
#elif DLFAST_VEC_BYTES == 32
inline __m256i first_lanes32(int n) {
  typedef int32_t vi __attribute__((vector_size(32)));
  const vi iota{0, 1, 2, 3, 4, 5, 6, 7};
  return __m256i(iota < n);
}
inline __m256i first_lanes64(int n) {
  typedef int64_t vi __attribute__((vector_size(32)));
  const vi iota{0, 1, 2, 3};
  return __m256i(iota < int64_t(n));
}
inline vec_t<float> vload_first(const float* p, int n) {
  return _mm256_maskload_ps(p, first_lanes32(n));
}
inline vec_t<double> vload_first(const double* p, int n) {
  return _mm256_maskload_pd(p, first_lanes64(n));
}
inline void vstore_first(float* p, vec_t<float> v, int n) {
  _mm256_maskstore_ps(p, first_lanes32(n), v);
}
inline void vstore_first(double* p, vec_t<double> v, int n) {
  _mm256_maskstore_pd(p, first_lanes64(n), v);
}
#else
template <typename T>
inline vec_t<T> vload_first(const T* p, int n) {
  vec_t<T> v{};
  std::memcpy(&v, p, sizeof(T) * n);
  return v;
}
template <typename T>
inline void vstore_first(T* p, vec_t<T> v, int n) {
  std::memcpy(p, &v, sizeof(T) * n);
}
#endif

// ReLU, max(v, 0) with NaN propagated (as NumPy's maximum): `v < 0 ? 0 : v` (NaN < 0 is
// false). GCC 12 emits a compare and an and-not, as it emitted a compare and an and for the
// old `v > 0 ? v : 0`, which maps NaN to 0. Were it a max instruction, the order would
// matter: vmaxps(a, b) returns b when either is NaN, so this is vmaxps(0, v), not (v, 0).
template <typename T>
inline vec_t<T> vmax0(vec_t<T> v) {
  return v < 0 ? vec_t<T>{} : v;
}

// In-register transpose of an L x L block (L = Vec<T>::lanes): r[i][j] -> r[j][i]. Only on
// AVX2 (8 floats / 4 doubles), where the shuffles below are exactly vunpck{l,h}p{s,d},
// vshufps and vperm2f128; elsewhere kHasTranspose is false and callers copy element-wise.
template <typename T>
struct Transpose {
  static constexpr bool kHasTranspose = DLFAST_VEC_BYTES == 32;
};
#if DLFAST_VEC_BYTES == 32
typedef int32_t vi32x8 __attribute__((vector_size(32)));
typedef int64_t vi64x4 __attribute__((vector_size(32)));
inline void transpose_block(vec_t<float> (&r)[8]) {
  using V = vec_t<float>;
  const vi32x8 lo{0, 8, 1, 9, 4, 12, 5, 13}, hi{2, 10, 3, 11, 6, 14, 7, 15};
  const vi32x8 s_lo{0, 1, 8, 9, 4, 5, 12, 13}, s_hi{2, 3, 10, 11, 6, 7, 14, 15};
  const vi32x8 p_lo{0, 1, 2, 3, 8, 9, 10, 11}, p_hi{4, 5, 6, 7, 12, 13, 14, 15};
  V t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = __builtin_shuffle(r[2 * i], r[2 * i + 1], lo);
    t[2 * i + 1] = __builtin_shuffle(r[2 * i], r[2 * i + 1], hi);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3 (h=0) and 4-7 (h=1)
    u[4 * h + 0] = __builtin_shuffle(t[4 * h], t[4 * h + 2], s_lo);
    u[4 * h + 1] = __builtin_shuffle(t[4 * h], t[4 * h + 2], s_hi);
    u[4 * h + 2] = __builtin_shuffle(t[4 * h + 1], t[4 * h + 3], s_lo);
    u[4 * h + 3] = __builtin_shuffle(t[4 * h + 1], t[4 * h + 3], s_hi);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = __builtin_shuffle(u[j], u[4 + j], p_lo);
    r[4 + j] = __builtin_shuffle(u[j], u[4 + j], p_hi);
  }
}
inline void transpose_block(vec_t<double> (&r)[4]) {
  using V = vec_t<double>;
  const vi64x4 lo{0, 4, 2, 6}, hi{1, 5, 3, 7}, p_lo{0, 1, 4, 5}, p_hi{2, 3, 6, 7};
  V t0 = __builtin_shuffle(r[0], r[1], lo), t1 = __builtin_shuffle(r[0], r[1], hi);
  V t2 = __builtin_shuffle(r[2], r[3], lo), t3 = __builtin_shuffle(r[2], r[3], hi);
  r[0] = __builtin_shuffle(t0, t2, p_lo);
  r[1] = __builtin_shuffle(t1, t3, p_lo);
  r[2] = __builtin_shuffle(t0, t2, p_hi);
  r[3] = __builtin_shuffle(t1, t3, p_hi);
}
#else
template <typename T>
inline void transpose_block(vec_t<T> (&)[Vec<T>::lanes]) {}
#endif

// db[j] += sum over rows i of dz[i*K + j] (a bias gradient: conv2d, dense). Each vector of
// columns is summed in registers down all rows (4 vectors side by side) and added to db once:
// `db[j] += row[j]` row after row kept each vector of db in a store-to-load chain, ~10 cycles
// a row (0.2 ms of a 3->32 conv layer's backward on one thread).
template <typename T>
inline void add_column_sums(T* db, const T* dz, int64_t rows, int64_t K) {
  using V = vec_t<T>;
  constexpr int64_t L = Vec<T>::lanes;
  int64_t j = 0;
  for (; j + 4 * L <= K; j += 4 * L) {
    V a0{}, a1{}, a2{}, a3{};
    for (int64_t i = 0; i < rows; ++i) {
      const T* row = dz + i * K + j;
      a0 += vload(row);
      a1 += vload(row + L);
      a2 += vload(row + 2 * L);
      a3 += vload(row + 3 * L);
    }
    vstore(db + j, vload(db + j) + a0);
    vstore(db + j + L, vload(db + j + L) + a1);
    vstore(db + j + 2 * L, vload(db + j + 2 * L) + a2);
    vstore(db + j + 3 * L, vload(db + j + 3 * L) + a3);
  }
  for (; j + L <= K; j += L) {
    V a0{};
    for (int64_t i = 0; i < rows; ++i) a0 += vload(dz + i * K + j);
    vstore(db + j, vload(db + j) + a0);
  }
  for (; j < K; ++j) {
    T sum = T(0);
    for (int64_t i = 0; i < rows; ++i) sum += dz[i * K + j];
    db[j] += sum;
  }
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
