// Reference SimpleRNN (Keras's SimpleRNN, activation tanh) over a sequence, forward and
// backward through time: the definitions csrc/cpu/simple_rnn.cpp is tested against. Legend
// (LstmShape): x[N,L,D], U units, kernel W[D,U], recurrent kernel R[U,U], bias b[U] (null:
// zeros); H[N,L,U] every h_t; h_{-1} = h0 [N,U] (zeros when null). Sums in double.
//
//   h_t = tanh(x_t W + h_{t-1} R + b)
#include <cmath>
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

template <typename T>
void simple_rnn_forward(T* H, const T* x, const T* W, const T* R, const T* b, const T* h0,
                        const LstmShape& s) {
  const int64_t L = s.L, D = s.D, U = s.U;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t t = 0; t < L; ++t) {
      const T* hp = t > 0 ? H + (n * L + t - 1) * U : (h0 ? h0 + n * U : nullptr);
      const T* xt = x + (n * L + t) * D;
      for (int64_t u = 0; u < U; ++u) {
        double a = b ? double(b[u]) : 0.0;
        for (int64_t d = 0; d < D; ++d) a += double(xt[d]) * double(W[d * U + u]);
        for (int64_t k = 0; hp && k < U; ++k) a += double(hp[k]) * double(R[k * U + u]);
        H[(n * L + t) * U + u] = T(std::tanh(a));
      }
    }
}

// Backward through time per batch row, t = L-1 down to 0:
//   da_t = dh_t (1 - h_t^2),  dh_t = dH_t (+ dhL at t = L-1) + da_{t+1} R^T,  dh0 = da_0 R^T
// dW (+= or =) sum x_t^T da_t;  dR (+= or =) sum h_{t-1}^T da_t;  db (+= or =) sum da_t;
// dx_t (=) da_t W^T.  db, dx, dh0 may be null.
template <typename T>
void simple_rnn_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL,
                         const T* x, const T* W, const T* R, const T* h0, const T* H,
                         const LstmShape& s, bool accumulate) {
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U;
  std::vector<double> gW(size_t(D * U), 0.0), gR(size_t(U * U), 0.0), gb(size_t(U), 0.0);
  std::vector<double> dh(size_t(U), 0.0), da(size_t(U), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t u = 0; u < U; ++u) dh[u] = dhL ? double(dhL[n * U + u]) : 0.0;
    for (int64_t t = L - 1; t >= 0; --t) {
      const T* hp = t > 0 ? H + (n * L + t - 1) * U : (h0 ? h0 + n * U : nullptr);
      const T* xt = x + (n * L + t) * D;
      for (int64_t u = 0; u < U; ++u) {
        const double h = H[(n * L + t) * U + u];
        da[u] = (dh[u] + (dH ? double(dH[(n * L + t) * U + u]) : 0.0)) * (1 - h * h);
        gb[u] += da[u];
        for (int64_t d = 0; d < D; ++d) gW[d * U + u] += double(xt[d]) * da[u];
        for (int64_t k = 0; hp && k < U; ++k) gR[k * U + u] += double(hp[k]) * da[u];
      }
      for (int64_t d = 0; dx && d < D; ++d) {
        double sum = 0;
        for (int64_t u = 0; u < U; ++u) sum += da[u] * double(W[d * U + u]);
        dx[(n * L + t) * D + d] = T(sum);
      }
      for (int64_t k = 0; k < U; ++k) {
        dh[k] = 0;
        for (int64_t u = 0; u < U; ++u) dh[k] += da[u] * double(R[k * U + u]);
      }
    }
    for (int64_t u = 0; dh0 && u < U; ++u) dh0[n * U + u] = T(dh[u]);
  }
  for (int64_t i = 0; i < D * U; ++i) dW[i] = T((accumulate ? double(dW[i]) : 0.0) + gW[i]);
  for (int64_t i = 0; i < U * U; ++i) dR[i] = T((accumulate ? double(dR[i]) : 0.0) + gR[i]);
  for (int64_t i = 0; db && i < U; ++i) db[i] = T((accumulate ? double(db[i]) : 0.0) + gb[i]);
}

#define DLFAST_REF_SIMPLE_RNN(T)                                                              \
  template void simple_rnn_forward<T>(T*, const T*, const T*, const T*, const T*, const T*,  \
                                      const LstmShape&);                                     \
  template void simple_rnn_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*,     \
                                       const T*, const T*, const T*, const T*,               \
                                       const LstmShape&, bool);
DLFAST_REF_SIMPLE_RNN(float)
DLFAST_REF_SIMPLE_RNN(double)
#undef DLFAST_REF_SIMPLE_RNN

}  // namespace ref
}  // namespace dlfast
