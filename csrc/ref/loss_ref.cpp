// Reference losses, each its value and gradient (the definitions csrc/cpu/loss.cpp is tested
// against). Legend: p = y_pred, t = target, both [N,C] (labels[N] for the sparse loss, whose
// target is the one-hot row of the label); g = grad [N,C] (=, may be null); n = N*C.
// Reduction: Keras's sum_over_batch_size, a mean over the N rows (and over C for the
// element-wise losses). Probabilities are clipped to [eps, 1 - eps] (eps = 1e-7, the bounds as
// T holds them, as Keras clips in the variable's dtype) and the gradient is 0 where the clip
// is active. Arithmetic in double; sign(0) = 0 (Keras's gradient of |e| at its kink).
#include <cmath>

#include "ref/ref.h"

namespace dlfast {
namespace ref {
namespace {

constexpr double kEps = 1e-7;

template <typename T>
double lower_bound() { return double(T(kEps)); }
template <typename T>
double upper_bound() { return double(T(1) - T(kEps)); }  // float: 1 - 2^-23, not 1 - 1e-7

double clip(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }
double sign(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : v); }  // NaN stays NaN

// mse = sum (p - t)^2 / n;  g = 2 (p - t) / n
template <typename T>
double mse(T* g, const T* p, const T* t, int64_t n) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = double(p[i]) - double(t[i]);
    total += e * e;
    if (g) g[i] = T(2.0 * e / double(n));
  }
  return total / double(n);
}

// mae = sum |p - t| / n;  g = sign(p - t) / n
template <typename T>
double mae(T* g, const T* p, const T* t, int64_t n) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = double(p[i]) - double(t[i]);
    total += std::fabs(e);
    if (g) g[i] = T(sign(e) / double(n));
  }
  return total / double(n);
}

// huber = sum h(p - t) / n,  h(e) = e^2 / 2 when |e| <= delta (a NaN e too), else
// delta |e| - delta^2 / 2;  g = (|e| <= delta ? e : delta sign(e)) / n
template <typename T>
double huber(T* g, const T* p, const T* t, int64_t n, double delta) {
  const double d = double(T(delta));
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = double(p[i]) - double(t[i]);
    const bool quadratic = !(std::fabs(e) > d);
    total += quadratic ? 0.5 * e * e : d * std::fabs(e) - 0.5 * d * d;
    if (g) g[i] = T((quadratic ? e : d * sign(e)) / double(n));
  }
  return total / double(n);
}

// probabilities: bce = -sum [t log pc + (1 - t) log(1 - pc)] / n, pc = clip(p);
//                g = (pc - t) / (pc (1 - pc)) / n where pc = p, else 0
// logits z:      bce = sum [max(z, 0) - z t + log(1 + exp(-|z|))] / n; g = (sigmoid(z) - t) / n
template <typename T>
double binary_crossentropy(T* g, const T* p, const T* t, int64_t n, bool from_logits) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double ti = double(t[i]), v = double(p[i]);
    if (from_logits) {
      total += (v > 0 ? v : 0.0) - v * ti + std::log1p(std::exp(-std::fabs(v)));
      if (g) g[i] = T((1.0 / (1.0 + std::exp(-v)) - ti) / double(n));
      continue;
    }
    const double pc = clip(v, lower_bound<T>(), upper_bound<T>());
    total -= ti * std::log(pc) + (1.0 - ti) * std::log(1.0 - pc);
    if (g) g[i] = pc == v ? T((pc - ti) / (pc * (1.0 - pc)) / double(n)) : T(0);
  }
  return total / double(n);
}

// kl = sum t log(t / p) / N with t, p clipped to [eps, 1];  g = -t / p / N where p is unclipped
template <typename T>
double kl_divergence(T* g, const T* p, const T* t, int64_t N, int64_t C) {
  double total = 0;
  for (int64_t i = 0; i < N * C; ++i) {
    const double tc = clip(double(t[i]), lower_bound<T>(), 1.0);
    const double pc = clip(double(p[i]), lower_bound<T>(), 1.0);
    total += tc * std::log(tc / pc);
    if (g) g[i] = pc == double(p[i]) ? T(-tc / pc / double(N)) : T(0);
  }
  return total / double(N);
}

}  // namespace

namespace {

// One row of the categorical cross-entropy; the target row is t, or the one-hot row of `label`
// when t is null (the sparse loss). Scaled by 1/N here, the loss by the caller.
// probabilities: q = p / s, s = sum_c p_c, qc = clip(q);  loss = -sum_c t_c log qc_c;
//   g_j = ([q_j unclipped] (-t_j / p_j) + (sum of t_c over the unclipped c) / s) / N
// logits z: lse = log sum_c exp(z_c);  loss = sum_c t_c (lse - z_c);
//   g_j = (softmax(z)_j sum_c t_c - t_j) / N
template <typename T>
double categorical_row(T* g, const T* p, const T* t, int64_t label, int64_t C, int64_t N,
                       bool from_logits) {
  auto target = [&](int64_t c) { return t ? double(t[c]) : (c == label ? 1.0 : 0.0); };
  double loss = 0, s = 0, tsum = 0;
  if (C <= 0) return 0.0;  // an empty row: nothing to read
  if (from_logits) {
    double m = double(p[0]);
    for (int64_t c = 1; c < C; ++c) m = double(p[c]) > m ? double(p[c]) : m;
    for (int64_t c = 0; c < C; ++c) s += std::exp(double(p[c]) - m);
    const double lse = m + std::log(s);
    for (int64_t c = 0; c < C; ++c) {
      loss += target(c) * (lse - double(p[c]));
      tsum += target(c);
    }
    for (int64_t c = 0; g && c < C; ++c)
      g[c] = T((std::exp(double(p[c]) - m) / s * tsum - target(c)) / double(N));
    return loss;
  }
  for (int64_t c = 0; c < C; ++c) s += double(p[c]);
  for (int64_t c = 0; c < C; ++c) {
    const double q = double(p[c]) / s, qc = clip(q, lower_bound<T>(), upper_bound<T>());
    loss -= target(c) * std::log(qc);
    if (qc == q) tsum += target(c);  // here: the target mass on the unclipped classes
  }
  for (int64_t c = 0; g && c < C; ++c) {
    const double q = double(p[c]) / s;
    const bool unclipped = clip(q, lower_bound<T>(), upper_bound<T>()) == q;
    const double own = unclipped ? -target(c) / double(p[c]) : 0.0;
    g[c] = T((own + tsum / s) / double(N));
  }
  return loss;
}

}  // namespace

// The mean loss of kind `loss` over the batch, and its gradient into grad (when not null).
template <typename T>
double loss_forward_backward(T* grad, const T* y_pred, const T* target, const int64_t* labels,
                             int64_t N, int64_t C, Loss loss, bool from_logits, double delta) {
  if (N <= 0) return 0.0;
  switch (loss) {
    case Loss::mse: return mse(grad, y_pred, target, N * C);
    case Loss::mae: return mae(grad, y_pred, target, N * C);
    case Loss::huber: return huber(grad, y_pred, target, N * C, delta);
    case Loss::binary_crossentropy:
      return binary_crossentropy(grad, y_pred, target, N * C, from_logits);
    case Loss::kl_divergence: return kl_divergence(grad, y_pred, target, N, C);
    case Loss::categorical_crossentropy:
    case Loss::sparse_categorical_crossentropy: {
      const bool sparse = loss == Loss::sparse_categorical_crossentropy;
      double total = 0;
      for (int64_t r = 0; r < N; ++r)
        total += categorical_row(grad ? grad + r * C : nullptr, y_pred + r * C,
                                 sparse ? nullptr : target + r * C, sparse ? labels[r] : -1, C,
                                 N, from_logits);
      return total / double(N);
    }
  }
  return 0.0;
}

template double loss_forward_backward<float>(float*, const float*, const float*, const int64_t*,
                                             int64_t, int64_t, Loss, bool, double);
template double loss_forward_backward<double>(double*, const double*, const double*,
                                              const int64_t*, int64_t, int64_t, Loss, bool,
                                              double);

}  // namespace ref
}  // namespace dlfast
