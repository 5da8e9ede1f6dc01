// Keras's L1/L2 weight penalties, compiled once per ISA (see kernels.h): the penalty and its
// gradient in one pass over the weight. Memory-bound, like the optimizer update.
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Elements per partial sum: fixed, so the sum's order (and bits) do not depend on threads.
constexpr int64_t kBlock = 8192;
constexpr int kLanes = 8;

}  // namespace

// Returns l1*sum|w| + l2*sum w^2 over w[n] (double accumulation, one partial per fixed block,
// added in block order); when grad is not null also grad[n] += l1*sign(w) + 2*l2*w, with
// sign(0) = 0 (TensorFlow's gradient of |w| at 0).
template <typename T>
double regularizer_penalty(T* grad, const T* w, int64_t n, double l1, double l2) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(size_t(2 * blocks), 0.0);  // (sum|w|, sum w^2) per block
  const T tl1 = T(l1), tl2 = T(2 * l2);
  // ~16 bytes of traffic per element with the gradient: as the SGD update.
  const int threads = threads_for_work(double(n) * 32);
  parallel_blocks(n, kBlock, threads, [&](int64_t b, int64_t lo, int64_t hi) {
    // kLanes independent accumulators so the loop vectorises (a fixed order all the same).
    double sum_abs[kLanes] = {}, sum_sq[kLanes] = {};
    int64_t i = lo;
    for (; i + kLanes <= hi; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const double v = double(w[i + j]);
        sum_abs[j] += std::fabs(v);
        sum_sq[j] += v * v;
      }
    }
    for (; i < hi; ++i) {
      const double v = double(w[i]);
      sum_abs[0] += std::fabs(v);
      sum_sq[0] += v * v;
    }
    for (int j = 1; j < kLanes; ++j) {
      sum_abs[0] += sum_abs[j];
      sum_sq[0] += sum_sq[j];
    }
    partial[2 * b] = sum_abs[0];
    partial[2 * b + 1] = sum_sq[0];
    if (grad) {
      T* __restrict g = grad;
      const T* __restrict x = w;
      for (int64_t i = lo; i < hi; ++i) {
        const T sign = T(x[i] > T(0)) - T(x[i] < T(0));
        g[i] += tl1 * sign + tl2 * x[i];
      }
    }
  });
  double sum_abs = 0, sum_sq = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    sum_abs += partial[2 * b];
    sum_sq += partial[2 * b + 1];
  }
  return l1 * sum_abs + l2 * sum_sq;
}

template double regularizer_penalty<float>(float*, const float*, int64_t, double, double);
template double regularizer_penalty<double>(double*, const double*, int64_t, double, double);

}  // namespace DLFAST_ISA
}  // namespace dlfast
