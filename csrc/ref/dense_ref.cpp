// Reference activations and Dense layer (the definitions csrc/cpu/activation.cpp and
// csrc/cpu/dense.cpp are tested against). Legend: x, y, dy, dx [R,C] row-major (softmax is over
// each row); dense x[N,D], W[D,U], b[U], y[N,U]. Element-wise math runs in double.
// NaN propagates: relu(NaN) = NaN (x < 0 fails), leaky_relu(NaN) = NaN.
#include <cmath>
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

// y = act(x) element-wise, softmax by rows: y[r,c] = exp(x[r,c] - m) / sum_c' exp(x[r,c'] - m)
// with m = max_c x[r,c]. Each y element is written after its x element is read (y may be x).
template <typename T>
void activation_forward(T* y, const T* x, int64_t R, int64_t C, Activation act, double slope) {
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    if (act == Activation::softmax) {
      double m = C > 0 ? double(xr[0]) : 0.0;
      for (int64_t c = 1; c < C; ++c) m = double(xr[c]) > m ? double(xr[c]) : m;
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(double(xr[c]) - m);
      for (int64_t c = 0; c < C; ++c) yr[c] = T(std::exp(double(xr[c]) - m) / s);
      continue;
    }
    for (int64_t c = 0; c < C; ++c) {
      const double v = double(xr[c]);
      double out = v;  // linear
      if (act == Activation::relu) out = v < 0 ? 0.0 : v;
      if (act == Activation::sigmoid) out = 1.0 / (1.0 + std::exp(-v));
      if (act == Activation::tanh) out = std::tanh(v);
      if (act == Activation::leaky_relu) out = v > 0 ? v : slope * v;
      yr[c] = T(out);
    }
  }
}

// dx = dy * act'(z) from the forward output y:
//   relu: y <= 0 ? 0 : dy (a select: an infinite dy where y <= 0 gives 0); sigmoid: dy y (1 - y);
//   tanh: dy (1 - y^2); leaky_relu: dy (y > 0 ? 1 : slope); softmax (row): y (dy - <dy, y>).
// y is not read for linear (it may be null then).
template <typename T>
void activation_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C, Activation act,
                         double slope) {
  for (int64_t r = 0; r < R; ++r) {
    const T* dyr = dy + r * C;
    T* dxr = dx + r * C;
    if (act == Activation::linear) {
      for (int64_t c = 0; c < C; ++c) dxr[c] = dyr[c];
      continue;
    }
    const T* yr = y + r * C;
    if (act == Activation::softmax) {
      double dot = 0;
      for (int64_t c = 0; c < C; ++c) dot += double(dyr[c]) * double(yr[c]);
      for (int64_t c = 0; c < C; ++c) dxr[c] = T(double(yr[c]) * (double(dyr[c]) - dot));
      continue;
    }
    for (int64_t c = 0; c < C; ++c) {
      const double d = double(dyr[c]), v = double(yr[c]);
      double out = 0;
      if (act == Activation::relu) out = v <= 0 ? 0.0 : d;
      if (act == Activation::sigmoid) out = d * v * (1.0 - v);
      if (act == Activation::tanh) out = d * (1.0 - v * v);
      if (act == Activation::leaky_relu) out = d * (v > 0 ? 1.0 : slope);
      dxr[c] = T(out);
    }
  }
}

// y[n,u] = act(z[n,u]),  z[n,u] = b[u] + sum_d x[n,d] W[d,u]   (b null: no bias)
template <typename T>
void dense_forward(T* y, const T* x, const T* W, const T* b, int64_t N, int64_t D, int64_t U,
                   Activation act) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t u = 0; u < U; ++u) {
      double z = b ? double(b[u]) : 0.0;
      for (int64_t d = 0; d < D; ++d) z += double(x[n * D + d]) * double(W[d * U + u]);
      y[n * U + u] = T(z);
    }
  activation_forward(y, y, N, U, act, 0.0);
}

// dz = dy * act'(y)
// dW[d,u] (+= or =) sum_n x[n,d] dz[n,u];  db[u] (+= or =) sum_n dz[n,u]   (db may be null)
// dx[n,d] (=) sum_u dz[n,u] W[d,u]                                         (dx may be null)
template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, const T* y,
                    int64_t N, int64_t D, int64_t U, Activation act, bool accumulate) {
  std::vector<T> dz(size_t(N * U));
  activation_backward(dz.data(), dy, y, N, U, act, 0.0);
  for (int64_t d = 0; d < D; ++d)
    for (int64_t u = 0; u < U; ++u) {
      double s = accumulate ? double(dW[d * U + u]) : 0.0;
      for (int64_t n = 0; n < N; ++n) s += double(x[n * D + d]) * double(dz[n * U + u]);
      dW[d * U + u] = T(s);
    }
  if (db)
    for (int64_t u = 0; u < U; ++u) {
      double s = accumulate ? double(db[u]) : 0.0;
      for (int64_t n = 0; n < N; ++n) s += double(dz[n * U + u]);
      db[u] = T(s);
    }
  if (dx)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t d = 0; d < D; ++d) {
        double s = 0;
        for (int64_t u = 0; u < U; ++u) s += double(dz[n * U + u]) * double(W[d * U + u]);
        dx[n * D + d] = T(s);
      }
}

#define DLFAST_REF_DENSE(T)                                                                   \
  template void activation_forward<T>(T*, const T*, int64_t, int64_t, Activation, double);    \
  template void activation_backward<T>(T*, const T*, const T*, int64_t, int64_t, Activation,  \
                                       double);                                               \
  template void dense_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                 Activation);                                                 \
  template void dense_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,         \
                                  int64_t, int64_t, int64_t, Activation, bool);
DLFAST_REF_DENSE(float)
DLFAST_REF_DENSE(double)
#undef DLFAST_REF_DENSE

}  // namespace ref
}  // namespace dlfast
