// Reference LSTM over a sequence, forward and backward through time (the definitions
// csrc/cpu/lstm.cpp is tested against). Legend (LstmShape): x[N,L,D] (batch, steps, features),
// U units, G = 4U gate columns in Keras's order i, f, c~, o: kernel W[D,G], recurrent kernel
// R[U,G], bias b[G]. Outputs H, C [N,L,U] (h_t, c_t) and Z[N,L,G] (the activated gates).
// h_{-1} = h0, c_{-1} = c0 [N,U] (zeros when null). Sums in double.
//
//   z_t = x_t W + h_{t-1} R + b;   i, f, o = sigmoid(z), c~ = tanh(z)   (per gate block)
//   c_t = f c_{t-1} + i c~;        h_t = o tanh(c_t)
#include <cmath>
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {
namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

}  // namespace

// The equations above, step by step for each batch row: Z (=) the activated gates, C and H (=).
template <typename T>
void lstm_forward(T* H, T* C, T* Z, const T* x, const T* W, const T* R, const T* b,
                  const T* h0, const T* c0, const LstmShape& s) {
  const int64_t L = s.L, D = s.D, U = s.U, G = 4 * U;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t t = 0; t < L; ++t) {
      const T* h_prev = t > 0 ? H + (n * L + t - 1) * U : (h0 ? h0 + n * U : nullptr);
      const T* c_prev = t > 0 ? C + (n * L + t - 1) * U : (c0 ? c0 + n * U : nullptr);
      const T* xt = x + (n * L + t) * D;
      T* z = Z + (n * L + t) * G;
      for (int64_t g = 0; g < G; ++g) {
        double sum = b ? double(b[g]) : 0.0;
        for (int64_t d = 0; d < D; ++d) sum += double(xt[d]) * double(W[d * G + g]);
        for (int64_t u = 0; h_prev && u < U; ++u) sum += double(h_prev[u]) * double(R[u * G + g]);
        const bool candidate = g >= 2 * U && g < 3 * U;  // the c~ block takes tanh
        z[g] = T(candidate ? std::tanh(sum) : sigmoid(sum));
      }
      for (int64_t u = 0; u < U; ++u) {
        const double i = z[u], f = z[U + u], cc = z[2 * U + u], o = z[3 * U + u];
        const double c = f * (c_prev ? double(c_prev[u]) : 0.0) + i * cc;
        C[(n * L + t) * U + u] = T(c);
        H[(n * L + t) * U + u] = T(o * std::tanh(c));
      }
    }
}

namespace {

// Backward through time of batch row n, from t = L-1 down to 0, with dc carried from step t+1
// (dcL at the last step) and dh = dH_t (+ dhL at the last step) + dz_{t+1} R^T:
//   dcell = dc + dh o (1 - tanh(c_t)^2)
//   dz_i = dcell c~ i (1 - i);  dz_f = dcell c_{t-1} f (1 - f);  dz_c~ = dcell i (1 - c~^2)
//   dz_o = dh tanh(c_t) o (1 - o);  dc <- dcell f
// dZ[n,t,:] (=) dz_t; dh0[n] (=) dz_0 R^T and dc0[n] (=) the last dc, when not null.
template <typename T>
void backward_row(double* dZ, T* dh0, T* dc0, const T* dH, const T* dhL, const T* dcL,
                  const T* R, const T* c0, const T* C, const T* Z, const LstmShape& s,
                  int64_t n) {
  const int64_t L = s.L, U = s.U, G = 4 * U;
  std::vector<double> dc(size_t(U), 0.0), dh(size_t(U), 0.0);
  for (int64_t u = 0; u < U; ++u) dc[u] = dcL ? double(dcL[n * U + u]) : 0.0;
  for (int64_t t = L - 1; t >= -1; --t) {
    for (int64_t u = 0; u < U; ++u) {  // dh_t: from the output and from step t+1
      double v = t >= 0 && dH ? double(dH[(n * L + t) * U + u]) : 0.0;
      if (t == L - 1 && dhL) v += double(dhL[n * U + u]);
      for (int64_t g = 0; t + 1 < L && g < G; ++g)
        v += dZ[(n * L + t + 1) * G + g] * double(R[u * G + g]);
      dh[u] = v;
    }
    if (t < 0) break;  // dh is dh_{-1} = dh0 now
    const T* z = Z + (n * L + t) * G;
    const T* c_prev = t > 0 ? C + (n * L + t - 1) * U : (c0 ? c0 + n * U : nullptr);
    double* dz = dZ + (n * L + t) * G;
    for (int64_t u = 0; u < U; ++u) {
      const double i = z[u], f = z[U + u], cc = z[2 * U + u], o = z[3 * U + u];
      const double tc = std::tanh(double(C[(n * L + t) * U + u]));
      const double cp = c_prev ? double(c_prev[u]) : 0.0;
      const double dcell = dc[u] + dh[u] * o * (1.0 - tc * tc);
      dz[u] = dcell * cc * i * (1.0 - i);
      dz[U + u] = dcell * cp * f * (1.0 - f);
      dz[2 * U + u] = dcell * i * (1.0 - cc * cc);
      dz[3 * U + u] = dh[u] * tc * o * (1.0 - o);
      dc[u] = dcell * f;
    }
  }
  for (int64_t u = 0; u < U; ++u) {
    if (dh0) dh0[n * U + u] = T(dh[u]);
    if (dc0) dc0[n * U + u] = T(dc[u]);
  }
}

}  // namespace

// dz_t of every (n, t) by backward_row, then, over every (n, t):
// dW (+= or =) sum x_t^T dz_t;  dR (+= or =) sum h_{t-1}^T dz_t;  db (+= or =) sum dz_t
// (db may be null);  dx_t (=) dz_t W^T (dx may be null).
template <typename T>
void lstm_backward(T* dx, T* dW, T* dR, T* db, T* dh0, T* dc0, const T* dH, const T* dhL,
                   const T* dcL, const T* x, const T* W, const T* R, const T* h0, const T* c0,
                   const T* H, const T* C, const T* Z, const LstmShape& s, bool accumulate) {
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 4 * U;
  std::vector<double> dZ(size_t(N * L * G), 0.0);
  for (int64_t n = 0; n < N; ++n)
    backward_row(dZ.data(), dh0, dc0, dH, dhL, dcL, R, c0, C, Z, s, n);
  // The weight gradients over every (n, t); h_{t-1} is H of step t-1, or h0 (or 0) at t = 0.
  auto h_prev = [&](int64_t n, int64_t t, int64_t u) {
    if (t > 0) return double(H[(n * L + t - 1) * U + u]);
    return h0 ? double(h0[n * U + u]) : 0.0;
  };
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t d = 0; d < D; ++d) {
      double sum = accumulate ? double(dW[d * G + g]) : 0.0;
      for (int64_t m = 0; m < N * L; ++m) sum += double(x[m * D + d]) * dZ[size_t(m * G + g)];
      dW[d * G + g] = T(sum);
    }
    for (int64_t u = 0; u < U; ++u) {
      double sum = accumulate ? double(dR[u * G + g]) : 0.0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < L; ++t) sum += h_prev(n, t, u) * dZ[size_t((n * L + t) * G + g)];
      dR[u * G + g] = T(sum);
    }
    if (db) {
      double sum = accumulate ? double(db[g]) : 0.0;
      for (int64_t m = 0; m < N * L; ++m) sum += dZ[size_t(m * G + g)];
      db[g] = T(sum);
    }
  }
  for (int64_t m = 0; dx && m < N * L; ++m)
    for (int64_t d = 0; d < D; ++d) {
      double sum = 0;
      for (int64_t g = 0; g < G; ++g) sum += dZ[size_t(m * G + g)] * double(W[d * G + g]);
      dx[m * D + d] = T(sum);
    }
}

#define DLFAST_REF_LSTM(T)                                                                    \
  template void lstm_forward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, \
                                const T*, const LstmShape&);                                  \
  template void lstm_backward<T>(T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,        \
                                 const T*, const T*, const T*, const T*, const T*, const T*,  \
                                 const T*, const T*, const LstmShape&, bool);
DLFAST_REF_LSTM(float)
DLFAST_REF_LSTM(double)
#undef DLFAST_REF_LSTM

}  // namespace ref
}  // namespace dlfast
