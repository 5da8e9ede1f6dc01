// Reference optimizer updates, Keras 3's update_step per parameter (the definitions
// csrc/cpu/optimizer.cpp is tested against). Legend: w the weights, g the gradient, the state
// arrays (m, v, u, a, d) as KernelTable names them, all of n elements, updated in place;
// t = step (1-based). Every update first applies the decoupled weight decay
// w <- w - lr*wd*w, then its step. Each element is computed in double from the stored values
// and stored back once, in the order the equations are written.
#include <cmath>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

// SGD:       w <- w - lr*wd*w;  plain:    w <- w - lr*g
//            momentum: v <- momentum*v - lr*g;  w <- w + v  (Nesterov: w <- w + momentum*v - lr*g)
// v is not read when momentum == 0 (it may be null).
template <typename T>
void sgd_update(T* w, T* v, const T* g, int64_t n, T lr, T momentum, bool nesterov,
                T weight_decay) {
  const double a = double(lr), mu = double(momentum), wd = double(weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    double wi = double(w[i]) - a * wd * double(w[i]);
    const double gi = double(g[i]);
    if (mu == 0) {
      wi -= a * gi;
    } else {
      const double vi = mu * double(v[i]) - a * gi;
      v[i] = T(vi);
      wi += nesterov ? mu * vi - a * gi : vi;
    }
    w[i] = T(wi);
  }
}

// Adam:  m <- m + (g - m)(1 - b1);  v <- v + (g^2 - v)(1 - b2)
//        w <- w - lr*wd*w - alpha*m/(sqrt(v) + eps),  alpha = lr*sqrt(1 - b2^t)/(1 - b1^t)
template <typename T>
void adam_update(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                 double beta_2, double epsilon, double weight_decay, int64_t step) {
  const double t = double(step);
  const double alpha = lr * std::sqrt(1.0 - std::pow(beta_2, t)) / (1.0 - std::pow(beta_1, t));
  for (int64_t i = 0; i < n; ++i) {
    const double gi = double(g[i]);
    const double mi = double(m[i]) + (gi - double(m[i])) * (1.0 - beta_1);
    const double vi = double(v[i]) + (gi * gi - double(v[i])) * (1.0 - beta_2);
    m[i] = T(mi);
    v[i] = T(vi);
    const double wi = double(w[i]) - lr * weight_decay * double(w[i]);
    w[i] = T(wi - alpha * mi / (std::sqrt(vi) + epsilon));
  }
}

// Adamax: m <- m + (g - m)(1 - b1);  u <- max(b2*u, |g|)  (b2*u > |g| ? b2*u : |g|, so a NaN
//         gradient shows in u);  w <- w - lr*wd*w - lr*m/((1 - b1^t)(u + eps))
template <typename T>
void adamax_update(T* w, T* m, T* u, const T* g, int64_t n, double lr, double beta_1,
                   double beta_2, double epsilon, double weight_decay, int64_t step) {
  const double bias = 1.0 - std::pow(beta_1, double(step));
  for (int64_t i = 0; i < n; ++i) {
    const double gi = double(g[i]);
    const double mi = double(m[i]) + (gi - double(m[i])) * (1.0 - beta_1);
    const double decayed = beta_2 * double(u[i]), ag = std::fabs(gi);
    const double ui = decayed > ag ? decayed : ag;
    m[i] = T(mi);
    u[i] = T(ui);
    const double wi = double(w[i]) - lr * weight_decay * double(w[i]);
    w[i] = T(wi - lr * mi / (bias * (ui + epsilon)));
  }
}

// Adadelta: a <- rho*a + (1 - rho)g^2;  delta = -sqrt(d + eps) g / sqrt(a + eps)
//           d <- rho*d + (1 - rho)delta^2;  w <- w - lr*wd*w + lr*delta
// (a = acc_grad, d = acc_delta; delta reads d before its update)
template <typename T>
void adadelta_update(T* w, T* acc_grad, T* acc_delta, const T* g, int64_t n, double lr,
                     double rho, double epsilon, double weight_decay) {
  for (int64_t i = 0; i < n; ++i) {
    const double gi = double(g[i]);
    const double ai = rho * double(acc_grad[i]) + (1.0 - rho) * gi * gi;
    const double delta = -std::sqrt(double(acc_delta[i]) + epsilon) * gi / std::sqrt(ai + epsilon);
    acc_grad[i] = T(ai);
    acc_delta[i] = T(rho * double(acc_delta[i]) + (1.0 - rho) * delta * delta);
    const double wi = double(w[i]) - lr * weight_decay * double(w[i]);
    w[i] = T(wi + lr * delta);
  }
}

// RMSprop: v <- rho*v + (1 - rho)g^2
//          centered: a <- rho*a + (1 - rho)g,  den = v - a^2 + eps;  else den = v + eps
//          inc = lr*g/sqrt(den)
//          momentum: m <- momentum*m + inc,  w <- w - lr*wd*w - m;  else w <- w - lr*wd*w - inc
// m is read only when momentum != 0, a only when centered (either may be null otherwise).
template <typename T>
void rmsprop_update(T* w, T* v, T* m, T* a, const T* g, int64_t n, double lr, double rho,
                    double momentum, double epsilon, bool centered, double weight_decay) {
  for (int64_t i = 0; i < n; ++i) {
    const double gi = double(g[i]);
    const double vi = rho * double(v[i]) + (1.0 - rho) * gi * gi;
    v[i] = T(vi);
    double den = vi + epsilon;
    if (centered) {
      const double ai = rho * double(a[i]) + (1.0 - rho) * gi;
      a[i] = T(ai);
      den = vi - ai * ai + epsilon;
    }
    double inc = lr * gi / std::sqrt(den);
    if (momentum != 0) {
      inc = momentum * double(m[i]) + inc;
      m[i] = T(inc);
    }
    const double wi = double(w[i]) - lr * weight_decay * double(w[i]);
    w[i] = T(wi - inc);
  }
}

// Nadam: u_s = b1 (1 - 0.5*0.96^s); u_product = u_1...u_t (given)
//        m <- m + (g - m)(1 - b1);  v <- v + (g^2 - v)(1 - b2)
//        m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product)
//        w <- w - lr*wd*w - lr*m_hat / (sqrt(v / (1 - b2^t)) + eps)
template <typename T>
void nadam_update(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                  double beta_2, double epsilon, double weight_decay, int64_t step,
                  double u_product) {
  const double t = double(step);
  const double u_t = beta_1 * (1.0 - 0.5 * std::pow(0.96, t));
  const double u_next = beta_1 * (1.0 - 0.5 * std::pow(0.96, t + 1.0));
  for (int64_t i = 0; i < n; ++i) {
    const double gi = double(g[i]);
    const double mi = double(m[i]) + (gi - double(m[i])) * (1.0 - beta_1);
    const double vi = double(v[i]) + (gi * gi - double(v[i])) * (1.0 - beta_2);
    m[i] = T(mi);
    v[i] = T(vi);
    const double m_hat =
        u_next * mi / (1.0 - u_product * u_next) + (1.0 - u_t) * gi / (1.0 - u_product);
    const double wi = double(w[i]) - lr * weight_decay * double(w[i]);
    w[i] = T(wi - lr * m_hat / (std::sqrt(vi / (1.0 - std::pow(beta_2, t))) + epsilon));
  }
}

// SGD-G2 (Ayadi & Turinici, arXiv 2002.09304), its three passes around the caller's second
// gradient evaluation:
// probe: saved <- g;  w <- w - h*g   (w becomes the probe point theta - h*g)
template <typename T>
void sgdg2_probe(T* w, T* saved, const T* g, int64_t n, double h) {
  for (int64_t i = 0; i < n; ++i) {
    saved[i] = g[i];
    w[i] = T(double(w[i]) - h * double(g[i]));
  }
}

// dots: dot[0] += sum_i (g_i - p_i) g_i;  dot[1] += sum_i (g_i - p_i)^2   (in double)
template <typename T>
void sgdg2_dots(double* dot, const T* g, const T* p, int64_t n) {
  double d0 = 0, d1 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = double(g[i]) - double(p[i]);
    d0 += e * double(g[i]);
    d1 += e * e;
  }
  dot[0] += d0;
  dot[1] += d1;
}

// step: theta = w + h_probe*saved;  w <- theta - h_new*wd*theta - h_new*saved
template <typename T>
void sgdg2_step(T* w, const T* saved, int64_t n, double h_probe, double h_new,
                double weight_decay) {
  for (int64_t i = 0; i < n; ++i) {
    const double theta = double(w[i]) + h_probe * double(saved[i]);
    w[i] = T(theta - h_new * weight_decay * theta - h_new * double(saved[i]));
  }
}

#define DLFAST_REF_OPTIMIZER(T)                                                                \
  template void sgd_update<T>(T*, T*, const T*, int64_t, T, T, bool, T);                       \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double,  \
                               double, int64_t);                                               \
  template void adamax_update<T>(T*, T*, T*, const T*, int64_t, double, double, double,        \
                                 double, double, int64_t);                                     \
  template void adadelta_update<T>(T*, T*, T*, const T*, int64_t, double, double, double,      \
                                   double);                                                    \
  template void rmsprop_update<T>(T*, T*, T*, T*, const T*, int64_t, double, double, double,   \
                                  double, bool, double);                                       \
  template void nadam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, \
                                double, int64_t, double);                                      \
  template void sgdg2_probe<T>(T*, T*, const T*, int64_t, double);                             \
  template void sgdg2_dots<T>(double*, const T*, const T*, int64_t);                           \
  template void sgdg2_step<T>(T*, const T*, int64_t, double, double, double);
DLFAST_REF_OPTIMIZER(float)
DLFAST_REF_OPTIMIZER(double)
#undef DLFAST_REF_OPTIMIZER

}  // namespace ref
}  // namespace dlfast
