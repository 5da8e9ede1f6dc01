// Vectorised exp, sigmoid and tanh on vec_t<T> (internal linkage per ISA, like vec.h).
//
// float: Cephes's expf and tanhf polynomials (relative error ~1-2 ulp), so the LSTM's gates
// cost a few FMAs per lane instead of a libm call each (std::exp does not vectorise without
// -ffast-math). double: libm per lane, since a double path is for checking, not for speed.
#pragma once
#include <cmath>
#include <cstdint>

#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

template <typename T>
inline vec_t<T> vabs(vec_t<T> v) {
  return v < 0 ? -v : v;
}

// e^x for float lanes: x = n*ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial,
// 2^n built in the exponent bits. Inputs are clamped to [-87.3, 88.7], where e^x stays a
// normal float, so neither overflow nor denormals ever appear.
inline vec_t<float> vexp(vec_t<float> x) {
  using V = vec_t<float>;
  using I = int32_t __attribute__((vector_size(sizeof(V))));
  x = x > 88.7f ? vsplat(88.7f) : x;
  x = x < -87.3f ? vsplat(-87.3f) : x;
  // n = round(x / ln2), by adding and subtracting 1.5 * 2^23 (round to nearest even).
  const V shift = vsplat(12582912.0f);
  V n = (x * 1.44269504088896341f + shift) - shift;
  V r = x - n * 0.693359375f;  // ln2 in two parts (Cody-Waite), exact product for |n| < 2^9
  r = r - n * -2.12194440e-4f;
  V p = vsplat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  V scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline vec_t<double> vexp(vec_t<double> x) {
  for (int i = 0; i < Vec<double>::lanes; ++i) x[i] = std::exp(x[i]);
  return x;
}

// 1 / (1 + e^-x); e^-x is clamped, so the result is in (0, 1] and never NaN for finite x.
template <typename T>
inline vec_t<T> vsigmoid(vec_t<T> x) {
  return T(1) / (T(1) + vexp(-x));
}

// tanh for float lanes: Cephes's odd polynomial below |x| = 0.625 (where 1 - 2/(e^2x + 1)
// would lose relative precision), else 1 - 2/(e^2|x| + 1) with the sign put back.
inline vec_t<float> vtanh(vec_t<float> x) {
  using V = vec_t<float>;
  const V a = vabs<float>(x);
  const V z = x * x;
  V p = vsplat(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z + -5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z + -3.33332819422e-1f;
  const V small = p * z * x + x;
  V big = 1.0f - 2.0f / (vexp(a + a) + 1.0f);
  big = x < 0 ? -big : big;
  return a < 0.625f ? small : big;
}

inline vec_t<double> vtanh(vec_t<double> x) {
  for (int i = 0; i < Vec<double>::lanes; ++i) x[i] = std::tanh(x[i]);
  return x;
}

// Scalar versions with the same formulas as the lanes (for the ragged ends of a row), so a
// value does not depend on whether it fell in a full vector.
template <typename T>
inline T sexp(T x) {
  vec_t<T> v = vsplat(x);
  return vexp(v)[0];
}
template <typename T>
inline T ssigmoid(T x) {
  vec_t<T> v = vsplat(x);
  return vsigmoid<T>(v)[0];
}
template <typename T>
inline T stanh(T x) {
  vec_t<T> v = vsplat(x);
  return vtanh(v)[0];
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
