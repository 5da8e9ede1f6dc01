// Portable SIMD through GCC/Clang vector extensions: the same source becomes SSE2, AVX2 or
// AVX-512 code depending on the flags its file is compiled with (CMakeLists.txt). Everything
// here has internal linkage, so the per-ISA copies never merge at link time.
#pragma once
#include <cstdint>
#include <cstring>

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
template <typename T>
inline vec_t<T> vmax0(vec_t<T> v) {
  return v > 0 ? v : vec_t<T>{};
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
