// Batch normalization over the last axis, forward and backward, compiled once per ISA (see
// kernels.h). Legend: x, y, dy, dx [R,C] with R rows (N for Dense outputs, N*H*W for NHWC conv
// outputs) and C channels; gamma, beta, mean, inv_std, moving_mean, moving_var [C].
//
// Per-channel sums over the rows are accumulated in double, one partial sum per fixed block
// of rows, added in block order: the blocks depend on (R, C) only, so the statistics (and
// everything after them) are the same bits for 1 and 2 threads. Every inner loop runs over
// the channels, contiguous in memory, so it vectorises. Threads split the blocks (sums) or
// the rows (element-wise passes).
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

// At most this many partial sums per channel (the workspace is kMaxBlocks * K * C doubles),
// each over at least kMinBlockRows rows.
constexpr int64_t kMaxBlocks = 64;
constexpr int64_t kMinBlockRows = 16;

// sums[K*C] = K per-channel sums over the R rows. add_rows(acc, lo, hi) adds the
// contributions of rows [lo, hi) into acc[K*C] (zero on entry).
template <typename AddRows>
void column_sums(double* sums, int64_t R, int64_t C, int K, int threads,
                 const AddRows& add_rows) {
  const int64_t block = std::max(kMinBlockRows, (R + kMaxBlocks - 1) / kMaxBlocks);
  const int64_t blocks = (R + block - 1) / block, width = K * C;
  // One allocation per kernel call (a few KiB), never inside a loop.
  std::vector<double> partial(size_t(blocks * width), 0.0);
  parallel_blocks(R, block, threads, [&](int64_t b, int64_t lo, int64_t hi) {
    add_rows(partial.data() + b * width, lo, hi);
  });
  std::fill(sums, sums + width, 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    const double* p = partial.data() + b * width;
    for (int64_t i = 0; i < width; ++i) sums[i] += p[i];
  }
}

// Threads for a pass of about `per_element` operations on each of the R*C elements.
inline int bn_threads(int64_t R, int64_t C, double per_element) {
  return threads_for_work(double(R) * double(C) * per_element);
}

}  // namespace

// Training: mean = colmean(x), var = colmean((x - mean)^2) (biased, as Keras/TF), and the
// moving statistics move toward them: moving = moving*momentum + batch*(1 - momentum).
// Inference: mean = moving_mean, var = moving_var (moving statistics unchanged).
// Then inv_std = 1/sqrt(var + epsilon), y[R,C] (=) = (x - mean) * inv_std * gamma + beta
// (gamma, beta may be null: 1 and 0), and mean[C], inv_std[C] (=) are kept for backward.
// Training needs R >= 1 (the bindings check it).
template <typename T>
void batchnorm_forward(T* y, T* mean, T* inv_std, T* moving_mean, T* moving_var, const T* x,
                       const T* gamma, const T* beta, int64_t R, int64_t C, double momentum,
                       double epsilon, bool training) {
  // Per channel in double: m (mean), s (inv_std); then the T constants of the y pass.
  std::vector<double> stats(size_t(3 * C));
  double* m = stats.data();
  double* var = m + C;
  double* s = var + C;
  if (training) {
    const int threads = bn_threads(R, C, 2);
    column_sums(m, R, C, 1, threads, [&](double* acc, int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* __restrict xr = x + r * C;
        for (int64_t c = 0; c < C; ++c) acc[c] += double(xr[c]);
      }
    });
    for (int64_t c = 0; c < C; ++c) m[c] /= double(R);
    // A second pass over the deviations: exact where E[x^2] - mean^2 would cancel.
    column_sums(var, R, C, 1, threads, [&](double* acc, int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* __restrict xr = x + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const double d = double(xr[c]) - m[c];
          acc[c] += d * d;
        }
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      var[c] /= double(R);
      moving_mean[c] = T(double(moving_mean[c]) * momentum + m[c] * (1.0 - momentum));
      moving_var[c] = T(double(moving_var[c]) * momentum + var[c] * (1.0 - momentum));
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      m[c] = double(moving_mean[c]);
      var[c] = double(moving_var[c]);
    }
  }
  // y = (x - mean) * scale + shift with scale = gamma * inv_std, shift = beta.
  std::vector<T> consts(size_t(3 * C));
  T* mt = consts.data();
  T* scale = mt + C;
  T* shift = scale + C;
  for (int64_t c = 0; c < C; ++c) {
    s[c] = 1.0 / std::sqrt(var[c] + epsilon);
    mean[c] = mt[c] = T(m[c]);
    inv_std[c] = T(s[c]);
    scale[c] = T(s[c] * (gamma ? double(gamma[c]) : 1.0));
    shift[c] = beta ? beta[c] : T(0);
  }
  parallel_ranges(R, bn_threads(R, C, 3), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* __restrict xr = x + r * C;
      T* __restrict yr = y + r * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mt[c]) * scale[c] + shift[c];
    }
  });
}

// With xhat = (x - mean) * inv_std (mean, inv_std as forward kept them):
// dbeta[C] = colsum(dy), dgamma[C] = colsum(dy * xhat)  (+= when accumulate, else =);
// dx[R,C] (=) = gamma*inv_std * (dy - colmean(dy) - xhat * colmean(dy * xhat)) in training
// (the gradient through the batch statistics), gamma*inv_std * dy in inference.
// dx, dgamma, dbeta may be null; gamma null means 1.
template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool training,
                        bool accumulate) {
  // sums[0:C] = colsum(dy), sums[C:2C] = colsum(dy * (x - mean)).
  std::vector<double> sums(size_t(2 * C), 0.0);
  const bool need_sums = dgamma || dbeta || (dx && training);
  if (need_sums) {
    column_sums(sums.data(), R, C, 2, bn_threads(R, C, 4),
                [&](double* acc, int64_t lo, int64_t hi) {
                  double* __restrict a0 = acc;
                  double* __restrict a1 = acc + C;
                  for (int64_t r = lo; r < hi; ++r) {
                    const T* __restrict xr = x + r * C;
                    const T* __restrict dyr = dy + r * C;
                    for (int64_t c = 0; c < C; ++c) {
                      const double g = double(dyr[c]);
                      a0[c] += g;
                      a1[c] += g * (double(xr[c]) - double(mean[c]));
                    }
                  }
                });
  }
  for (int64_t c = 0; c < C; ++c) {
    const double db = sums[c], dg = sums[C + c] * double(inv_std[c]);
    if (dbeta) dbeta[c] = accumulate ? T(double(dbeta[c]) + db) : T(db);
    if (dgamma) dgamma[c] = accumulate ? T(double(dgamma[c]) + dg) : T(dg);
  }
  if (!dx) return;
  // dx = a*dy - k0 - (x - mean)*k1 with a = gamma*inv_std, k0 = a*colmean(dy),
  // k1 = a*inv_std*colmean(dy*xhat) = a*inv_std^2*colmean(dy*(x - mean)); k0 = k1 = 0 in
  // inference.
  std::vector<T> consts(size_t(4 * C));
  T* a = consts.data();
  T* k0 = a + C;
  T* k1 = k0 + C;
  T* mt = k1 + C;
  const double inv_r = 1.0 / double(R);
  for (int64_t c = 0; c < C; ++c) {
    const double s = double(inv_std[c]);
    const double ac = s * (gamma ? double(gamma[c]) : 1.0);
    a[c] = T(ac);
    k0[c] = training ? T(ac * sums[c] * inv_r) : T(0);
    k1[c] = training ? T(ac * s * s * sums[C + c] * inv_r) : T(0);
    mt[c] = mean[c];
  }
  parallel_ranges(R, bn_threads(R, C, 4), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* __restrict xr = x + r * C;
      const T* __restrict dyr = dy + r * C;
      T* __restrict dxr = dx + r * C;
      for (int64_t c = 0; c < C; ++c) dxr[c] = a[c] * dyr[c] - k0[c] - (xr[c] - mt[c]) * k1[c];
    }
  });
}

template void batchnorm_forward<float>(float*, float*, float*, float*, float*, const float*,
                                       const float*, const float*, int64_t, int64_t, double,
                                       double, bool);
template void batchnorm_forward<double>(double*, double*, double*, double*, double*,
                                        const double*, const double*, const double*, int64_t,
                                        int64_t, double, double, bool);
template void batchnorm_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, int64_t,
                                        int64_t, bool, bool);
template void batchnorm_backward<double>(double*, double*, double*, const double*,
                                         const double*, const double*, const double*,
                                         const double*, int64_t, int64_t, bool, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
