// Fused optimizer updates, compiled once per ISA (see kernels.h). Memory-bound: one pass
// over w, g (and v), split over threads when the parameter count is large.
#include "common/threading.h"
#include "cpu/kernels.h"

namespace dlfast {
namespace DLFAST_ISA {

// Keras 3 SGD: w -= lr*wd*w (when wd != 0); then without momentum w -= lr*g, with momentum
// v = m*v - lr*g and w += v, or for Nesterov w += m*v - lr*g. v may be null when m == 0.
template <typename T>
void sgd_update(T* w, T* v, const T* g, int64_t n, T lr, T momentum, bool nesterov,
                T weight_decay) {
  const int nt = threads_for_work(double(n) * 8);
  const T decay = T(1) - lr * weight_decay;
  if (momentum == T(0) || v == nullptr) {
#pragma omp parallel for simd num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < n; ++i) w[i] = w[i] * decay - lr * g[i];
    return;
  }
  if (nesterov) {
#pragma omp parallel for simd num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < n; ++i) {
      const T vi = momentum * v[i] - lr * g[i];
      v[i] = vi;
      w[i] = w[i] * decay + momentum * vi - lr * g[i];
    }
  } else {
#pragma omp parallel for simd num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < n; ++i) {
      const T vi = momentum * v[i] - lr * g[i];
      v[i] = vi;
      w[i] = w[i] * decay + vi;
    }
  }
}

template void sgd_update<float>(float*, float*, const float*, int64_t, float, float, bool, float);
template void sgd_update<double>(double*, double*, const double*, int64_t, double, double, bool,
                                 double);

}  // namespace DLFAST_ISA
}  // namespace dlfast
