// Reference batch normalization over the last axis (the definition csrc/cpu/batchnorm.cpp is
// tested against). Legend: x, y, dy, dx [R,C] (R rows: N, or N*H*W for NHWC; C channels);
// gamma, beta, mean, inv_std, moving_mean, moving_var [C]; gamma null means 1, beta null 0.
// Statistics in double.
#include <cmath>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

// training:  mean_c = sum_r x[r,c] / R;  var_c = sum_r (x[r,c] - mean_c)^2 / R   (biased)
//            moving_c <- moving_c momentum + batch_c (1 - momentum), for mean and var
// inference: mean_c = moving_mean_c, var_c = moving_var_c (unchanged)
// inv_std_c = 1 / sqrt(var_c + epsilon);  y[r,c] = (x[r,c] - mean_c) inv_std_c gamma_c + beta_c
// mean[C] and inv_std[C] (=) keep the statistics used, for backward.
template <typename T>
void batchnorm_forward(T* y, T* mean, T* inv_std, T* moving_mean, T* moving_var, const T* x,
                       const T* gamma, const T* beta, int64_t R, int64_t C, double momentum,
                       double epsilon, bool training) {
  for (int64_t c = 0; c < C; ++c) {
    double m = double(moving_mean[c]), var = double(moving_var[c]);
    if (training) {
      m = 0;
      for (int64_t r = 0; r < R; ++r) m += double(x[r * C + c]);
      m /= double(R);
      var = 0;
      for (int64_t r = 0; r < R; ++r) {
        const double d = double(x[r * C + c]) - m;
        var += d * d;
      }
      var /= double(R);
      moving_mean[c] = T(double(moving_mean[c]) * momentum + m * (1.0 - momentum));
      moving_var[c] = T(double(moving_var[c]) * momentum + var * (1.0 - momentum));
    }
    const double s = 1.0 / std::sqrt(var + epsilon);
    mean[c] = T(m);
    inv_std[c] = T(s);
    const double gc = gamma ? double(gamma[c]) : 1.0, bc = beta ? double(beta[c]) : 0.0;
    for (int64_t r = 0; r < R; ++r) y[r * C + c] = T((double(x[r * C + c]) - m) * s * gc + bc);
  }
}

// xhat[r,c] = (x[r,c] - mean_c) inv_std_c   (mean, inv_std as forward kept them)
// dbeta_c (+= or =) sum_r dy[r,c];  dgamma_c (+= or =) sum_r dy[r,c] xhat[r,c]
// training:  dx[r,c] (=) gamma_c inv_std_c (dy[r,c] - mean_r(dy) - xhat[r,c] mean_r(dy xhat))
// inference: dx[r,c] (=) gamma_c inv_std_c dy[r,c]
// dx, dgamma, dbeta may be null.
template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool training,
                        bool accumulate) {
  for (int64_t c = 0; c < C; ++c) {
    const double m = double(mean[c]), s = double(inv_std[c]);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t r = 0; r < R; ++r) {
      sum_dy += double(dy[r * C + c]);
      sum_dy_xhat += double(dy[r * C + c]) * (double(x[r * C + c]) - m) * s;
    }
    if (dbeta) dbeta[c] = T((accumulate ? double(dbeta[c]) : 0.0) + sum_dy);
    if (dgamma) dgamma[c] = T((accumulate ? double(dgamma[c]) : 0.0) + sum_dy_xhat);
    if (!dx) continue;
    const double a = (gamma ? double(gamma[c]) : 1.0) * s;
    for (int64_t r = 0; r < R; ++r) {
      const double xhat = (double(x[r * C + c]) - m) * s;
      const double d = double(dy[r * C + c]);
      dx[r * C + c] = T(training ? a * (d - sum_dy / double(R) - xhat * sum_dy_xhat / double(R))
                                 : a * d);
    }
  }
}

#define DLFAST_REF_BATCHNORM(T)                                                               \
  template void batchnorm_forward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*,        \
                                     int64_t, int64_t, double, double, bool);                 \
  template void batchnorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,     \
                                      const T*, int64_t, int64_t, bool, bool);
DLFAST_REF_BATCHNORM(float)
DLFAST_REF_BATCHNORM(double)
#undef DLFAST_REF_BATCHNORM

}  // namespace ref
}  // namespace dlfast
