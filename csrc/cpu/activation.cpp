// Element-wise activations, forward and backward, compiled once per ISA (see kernels.h).
// Shapes: x, y, dy, dx are [R, C] row-major; softmax normalises each row.
// y may alias x and dx may alias dy (each element is read before it is written).
// NaN propagates as in NumPy/PyTorch. relu: y = x < 0 ? 0 : x (NaN fails x < 0 and comes out),
// dx = y <= 0 ? 0 : dy, PyTorch's threshold_backward: a select, never a product, so an
// infinite dy where y <= 0 gives 0 (not inf * 0 = NaN) and a NaN y passes dy through.
// leaky_relu with slope a: y = x > 0 ? x : a*x (NaN fails x > 0, so a*NaN = NaN comes out),
// dx = dy * (y > 0 ? 1 : a) (PyTorch's leaky_relu_backward); a >= 0 keeps y > 0 exactly
// where x > 0.
#include <cmath>

#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Threads for n values costing about `flops` each.
inline int threads_for(int64_t n, double flops) { return threads_for_work(double(n) * flops); }

template <typename T>
void forward_range(T* y, const T* x, int64_t lo, int64_t hi, Activation act, T slope) {
  switch (act) {
    case Activation::linear:
      if (y != x)
        for (int64_t i = lo; i < hi; ++i) y[i] = x[i];
      break;
    case Activation::relu:
      for (int64_t i = lo; i < hi; ++i) y[i] = x[i] < 0 ? T(0) : x[i];
      break;
    case Activation::sigmoid:
      for (int64_t i = lo; i < hi; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
      break;
    case Activation::tanh:
      for (int64_t i = lo; i < hi; ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::leaky_relu:
      for (int64_t i = lo; i < hi; ++i) {
        const T v = x[i];
        y[i] = v > 0 ? v : slope * v;
      }
      break;
    case Activation::softmax:
      break;  // by rows, below
  }
}

// y[r,:] = softmax(x[r,:]) for rows [lo, hi), stable: exp(x - max(x)) / sum.
template <typename T>
void softmax_rows(T* y, const T* x, int64_t lo, int64_t hi, int64_t C) {
  for (int64_t r = lo; r < hi; ++r) {
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

template <typename T>
void backward_range(T* dx, const T* dy, const T* y, int64_t lo, int64_t hi, Activation act,
                    T slope) {
  switch (act) {
    case Activation::linear:
      if (dx != dy)
        for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i];
      break;
    case Activation::relu:  // dy read unconditionally: GCC then vectorises the select
      for (int64_t i = lo; i < hi; ++i) {  // (a conditional read stayed a scalar branch,
        const T d = dy[i];                   // mispredicted on every other value)
        dx[i] = y[i] <= 0 ? T(0) : d;
      }
      break;
    case Activation::sigmoid:
      for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
      break;
    case Activation::tanh:
      for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
      break;
    case Activation::leaky_relu:  // a product, not a select of dy: a NaN dy stays NaN
      for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * (y[i] > 0 ? T(1) : slope);
      break;
    case Activation::softmax:
      break;  // by rows, below
  }
}

// dx = y * (dy - <dy, y>) for rows [lo, hi).
template <typename T>
void softmax_backward_rows(T* dx, const T* dy, const T* y, int64_t lo, int64_t hi, int64_t C) {
  for (int64_t r = lo; r < hi; ++r) {
    const T* yr = y + r * C;
    const T* dyr = dy + r * C;
    T* dxr = dx + r * C;
    T s = 0;
    for (int64_t c = 0; c < C; ++c) s += dyr[c] * yr[c];
    for (int64_t c = 0; c < C; ++c) dxr[c] = yr[c] * (dyr[c] - s);
  }
}

}  // namespace

template <typename T>
void activation_forward(T* y, const T* x, int64_t R, int64_t C, Activation act, double slope) {
  const int64_t n = R * C;
  if (n <= 0) return;
  if (act == Activation::softmax) {
    parallel_ranges(R, threads_for(n, 20), [&](int64_t lo, int64_t hi) {
      softmax_rows(y, x, lo, hi, C);
    });
    return;
  }
  const bool cheap = act == Activation::relu || act == Activation::linear ||
                    act == Activation::leaky_relu;
  const T a = T(slope);
  parallel_ranges(n, threads_for(n, cheap ? 2 : 20), [&](int64_t lo, int64_t hi) {
    forward_range(y, x, lo, hi, act, a);
  });
}

template <typename T>
void activation_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C, Activation act,
                         double slope) {
  const int64_t n = R * C;
  if (n <= 0) return;
  if (act == Activation::softmax) {
    parallel_ranges(R, threads_for(n, 4), [&](int64_t lo, int64_t hi) {
      softmax_backward_rows(dx, dy, y, lo, hi, C);
    });
    return;
  }
  const T a = T(slope);
  parallel_ranges(n, threads_for(n, 2), [&](int64_t lo, int64_t hi) {
    backward_range(dx, dy, y, lo, hi, act, a);
  });
}

template void activation_forward<float>(float*, const float*, int64_t, int64_t, Activation,
                                        double);
template void activation_forward<double>(double*, const double*, int64_t, int64_t, Activation,
                                         double);
template void activation_backward<float>(float*, const float*, const float*, int64_t, int64_t,
                                         Activation, double);
template void activation_backward<double>(double*, const double*, const double*, int64_t,
                                          int64_t, Activation, double);

}  // namespace DLFAST_ISA
}  // namespace dlfast
