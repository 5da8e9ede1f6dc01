// Fused optimizer updates, compiled once per ISA (see kernels.h). Memory-bound: one pass
// over w, g (and v), split over threads when the parameter count is large.
#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

template <typename T>
void sgd_range(T* __restrict w, T* __restrict v, const T* __restrict g, int64_t lo, int64_t hi,
               T lr, T momentum, bool nesterov, T decay) {
  if (!v) {
    for (int64_t i = lo; i < hi; ++i) w[i] = w[i] * decay - lr * g[i];
  } else if (nesterov) {
    for (int64_t i = lo; i < hi; ++i) {
      const T vi = momentum * v[i] - lr * g[i];
      v[i] = vi;
      w[i] = w[i] * decay + momentum * vi - lr * g[i];
    }
  } else {
    for (int64_t i = lo; i < hi; ++i) {
      const T vi = momentum * v[i] - lr * g[i];
      v[i] = vi;
      w[i] = w[i] * decay + vi;
    }
  }
}

}  // namespace

// Keras 3 SGD: w -= lr*wd*w (when wd != 0); then without momentum w -= lr*g, with momentum
// v = m*v - lr*g and w += v, or for Nesterov w += m*v - lr*g. v may be null when m == 0.
template <typename T>
void sgd_update(T* w, T* v, const T* g, int64_t n, T lr, T momentum, bool nesterov,
                T weight_decay) {
  const T decay = T(1) - lr * weight_decay;
  T* vel = momentum == T(0) ? nullptr : v;
  // ~12 bytes of traffic per parameter: a second thread pays off from ~64k parameters.
  const int threads = threads_for_work(double(n) * 32);
  parallel_ranges(n, threads, [&](int64_t lo, int64_t hi) {
    sgd_range(w, vel, g, lo, hi, lr, momentum, nesterov, decay);
  });
}

template void sgd_update<float>(float*, float*, const float*, int64_t, float, float, bool, float);
template void sgd_update<double>(double*, double*, const double*, int64_t, double, double, bool,
                                 double);

}  // namespace DLFAST_ISA
}  // namespace dlfast
