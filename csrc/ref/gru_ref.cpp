// Reference GRU over a sequence (Keras 3's GRU with reset_after=True), forward and backward
// through time: the definitions csrc/cpu/gru.cpp is tested against. Legend (LstmShape):
// x[N,L,D], U units, G = 3U gate columns in Keras's order z, r, h~: kernel W[D,G], recurrent
// kernel R[U,G], bias b[2,G] (row 0 input, row 1 recurrent; null: zeros). Outputs H[N,L,U]
// and Z[N,L,4U] = [z, r, h~, rh] per step. h_{-1} = h0 [N,U] (zeros when null). Sums in double.
//
//   xz, xr, xh = x_t W + b[0];   rz, rr, rh = h_{t-1} R + b[1]
//   z = sigmoid(xz + rz);  r = sigmoid(xr + rr);  h~ = tanh(xh + r rh)
//   h_t = z h_{t-1} + (1 - z) h~
#include <cmath>
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

template <typename T>
void gru_forward(T* H, T* Z, const T* x, const T* W, const T* R, const T* b, const T* h0,
                 const LstmShape& s) {
  const int64_t L = s.L, D = s.D, U = s.U, G = 3 * U;
  std::vector<double> xp(size_t(G), 0.0), rp(size_t(G), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t t = 0; t < L; ++t) {
      const T* hp = t > 0 ? H + (n * L + t - 1) * U : (h0 ? h0 + n * U : nullptr);
      for (int64_t g = 0; g < G; ++g) {
        xp[g] = b ? double(b[g]) : 0.0;
        rp[g] = b ? double(b[G + g]) : 0.0;
        const T* xt = x + (n * L + t) * D;
        for (int64_t d = 0; d < D; ++d) xp[g] += double(xt[d]) * double(W[d * G + g]);
        for (int64_t u = 0; hp && u < U; ++u) rp[g] += double(hp[u]) * double(R[u * G + g]);
      }
      T* z = Z + (n * L + t) * 4 * U;
      for (int64_t u = 0; u < U; ++u) {
        const double zg = 1.0 / (1.0 + std::exp(-(xp[u] + rp[u])));
        const double rg = 1.0 / (1.0 + std::exp(-(xp[U + u] + rp[U + u])));
        const double hh = std::tanh(xp[2 * U + u] + rg * rp[2 * U + u]);
        const double prev = hp ? double(hp[u]) : 0.0;
        z[u] = T(zg), z[U + u] = T(rg), z[2 * U + u] = T(hh), z[3 * U + u] = T(rp[2 * U + u]);
        H[(n * L + t) * U + u] = T(zg * prev + (1.0 - zg) * hh);
      }
    }
}

// Backward through time, each batch row from t = L-1 down to 0, dh = dH_t (+ dhL at the last
// step) + the gradient from step t+1:
//   da_z = dh (h_{t-1} - h~) z (1 - z);  da_h = dh (1 - z) (1 - h~^2);  da_r = da_h rh r (1 - r)
//   dh_{t-1} = dh z + [da_z, da_r, da_h r] R^T
// dW (+= or =) sum x_t^T [da_z, da_r, da_h];  dR (+= or =) sum h_{t-1}^T [da_z, da_r, da_h r];
// db[0] and db[1] (+= or =) the sums of the same two; dx_t (=) [da_z, da_r, da_h] W^T;
// dh0 (=) dh_{-1}. db, dx, dh0 may be null.
template <typename T>
void gru_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL, const T* x,
                  const T* W, const T* R, const T* h0, const T* H, const T* Z,
                  const LstmShape& s, bool accumulate) {
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 3 * U;
  std::vector<double> gW(size_t(D * G), 0.0), gR(size_t(U * G), 0.0), gb(size_t(2 * G), 0.0);
  std::vector<double> dh(size_t(U), 0.0), next(size_t(U), 0.0);
  std::vector<double> ax(size_t(G), 0.0), ar(size_t(G), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t u = 0; u < U; ++u) dh[u] = dhL ? double(dhL[n * U + u]) : 0.0;
    for (int64_t t = L - 1; t >= 0; --t) {
      const T* z = Z + (n * L + t) * 4 * U;
      const T* hp = t > 0 ? H + (n * L + t - 1) * U : (h0 ? h0 + n * U : nullptr);
      for (int64_t u = 0; u < U; ++u) {
        const double g = dh[u] + (dH ? double(dH[(n * L + t) * U + u]) : 0.0);
        const double zg = z[u], rg = z[U + u], hh = z[2 * U + u], rh = z[3 * U + u];
        const double prev = hp ? double(hp[u]) : 0.0;
        ax[u] = ar[u] = g * (prev - hh) * zg * (1 - zg);
        ax[2 * U + u] = g * (1 - zg) * (1 - hh * hh);
        ax[U + u] = ar[U + u] = ax[2 * U + u] * rh * rg * (1 - rg);
        ar[2 * U + u] = ax[2 * U + u] * rg;
        next[u] = g * zg;
      }
      for (int64_t u = 0; u < U; ++u) {
        for (int64_t g = 0; g < G; ++g) next[u] += ar[g] * double(R[u * G + g]);
        for (int64_t g = 0; g < G; ++g) gR[u * G + g] += (hp ? double(hp[u]) : 0.0) * ar[g];
      }
      for (int64_t g = 0; g < G; ++g) {
        gb[g] += ax[g], gb[G + g] += ar[g];
        for (int64_t d = 0; d < D; ++d) gW[d * G + g] += double(x[(n * L + t) * D + d]) * ax[g];
      }
      for (int64_t d = 0; dx && d < D; ++d) {
        double sum = 0;
        for (int64_t g = 0; g < G; ++g) sum += ax[g] * double(W[d * G + g]);
        dx[(n * L + t) * D + d] = T(sum);
      }
      dh = next;
    }
    for (int64_t u = 0; dh0 && u < U; ++u) dh0[n * U + u] = T(dh[u]);
  }
  for (int64_t i = 0; i < D * G; ++i) dW[i] = T((accumulate ? double(dW[i]) : 0.0) + gW[i]);
  for (int64_t i = 0; i < U * G; ++i) dR[i] = T((accumulate ? double(dR[i]) : 0.0) + gR[i]);
  for (int64_t i = 0; db && i < 2 * G; ++i) db[i] = T((accumulate ? double(db[i]) : 0.0) + gb[i]);
}

#define DLFAST_REF_GRU(T)                                                                      \
  template void gru_forward<T>(T*, T*, const T*, const T*, const T*, const T*, const T*,      \
                               const LstmShape&);                                             \
  template void gru_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*,   \
                                const T*, const T*, const T*, const T*, const LstmShape&, bool);
DLFAST_REF_GRU(float)
DLFAST_REF_GRU(double)
#undef DLFAST_REF_GRU

}  // namespace ref
}  // namespace dlfast
