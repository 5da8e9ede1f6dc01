// Reference layer normalization over the last axis (the definition csrc/cpu/layernorm.cpp is
// tested against). Legend: x, y, dy, dx [R,C] (R rows, C features); gamma, beta [C] (null:
// 1 and 0); mean, inv_std [R]. Sums in double.
#include <cmath>
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

// mean_r = sum_c x[r,c] / C;  var_r = sum_c (x[r,c] - mean_r)^2 / C   (biased, as Keras)
// inv_std_r = 1 / sqrt(var_r + epsilon);  y[r,c] = (x[r,c] - mean_r) inv_std_r gamma_c + beta_c
template <typename T>
void layernorm_forward(T* y, T* mean, T* inv_std, const T* x, const T* gamma, const T* beta,
                       int64_t R, int64_t C, double epsilon) {
  for (int64_t r = 0; r < R; ++r) {
    double m = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) m += double(x[r * C + c]);
    m /= double(C);
    for (int64_t c = 0; c < C; ++c) var += (double(x[r * C + c]) - m) * (double(x[r * C + c]) - m);
    var /= double(C);
    const double s = 1.0 / std::sqrt(var + epsilon);
    mean[r] = T(m);
    inv_std[r] = T(s);
    for (int64_t c = 0; c < C; ++c) {
      const double g = gamma ? double(gamma[c]) : 1.0, b = beta ? double(beta[c]) : 0.0;
      y[r * C + c] = T((double(x[r * C + c]) - m) * s * g + b);
    }
  }
}

// xhat = (x - mean_r) inv_std_r (the kept statistics);  g = dy gamma
// dx[r,c] (=) = inv_std_r (g - sum_c g / C - xhat sum_c (g xhat) / C)
// dgamma[c] (+= or =) sum_r dy xhat;  dbeta[c] (+= or =) sum_r dy.  dx, dgamma, dbeta may be null.
template <typename T>
void layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool accumulate) {
  std::vector<double> dg(size_t(C), 0.0), db(size_t(C), 0.0);
  std::vector<double> xhat(size_t(C), 0.0), g(size_t(C), 0.0);
  for (int64_t r = 0; r < R; ++r) {
    double sg = 0, sgx = 0;
    for (int64_t c = 0; c < C; ++c) {
      xhat[c] = (double(x[r * C + c]) - double(mean[r])) * double(inv_std[r]);
      g[c] = double(dy[r * C + c]) * (gamma ? double(gamma[c]) : 1.0);
      sg += g[c];
      sgx += g[c] * xhat[c];
      dg[c] += double(dy[r * C + c]) * xhat[c];
      db[c] += double(dy[r * C + c]);
    }
    for (int64_t c = 0; dx && c < C; ++c)
      dx[r * C + c] = T(double(inv_std[r]) * (g[c] - sg / double(C) - xhat[c] * sgx / double(C)));
  }
  for (int64_t c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] = T((accumulate ? double(dgamma[c]) : 0.0) + dg[c]);
    if (dbeta) dbeta[c] = T((accumulate ? double(dbeta[c]) : 0.0) + db[c]);
  }
}

#define DLFAST_REF_LAYERNORM(T)                                                               \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t,       \
                                     int64_t, double);                                        \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,     \
                                      const T*, int64_t, int64_t, bool);
DLFAST_REF_LAYERNORM(float)
DLFAST_REF_LAYERNORM(double)
#undef DLFAST_REF_LAYERNORM

}  // namespace ref
}  // namespace dlfast
