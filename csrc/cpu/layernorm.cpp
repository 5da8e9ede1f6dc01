// Layer normalization over the last axis, forward and backward, compiled once per ISA (see
// kernels.h). Legend: x, y, dy, dx [R,C]: R rows (every index but the last), C features;
// gamma, beta, dgamma, dbeta [C]; mean, inv_std [R] (one statistic per row, kept for backward).
//
// Each row is normalised on its own, so the rows are split over threads. The per-row sums are
// taken in double, one row at a time. dgamma and dbeta sum over the rows: one partial sum per
// fixed block of rows, added in block order, so the result is the same bits for any thread
// count (as batchnorm.cpp's column sums).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

constexpr int64_t kMaxBlocks = 64;     // at most this many partial sums per feature
constexpr int64_t kMinBlockRows = 16;  // each over at least this many rows

inline int ln_threads(int64_t R, int64_t C, double per_element) {
  return threads_for_work(double(R) * double(C) * per_element);
}

}  // namespace

// mean_r = sum_c x[r,c] / C; var_r = sum_c (x[r,c] - mean_r)^2 / C (biased, as Keras);
// inv_std_r = 1 / sqrt(var_r + epsilon); y[r,c] (=) = (x[r,c] - mean_r) inv_std_r gamma_c +
// beta_c (gamma null: 1, beta null: 0). mean[R], inv_std[R] (=).
template <typename T>
void layernorm_forward(T* y, T* mean, T* inv_std, const T* x, const T* gamma, const T* beta,
                       int64_t R, int64_t C, double epsilon) {
  if (R <= 0 || C <= 0) return;
  parallel_ranges(R, ln_threads(R, C, 6), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* __restrict xr = x + r * C;
      T* __restrict yr = y + r * C;
      double m = 0;
      for (int64_t c = 0; c < C; ++c) m += double(xr[c]);
      m /= double(C);
      double var = 0;  // a second pass over the deviations: no cancellation
      for (int64_t c = 0; c < C; ++c) {
        const double d = double(xr[c]) - m;
        var += d * d;
      }
      var /= double(C);
      const double s = 1.0 / std::sqrt(var + epsilon);
      mean[r] = T(m);
      inv_std[r] = T(s);
      const T mt = T(m), st = T(s);
      if (gamma && beta)
        for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mt) * st * gamma[c] + beta[c];
      else
        for (int64_t c = 0; c < C; ++c)
          yr[c] = (xr[c] - mt) * st * (gamma ? gamma[c] : T(1)) + (beta ? beta[c] : T(0));
    }
  });
}

// With xhat = (x - mean_r) inv_std_r and g = dy * gamma:
// dx[r,c] (=) = inv_std_r (g - mean_c(g) - xhat mean_c(g xhat))  (means over the row);
// dgamma[c] (+= or =) = sum_r dy xhat; dbeta[c] (+= or =) = sum_r dy. Any of dx, dgamma,
// dbeta may be null; gamma null means 1.
template <typename T>
void layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool accumulate) {
  if (C <= 0) return;
  const bool sums = dgamma || dbeta;
  const int64_t block = std::max(kMinBlockRows, (R + kMaxBlocks - 1) / kMaxBlocks);
  const int64_t blocks = R > 0 ? (R + block - 1) / block : 0;
  // partial[b][0:C] = sum of dy over block b, [C:2C] = sum of dy * xhat (one allocation).
  std::vector<double> partial(sums ? size_t(blocks * 2 * C) : 0, 0.0);
  parallel_blocks(R, block, ln_threads(R, C, 10), [&](int64_t b, int64_t lo, int64_t hi) {
    double* __restrict pb = sums ? partial.data() + b * 2 * C : nullptr;
    for (int64_t r = lo; r < hi; ++r) {
      const T* __restrict xr = x + r * C;
      const T* __restrict dyr = dy + r * C;
      const double m = double(mean[r]), s = double(inv_std[r]);
      if (pb)
        for (int64_t c = 0; c < C; ++c) {
          const double d = double(dyr[c]);
          pb[c] += d;
          pb[C + c] += d * (double(xr[c]) - m) * s;
        }
      if (!dx) continue;
      double sg = 0, sgx = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double g = double(dyr[c]) * (gamma ? double(gamma[c]) : 1.0);
        sg += g;
        sgx += g * (double(xr[c]) - m) * s;
      }
      // dx = s g - k0 - (x - m) k1 with k0 = s mean(g), k1 = s^2 mean(g xhat).
      const T st = T(s), k0 = T(s * sg / double(C)), k1 = T(s * s * sgx / double(C));
      const T mt = T(m);
      T* __restrict dxr = dx + r * C;
      for (int64_t c = 0; c < C; ++c)
        dxr[c] = st * dyr[c] * (gamma ? gamma[c] : T(1)) - k0 - (xr[c] - mt) * k1;
    }
  });
  if (!sums) return;
  std::vector<double> total(size_t(2 * C), 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    const double* p = partial.data() + b * 2 * C;
    for (int64_t i = 0; i < 2 * C; ++i) total[i] += p[i];
  }
  for (int64_t c = 0; c < C; ++c) {
    if (dbeta) dbeta[c] = accumulate ? T(double(dbeta[c]) + total[c]) : T(total[c]);
    if (dgamma) dgamma[c] = accumulate ? T(double(dgamma[c]) + total[C + c]) : T(total[C + c]);
  }
}

#define DLFAST_LAYERNORM(T)                                                                  \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t,      \
                                     int64_t, double);                                       \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,    \
                                      const T*, int64_t, int64_t, bool);
DLFAST_LAYERNORM(float)
DLFAST_LAYERNORM(double)
#undef DLFAST_LAYERNORM

}  // namespace DLFAST_ISA
}  // namespace dlfast
