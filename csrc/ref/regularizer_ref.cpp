// Reference L1/L2 weight penalty (the definition csrc/cpu/regularizer.cpp is tested against).
// Legend: w[n] a weight, grad[n] its gradient (+=, may be null); l1, l2 the coefficients.
#include <cmath>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

// penalty = l1 sum_i |w_i| + l2 sum_i w_i^2   (Keras's L1L2)
// grad_i += l1 sign(w_i) + 2 l2 w_i            (sign(0) = 0, TensorFlow's gradient of |w| at 0)
template <typename T>
double regularizer_penalty(T* grad, const T* w, int64_t n, double l1, double l2) {
  double sum_abs = 0, sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = double(w[i]);
    sum_abs += std::fabs(v);
    sum_sq += v * v;
    if (grad) {
      const double sign = double(v > 0) - double(v < 0);
      grad[i] = T(double(grad[i]) + l1 * sign + 2.0 * l2 * v);
    }
  }
  return l1 * sum_abs + l2 * sum_sq;
}

template double regularizer_penalty<float>(float*, const float*, int64_t, double, double);
template double regularizer_penalty<double>(double*, const double*, int64_t, double, double);

}  // namespace ref
}  // namespace dlfast
