// Element-wise activations, forward and backward, compiled once per ISA (see kernels.h).
// Shapes: x, y, dy, dx are [R, C] row-major; softmax normalises each row.
#include <omp.h>

#include <cmath>

#include "common/threading.h"
#include "cpu/kernels.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Threads for an element-wise pass over n values (about `cost` flops each).
inline int elementwise_threads(int64_t n, double cost) { return threads_for_work(n * cost); }

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// y[r,:] = softmax(x[r,:]), stable: exp(x - max(x)) / sum.
template <typename T>
void softmax_rows(T* y, const T* x, int64_t R, int64_t C) {
  const int nt = elementwise_threads(R * C, 20);
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    T m = xr[0];
    for (int64_t c = 1; c < C; ++c) m = xr[c] > m ? xr[c] : m;
    T s = 0;
    for (int64_t c = 0; c < C; ++c) {
      yr[c] = std::exp(xr[c] - m);
      s += yr[c];
    }
    const T inv = T(1) / s;
    for (int64_t c = 0; c < C; ++c) yr[c] *= inv;
  }
}

}  // namespace

template <typename T>
void activation_forward(T* y, const T* x, int64_t R, int64_t C, Activation act) {
  const int64_t n = R * C;
  if (n <= 0) return;
  if (act == Activation::softmax) return softmax_rows(y, x, R, C);
  const int nt = elementwise_threads(n, act == Activation::relu || act == Activation::linear ? 1 : 20);
  switch (act) {
    case Activation::linear:
      if (y != x) {
#pragma omp parallel for num_threads(nt) if (nt > 1)
        for (int64_t i = 0; i < n; ++i) y[i] = x[i];
      }
      break;
    case Activation::relu:
#pragma omp parallel for num_threads(nt) if (nt > 1)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : T(0);
      break;
    case Activation::sigmoid:
#pragma omp parallel for num_threads(nt) if (nt > 1)
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
      break;
    case Activation::tanh:
#pragma omp parallel for num_threads(nt) if (nt > 1)
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::softmax:
      break;
  }
}

template <typename T>
void activation_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C, Activation act) {
  const int64_t n = R * C;
  if (n <= 0) return;
  const int nt = elementwise_threads(n, 2);
  switch (act) {
    case Activation::linear:
      if (dx != dy) {
#pragma omp parallel for num_threads(nt) if (nt > 1)
        for (int64_t i = 0; i < n; ++i) dx[i] = dy[i];
      }
      break;
    case Activation::relu:
#pragma omp parallel for num_threads(nt) if (nt > 1)
      for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0 ? dy[i] : T(0);
      break;
    case Activation::sigmoid:
#pragma omp parallel for num_threads(nt) if (nt > 1)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
      break;
    case Activation::tanh:
#pragma omp parallel for num_threads(nt) if (nt > 1)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
      break;
    case Activation::softmax:  // dx = y * (dy - <dy, y>) per row
#pragma omp parallel for num_threads(nt) if (nt > 1)
      for (int64_t r = 0; r < R; ++r) {
        const T* yr = y + r * C;
        const T* dyr = dy + r * C;
        T* dxr = dx + r * C;
        T s = 0;
        for (int64_t c = 0; c < C; ++c) s += dyr[c] * yr[c];
        for (int64_t c = 0; c < C; ++c) dxr[c] = yr[c] * (dyr[c] - s);
      }
      break;
  }
}

template void activation_forward<float>(float*, const float*, int64_t, int64_t, Activation);
template void activation_forward<double>(double*, const double*, int64_t, int64_t, Activation);
template void activation_backward<float>(float*, const float*, const float*, int64_t, int64_t,
                                         Activation);
template void activation_backward<double>(double*, const double*, const double*, int64_t,
                                          int64_t, Activation);

}  // namespace DLFAST_ISA
}  // namespace dlfast
