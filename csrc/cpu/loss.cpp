// Losses with their gradient in one pass, compiled once per ISA (see kernels.h).
// y_pred, target, grad: [N, C]; labels: [N] (sparse loss). Reduction: Keras's
// sum_over_batch_size, so the loss is a mean over the batch (and, for mse and binary
// cross-entropy, over the last axis too). Probabilities are clipped to [eps, 1 - eps]
// (Keras's epsilon 1e-7) and the gradient is zero where the clip is active; the categorical
// losses first rescale each row of probabilities to sum to one, as Keras does.
// With from_logits, y_pred holds logits: softmax (or sigmoid) and the cross-entropy are fused
// through log-sum-exp, finite for logits of any size, and grad is d loss / d logits.
// Mean absolute error and Huber (threshold delta) are means over the last axis and the batch,
// as mse; the KL divergence sums over each row of C (the last axis) and averages the N rows,
// with both y_true and y_pred clipped to [eps, 1] (its gradient is zero where y_pred is
// clipped). Keras's gradients at the kinks: sign(0) = 0 for |e|; Huber's quadratic piece
// includes |e| = delta.
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/vmath.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

constexpr double kEpsilon = 1e-7;

template <typename T>
inline T clip_probability(T p) {
  const T lo = T(kEpsilon), hi = T(1) - T(kEpsilon);
  return p < lo ? lo : (p > hi ? hi : p);
}

// sum_c e^(z_c - m) over a row of C logits, vectorised (float: vmath.h's polynomial exp, ~1-2
// ulp, instead of a libm call per logit, which was most of a 64 x 10 head's time); the terms
// are also written to e[0..C) when e is not null.
template <typename T>
double sum_exp_shifted(T* e, const T* z, T m, int64_t C) {
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  alignas(64) T tmp[L];
  double s = 0;
  for (int64_t c = 0; c < C; c += L) {
    const int64_t n = C - c < L ? C - c : L;
    V v;
    if (n == L) {
      v = vload(z + c);
    } else {  // the row's tail, padded with m (e^0, never summed)
      for (int i = 0; i < L; ++i) tmp[i] = i < n ? z[c + i] : m;
      v = vload(tmp);
    }
    vstore(tmp, vexp(v - m));
    for (int64_t i = 0; i < n; ++i) {
      s += double(tmp[i]);
      if (e) e[c + i] = tmp[i];
    }
  }
  return s;
}

// Row r of a softmax cross-entropy from logits z: returns the loss, writes
// grad = (softmax(z) * sum(t) - t) * scale. t is the target row, or null with a label.
// The terms e^(z_c - max z) are kept in grad until it is written.
template <typename T>
double softmax_xent_row(T* grad, const T* z, const T* t, int64_t label, int64_t C, T scale) {
  T m = z[0];
  for (int64_t c = 1; c < C; ++c) m = z[c] > m ? z[c] : m;
  const double s = sum_exp_shifted(grad, z, m, C);
  const double lse = double(m) + std::log(s);
  double loss = 0, tsum = 1;
  if (t) {
    tsum = 0;
    for (int64_t c = 0; c < C; ++c) {
      loss += double(t[c]) * (lse - double(z[c]));
      tsum += double(t[c]);
    }
  } else {
    loss = lse - double(z[label]);
  }
  if (grad) {
    const double inv_s = 1.0 / s;
    for (int64_t c = 0; c < C; ++c) {
      const double p = double(grad[c]) * inv_s;
      const double tc = t ? double(t[c]) : (c == label ? 1.0 : 0.0);
      grad[c] = T((p * tsum - tc) * double(scale));
    }
  }
  return loss;
}

}  // namespace

namespace {

template <typename T>
inline T sign_of(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);  // 0 at 0 (and a NaN stays NaN)
}

// Keras's clip(x, eps, 1) of the KL divergence (NaN passes through).
template <typename T>
inline T clip_to_unit(T x) {
  const T lo = T(kEpsilon);
  return x < lo ? lo : (x > T(1) ? T(1) : x);
}

}  // namespace

template <typename T>
double loss_forward_backward(T* grad, const T* y_pred, const T* target, const int64_t* labels,
                             int64_t N, int64_t C, Loss loss, bool from_logits, double delta) {
  const int64_t n = N * C;
  if (N <= 0) return 0.0;
  double total = 0;
  switch (loss) {
    case Loss::mse: {
      const T scale = T(2.0 / double(n));
      for (int64_t i = 0; i < n; ++i) {
        const T d = y_pred[i] - target[i];
        total += double(d) * double(d);
        if (grad) grad[i] = scale * d;
      }
      return total / double(n);
    }
    case Loss::binary_crossentropy: {
      const T scale = T(1.0 / double(n));
      for (int64_t i = 0; i < n; ++i) {
        const T t = target[i];
        if (from_logits) {  // max(z,0) - z t + log(1 + exp(-|z|))
          const T z = y_pred[i];
          const T az = z < 0 ? -z : z;
          total += double(z > 0 ? z : T(0)) - double(z) * double(t) + std::log1p(std::exp(-double(az)));
          if (grad) grad[i] = (T(1) / (T(1) + std::exp(-z)) - t) * scale;
        } else {
          const T p = clip_probability(y_pred[i]);
          total -= double(t) * std::log(double(p)) + double(T(1) - t) * std::log(double(T(1) - p));
          if (grad) grad[i] = p == y_pred[i] ? (p - t) / (p * (T(1) - p)) * scale : T(0);
        }
      }
      return total / double(n);
    }
    case Loss::categorical_crossentropy:
    case Loss::sparse_categorical_crossentropy: {
      const bool sparse = loss == Loss::sparse_categorical_crossentropy;
      const T scale = T(1.0 / double(N));
      for (int64_t r = 0; r < N; ++r) {
        const T* p = y_pred + r * C;
        const T* t = sparse ? nullptr : target + r * C;
        const int64_t label = sparse ? labels[r] : -1;
        T* g = grad ? grad + r * C : nullptr;
        if (from_logits) {
          total += softmax_xent_row(g, p, t, label, C, scale);
          continue;
        }
        // Keras rescales each row to sum to one, then clips: q = clip(p / s), s = sum(p).
        // d/dp_j of -sum_c t_c log(p_c / s) over the unclipped c is
        //   -t_j / p_j [j unclipped] + (sum of unclipped t_c) / s.
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += double(p[c]);
        double t_unclipped = 0;
        for (int64_t c = 0; c < C; ++c) {
          const T tc = sparse ? T(c == label ? 1 : 0) : t[c];
          const T q = T(double(p[c]) / s);
          const T qc = clip_probability(q);
          if (tc != T(0)) total -= double(tc) * std::log(double(qc));
          if (qc == q) t_unclipped += double(tc);
        }
        if (g) {
          for (int64_t c = 0; c < C; ++c) {
            const T tc = sparse ? T(c == label ? 1 : 0) : t[c];
            const T q = T(double(p[c]) / s);
            const double own = clip_probability(q) == q ? -double(tc) / double(p[c]) : 0.0;
            g[c] = T((own + t_unclipped / s) * double(scale));
          }
        }
      }
      return total / double(N);
    }
    case Loss::mae: {
      const T scale = T(1.0 / double(n));
      for (int64_t i = 0; i < n; ++i) {
        const T d = y_pred[i] - target[i];
        total += std::fabs(double(d));
        if (grad) grad[i] = scale * sign_of(d);
      }
      return total / double(n);
    }
    case Loss::huber: {  // |e| <= delta: e^2/2, else delta*|e| - delta^2/2
      const T scale = T(1.0 / double(n)), td = T(delta);
      const double half_d2 = 0.5 * double(td) * double(td);
      for (int64_t i = 0; i < n; ++i) {
        const T e = y_pred[i] - target[i];
        const T ae = std::fabs(e);
        const bool quadratic = !(ae > td);  // a NaN error takes this branch and stays NaN
        total += quadratic ? 0.5 * double(e) * double(e) : double(td) * double(ae) - half_d2;
        if (grad) grad[i] = scale * (quadratic ? e : td * sign_of(e));
      }
      return total / double(n);
    }
    case Loss::kl_divergence: {  // sum_c t log(t / p) per row, t and p clipped to [eps, 1]
      const T scale = T(1.0 / double(N));
      for (int64_t i = 0; i < n; ++i) {
        const T t = clip_to_unit(target[i]), p = clip_to_unit(y_pred[i]);
        total += double(t) * std::log(double(t) / double(p));
        if (grad) grad[i] = p == y_pred[i] ? -t / p * scale : T(0);
      }
      return total / double(N);
    }
  }
  return total;
}

template double loss_forward_backward<float>(float*, const float*, const float*, const int64_t*,
                                             int64_t, int64_t, Loss, bool, double);
template double loss_forward_backward<double>(double*, const double*, const double*,
                                              const int64_t*, int64_t, int64_t, Loss, bool,
                                              double);

}  // namespace DLFAST_ISA
}  // namespace dlfast
