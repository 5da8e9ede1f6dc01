// Fused optimizer updates, compiled once per ISA (see kernels.h). Memory-bound: one pass
// over w, g and the optimizer's state, split over threads when the parameter count is large.
// Built with -fno-math-errno (CMakeLists.txt) so that the square roots vectorise.
#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"

#include <cmath>
#include <cstring>
#include <vector>

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


// --- Adam, Adamax, Adadelta (Keras 3's update_step, one pass) --------------------------------
// Each reads g and its state and writes w and the state once per element: 7 arrays of traffic
// for Adam (w, m, v read and written, g read). Threads from ~32k parameters. The loops sit in
// functions of __restrict parameters (GCC ignores __restrict on local pointers, and without it
// versions the loop for aliasing instead of vectorising it).

namespace {

// Keras's decoupled weight decay, w -= lr*wd*w before the step, as one factor on w.
template <typename T>
T decay_factor(double lr, double weight_decay) {
  return T(1.0 - lr * weight_decay);
}

int update_threads(int64_t n) { return threads_for_work(double(n) * 64); }

template <typename T>
void adam_range(T* __restrict w, T* __restrict m, T* __restrict v, const T* __restrict g,
                int64_t lo, int64_t hi, T alpha, T c1, T c2, T eps, T decay) {
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T mi = m[i] + (gi - m[i]) * c1;
    const T vi = v[i] + (gi * gi - v[i]) * c2;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - mi * alpha / (std::sqrt(vi) + eps);
  }
}

template <typename T>
void adamax_range(T* __restrict w, T* __restrict m, T* __restrict u, const T* __restrict g,
                  int64_t lo, int64_t hi, T lr, T bias, T c1, T b2, T eps, T decay) {
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T mi = m[i] + (gi - m[i]) * c1;
    const T decayed = b2 * u[i], ag = std::fabs(gi);
    const T ui = decayed > ag ? decayed : ag;  // a NaN gradient stays visible
    m[i] = mi;
    u[i] = ui;
    w[i] = w[i] * decay - lr * mi / (bias * (ui + eps));
  }
}

template <typename T>
void adadelta_range(T* __restrict w, T* __restrict a, T* __restrict d, const T* __restrict g,
                    int64_t lo, int64_t hi, T lr, T rho, T c, T eps, T decay) {
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T ai = rho * a[i] + c * (gi * gi);
    const T delta = -(std::sqrt(d[i] + eps) * gi) / std::sqrt(ai + eps);
    a[i] = ai;
    d[i] = rho * d[i] + c * (delta * delta);
    w[i] = w[i] * decay + lr * delta;
  }
}

}  // namespace

// m += (g - m)*(1 - b1); v += (g*g - v)*(1 - b2); w -= alpha*m/(sqrt(v) + eps) with
// alpha = lr*sqrt(1 - b2^t)/(1 - b1^t) (computed in double, then rounded to T as Keras casts).
template <typename T>
void adam_update(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                 double beta_2, double epsilon, double weight_decay, int64_t step) {
  const T alpha = T(lr * std::sqrt(1.0 - std::pow(beta_2, double(step))) /
                    (1.0 - std::pow(beta_1, double(step))));
  const T c1 = T(1.0 - beta_1), c2 = T(1.0 - beta_2), eps = T(epsilon);
  const T decay = decay_factor<T>(lr, weight_decay);
  parallel_ranges(n, update_threads(n), [&](int64_t lo, int64_t hi) {
    adam_range(w, m, v, g, lo, hi, alpha, c1, c2, eps, decay);
  });
}

// m += (g - m)*(1 - b1); u = max(b2*u, |g|); w -= lr*m/((1 - b1^t)*(u + eps)).
template <typename T>
void adamax_update(T* w, T* m, T* u, const T* g, int64_t n, double lr, double beta_1,
                   double beta_2, double epsilon, double weight_decay, int64_t step) {
  const T bias = T(1.0 - std::pow(beta_1, double(step)));
  const T c1 = T(1.0 - beta_1), eps = T(epsilon);
  const T decay = decay_factor<T>(lr, weight_decay);
  parallel_ranges(n, update_threads(n), [&](int64_t lo, int64_t hi) {
    adamax_range(w, m, u, g, lo, hi, T(lr), bias, c1, T(beta_2), eps, decay);
  });
}

// a = rho*a + (1 - rho)*g^2; delta = -sqrt(d + eps)*g/sqrt(a + eps);
// d = rho*d + (1 - rho)*delta^2; w += lr*delta.
template <typename T>
void adadelta_update(T* w, T* acc_grad, T* acc_delta, const T* g, int64_t n, double lr,
                     double rho, double epsilon, double weight_decay) {
  const T decay = decay_factor<T>(lr, weight_decay);
  parallel_ranges(n, update_threads(n), [&](int64_t lo, int64_t hi) {
    adadelta_range(w, acc_grad, acc_delta, g, lo, hi, T(lr), T(rho), T(1.0 - rho), T(epsilon),
                   decay);
  });
}

// --- SGD-G2 (arXiv 2002.09304): probe, inner products, step ---------------------------------

namespace {

template <typename T>
void probe_range(T* __restrict w, T* __restrict saved, const T* __restrict g, int64_t lo,
                 int64_t hi, T h) {
  for (int64_t i = lo; i < hi; ++i) {
    saved[i] = g[i];
    w[i] -= h * g[i];
  }
}

template <typename T>
void g2_step_range(T* __restrict w, const T* __restrict saved, int64_t lo, int64_t hi,
                   T h_probe, T h_new, T decay) {
  for (int64_t i = lo; i < hi; ++i) w[i] = (w[i] + h_probe * saved[i]) * decay - h_new * saved[i];
}

}  // namespace

// saved = g; w -= h*g (w becomes the probe point theta - h*g).
template <typename T>
void sgdg2_probe(T* w, T* saved, const T* g, int64_t n, double h) {
  parallel_ranges(n, threads_for_work(double(n) * 32), [&](int64_t lo, int64_t hi) {
    probe_range(w, saved, g, lo, hi, T(h));
  });
}

namespace {

// Adds <g - p, g> to dot[0] and |g - p|^2 to dot[1] over [lo, hi), in double: each value is
// widened first, lane-wise partial sums run over the vector blocks, then the lanes and the
// tail are added in index order. A fixed order for a given range: reproducible sums.
template <typename T>
void g2_dots_range(const T* g, const T* p, int64_t lo, int64_t hi, double* dot) {
  constexpr int L = DLFAST_VEC_BYTES / sizeof(double);
  typedef double VD __attribute__((vector_size(DLFAST_VEC_BYTES)));
  typedef T VT __attribute__((vector_size(L * sizeof(T))));
  VD d0{}, d1{}, s0{}, s1{};  // two accumulators each: the adds' latency is hidden
  int64_t i = lo;
  for (; i + 2 * L <= hi; i += 2 * L) {
    VT ga, pa, gb, pb;
    std::memcpy(&ga, g + i, sizeof ga);
    std::memcpy(&pa, p + i, sizeof pa);
    std::memcpy(&gb, g + i + L, sizeof gb);
    std::memcpy(&pb, p + i + L, sizeof pb);
    const VD gda = __builtin_convertvector(ga, VD), gdb = __builtin_convertvector(gb, VD);
    const VD ea = gda - __builtin_convertvector(pa, VD);
    const VD eb = gdb - __builtin_convertvector(pb, VD);
    d0 += ea * gda;
    s0 += ea * ea;
    d1 += eb * gdb;
    s1 += eb * eb;
  }
  const VD d = d0 + d1, s = s0 + s1;
  double dsum = 0.0, ssum = 0.0;
  for (int k = 0; k < L; ++k) {
    dsum += d[k];
    ssum += s[k];
  }
  for (; i < hi; ++i) {
    const double gi = double(g[i]), e = gi - double(p[i]);
    dsum += e * gi;
    ssum += e * e;
  }
  dot[0] += dsum;
  dot[1] += ssum;
}

}  // namespace

// dot[0] += <g - p, g>, dot[1] += |g - p|^2 (double accumulation). The range is cut in as many
// chunks as threads, fixed by (n, threads), and the chunk sums are added in chunk order.
template <typename T>
void sgdg2_dots(double* dot, const T* g, const T* p, int64_t n) {
  const int threads = threads_for_work(double(n) * 16);
  if (threads <= 1) {
    g2_dots_range(g, p, 0, n, dot);
    return;
  }
  std::vector<double> part(2 * size_t(threads), 0.0);
  parallel_ranges(threads, threads, [&](int64_t c_lo, int64_t c_hi) {
    for (int64_t c = c_lo; c < c_hi; ++c)
      g2_dots_range(g, p, n * c / threads, n * (c + 1) / threads, &part[2 * c]);
  });
  for (int c = 0; c < threads; ++c) {
    dot[0] += part[2 * c];
    dot[1] += part[2 * c + 1];
  }
}

// From the probe point w = theta - h_probe*saved: w = theta*(1 - h_new*wd) - h_new*saved,
// theta recovered as w + h_probe*saved.
template <typename T>
void sgdg2_step(T* w, const T* saved, int64_t n, double h_probe, double h_new,
                double weight_decay) {
  const T decay = decay_factor<T>(h_new, weight_decay);
  parallel_ranges(n, threads_for_work(double(n) * 32), [&](int64_t lo, int64_t hi) {
    g2_step_range(w, saved, lo, hi, T(h_probe), T(h_new), decay);
  });
}

#define DLFAST_OPTIMIZER_INSTANTIATE(T)                                                        \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double,  \
                               double, int64_t);                                               \
  template void adamax_update<T>(T*, T*, T*, const T*, int64_t, double, double, double,        \
                                 double, double, int64_t);                                     \
  template void adadelta_update<T>(T*, T*, T*, const T*, int64_t, double, double, double,      \
                                   double);                                                    \
  template void sgdg2_probe<T>(T*, T*, const T*, int64_t, double);                             \
  template void sgdg2_dots<T>(double*, const T*, const T*, int64_t);                           \
  template void sgdg2_step<T>(T*, const T*, int64_t, double, double, double);
DLFAST_OPTIMIZER_INSTANTIATE(float)
DLFAST_OPTIMIZER_INSTANTIATE(double)
#undef DLFAST_OPTIMIZER_INSTANTIATE

// --- RMSprop, Nadam (Keras 3's update_step, one pass) --------------------------------------
// Same layout as Adam above: the optional state arrays are template switches (a branch per
// element would keep the loop from vectorising).

namespace {

// v = rho*v + (1 - rho)*g^2; centered: a = rho*a + (1 - rho)*g, denominator v - a^2 + eps, else
// v + eps; inc = lr*g/sqrt(denominator); momentum: m = momentum*m + inc, w -= m; else w -= inc.
template <typename T, bool kMomentum, bool kCentered>
void rmsprop_range(T* __restrict w, T* __restrict v, T* __restrict m, T* __restrict a,
                   const T* __restrict g, int64_t lo, int64_t hi, T lr, T rho, T c, T momentum,
                   T eps, T decay) {
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T vi = rho * v[i] + c * (gi * gi);
    v[i] = vi;
    T denominator = vi + eps;
    if (kCentered) {
      const T ai = rho * a[i] + c * gi;
      a[i] = ai;
      denominator = vi - ai * ai + eps;
    }
    const T increment = lr * gi / std::sqrt(denominator);
    if (kMomentum) {
      const T mi = momentum * m[i] + increment;
      m[i] = mi;
      w[i] = w[i] * decay - mi;
    } else {
      w[i] = w[i] * decay - increment;
    }
  }
}

template <typename T, bool kMomentum, bool kCentered>
void rmsprop_run(T* w, T* v, T* m, T* a, const T* g, int64_t n, T lr, T rho, T c, T momentum,
                 T eps, T decay) {
  parallel_ranges(n, update_threads(n), [&](int64_t lo, int64_t hi) {
    rmsprop_range<T, kMomentum, kCentered>(w, v, m, a, g, lo, hi, lr, rho, c, momentum, eps,
                                           decay);
  });
}

// m += (g - m)*c1; v += (g^2 - v)*c2; w -= lr*(a_m*m + a_g*g)/(sqrt(v/bc2) + eps).
template <typename T>
void nadam_range(T* __restrict w, T* __restrict m, T* __restrict v, const T* __restrict g,
                 int64_t lo, int64_t hi, T lr, T c1, T c2, T a_m, T a_g, T bc2, T eps, T decay) {
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T mi = m[i] + (gi - m[i]) * c1;
    const T vi = v[i] + (gi * gi - v[i]) * c2;
    m[i] = mi;
    v[i] = vi;
    const T m_hat = a_m * mi + a_g * gi;
    w[i] = w[i] * decay - m_hat * lr / (std::sqrt(vi / bc2) + eps);
  }
}

}  // namespace

// Keras 3 RMSprop (see rmsprop_range). m is used only when momentum != 0 and a only when
// centered; either may be null otherwise.
template <typename T>
void rmsprop_update(T* w, T* v, T* m, T* a, const T* g, int64_t n, double lr, double rho,
                    double momentum, double epsilon, bool centered, double weight_decay) {
  const T decay = decay_factor<T>(lr, weight_decay);
  const T tlr = T(lr), trho = T(rho), c = T(1.0 - rho), tmom = T(momentum), eps = T(epsilon);
  if (momentum != 0.0 && centered)
    rmsprop_run<T, true, true>(w, v, m, a, g, n, tlr, trho, c, tmom, eps, decay);
  else if (momentum != 0.0)
    rmsprop_run<T, true, false>(w, v, m, a, g, n, tlr, trho, c, tmom, eps, decay);
  else if (centered)
    rmsprop_run<T, false, true>(w, v, m, a, g, n, tlr, trho, c, tmom, eps, decay);
  else
    rmsprop_run<T, false, false>(w, v, m, a, g, n, tlr, trho, c, tmom, eps, decay);
}

// Keras 3 Nadam at step t, u_product = u_1*...*u_t (Keras's _u_product once this step has
// multiplied it in), u_s = b1*(1 - 0.5*0.96^s):
// m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
// m_hat = u_{t+1}*m/(1 - u_product*u_{t+1}) + (1 - u_t)*g/(1 - u_product);
// w -= lr*m_hat/(sqrt(v/(1 - b2^t)) + eps). The coefficients are computed in double, then
// rounded to T (Keras casts them to the variable's dtype).
template <typename T>
void nadam_update(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                  double beta_2, double epsilon, double weight_decay, int64_t step,
                  double u_product) {
  const double t = double(step);
  const double u_t = beta_1 * (1.0 - 0.5 * std::pow(0.96, t));
  const double u_next = beta_1 * (1.0 - 0.5 * std::pow(0.96, t + 1.0));
  const T a_m = T(u_next / (1.0 - u_product * u_next));
  const T a_g = T((1.0 - u_t) / (1.0 - u_product));
  const T bc2 = T(1.0 - std::pow(beta_2, t));
  const T c1 = T(1.0 - beta_1), c2 = T(1.0 - beta_2), eps = T(epsilon);
  const T decay = decay_factor<T>(lr, weight_decay);
  parallel_ranges(n, update_threads(n), [&](int64_t lo, int64_t hi) {
    nadam_range(w, m, v, g, lo, hi, T(lr), c1, c2, a_m, a_g, bc2, eps, decay);
  });
}

#define DLFAST_OPTIMIZER_MORE_INSTANTIATE(T)                                                   \
  template void rmsprop_update<T>(T*, T*, T*, T*, const T*, int64_t, double, double, double,   \
                                  double, bool, double);                                       \
  template void nadam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, \
                                double, int64_t, double);
DLFAST_OPTIMIZER_MORE_INSTANTIATE(float)
DLFAST_OPTIMIZER_MORE_INSTANTIATE(double)
#undef DLFAST_OPTIMIZER_MORE_INSTANTIATE

}  // namespace DLFAST_ISA
}  // namespace dlfast
