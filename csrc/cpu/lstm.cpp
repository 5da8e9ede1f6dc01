// LSTM over a whole sequence, forward and backward through time, compiled once per ISA (see
// kernels.h). Sizes: N batch, L time steps, D features, U units; G = 4U gate columns in Keras's
// order i, f, c~, o. x[N,L,D], kernel W[D,G], recurrent kernel R[U,G], bias b[G].
//
//   z_t = x_t W + h_{t-1} R + b          i, f, o = sigmoid(z), c~ = tanh(z)   (per gate block)
//   c_t = f * c_{t-1} + i * c~           h_t = o * tanh(c_t)
//
// Forward: the input projection of every step is one large GEMM (Z = x W + b over N*L rows);
// then the time loop runs inside ONE parallel region. R is packed once (the four gate panels
// of each unit panel); each thread takes its own rows of the batch through every step, per
// step computing h_{t-1} R straight into Z with the GEMM micro-kernel (h read in place), then
// the gates and the state update of the same tile while it is in L1. Batch rows never depend
// on each other, so there is no barrier per step and no workspace allocated per step. Z keeps
// the activated gates, which backward reuses.
//
// Backward walks the steps in reverse the same way, each thread its rows: dh = dz_{t+1} R^T
// (against R^T packed once) plus the output's gradient, then the gate gradients dz_t. The
// weight gradients then take large GEMMs over all steps at once ([dW; dR] = [x, h_prev]^T dz
// as one product, dx = dz W^T) instead of small GEMMs per step.
#include <omp.h>

#include <cstring>

#include "common/threading.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"
#include "cpu/vmath.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Gates and state update of `rows` batch rows at one step, units [u0, u1): z (the step's
// pre-activations, row stride ldz) is overwritten with the activated gates i, f, c~, o; c and
// h (row stride lds) get c_t and h_t; c_prev (row stride ldcp) is c_{t-1}, null for zeros.
template <typename T>
void cell_forward(T* z, int64_t ldz, T* c, T* h, int64_t lds, const T* c_prev, int64_t ldcp,
                  int64_t rows, int64_t U, int64_t u0, int64_t u1) {
  using V = vec_t<T>;
  constexpr int LN = Vec<T>::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    T* zi = z + r * ldz;
    T* zf = zi + U;
    T* zg = zi + 2 * U;
    T* zo = zi + 3 * U;
    T* cr = c + r * lds;
    T* hr = h + r * lds;
    const T* cp = c_prev ? c_prev + r * ldcp : nullptr;
    int64_t u = u0;
    for (; u + LN <= u1; u += LN) {
      const V i = vsigmoid<T>(vload(zi + u)), f = vsigmoid<T>(vload(zf + u));
      const V g = vtanh(vload(zg + u)), o = vsigmoid<T>(vload(zo + u));
      const V cn = cp ? f * vload(cp + u) + i * g : i * g;
      vstore(zi + u, i);
      vstore(zf + u, f);
      vstore(zg + u, g);
      vstore(zo + u, o);
      vstore(cr + u, cn);
      vstore(hr + u, o * vtanh(cn));
    }
    for (; u < u1; ++u) {
      const T i = ssigmoid(zi[u]), f = ssigmoid(zf[u]), g = stanh(zg[u]), o = ssigmoid(zo[u]);
      const T cn = cp ? f * cp[u] + i * g : i * g;
      zi[u] = i, zf[u] = f, zg[u] = g, zo[u] = o;
      cr[u] = cn;
      hr[u] = o * stanh(cn);
    }
  }
}

// Backward of cell_forward for the same block: the gradient reaching h_t is the sum of
// dh_rec (from step t+1, row stride ld_rec), dh_seq (the output's, row stride ld_seq) and
// dh_last (the last h's, row stride U), each possibly null; dc (row stride U) carries the cell
// gradient and is updated in place to dc_{t-1}. Writes the pre-activation gradients into dz
// (row stride ldz). a = the activated gates, c = c_t, c_prev = c_{t-1} (null: zeros).
template <typename T>
void cell_backward(T* dz, int64_t ldz, T* dc, const T* dh_rec, int64_t ld_rec,
                   const T* dh_seq, int64_t ld_seq, const T* dh_last, const T* a, int64_t lda,
                   const T* c, int64_t ldc, const T* c_prev, int64_t ldcp, int64_t rows,
                   int64_t U) {
  using V = vec_t<T>;
  constexpr int LN = Vec<T>::lanes;
  auto dh_at = [&](int64_t r, int64_t u) {
    T v = dh_rec ? dh_rec[r * ld_rec + u] : T(0);
    if (dh_seq) v += dh_seq[r * ld_seq + u];
    if (dh_last) v += dh_last[r * U + u];
    return v;
  };
  auto dh_vec = [&](int64_t r, int64_t u) {
    V v = dh_rec ? vload(dh_rec + r * ld_rec + u) : V{};
    if (dh_seq) v += vload(dh_seq + r * ld_seq + u);
    if (dh_last) v += vload(dh_last + r * U + u);
    return v;
  };
  for (int64_t r = 0; r < rows; ++r) {
    const T* ai = a + r * lda;
    const T *af = ai + U, *ag = ai + 2 * U, *ao = ai + 3 * U;
    T* di = dz + r * ldz;
    T *df = di + U, *dg = di + 2 * U, *dout = di + 3 * U;
    T* dcr = dc + r * U;
    const T* cr = c + r * ldc;
    const T* cp = c_prev ? c_prev + r * ldcp : nullptr;
    int64_t u = 0;
    for (; u + LN <= U; u += LN) {
      const V i = vload(ai + u), f = vload(af + u), g = vload(ag + u), o = vload(ao + u);
      const V tc = vtanh(vload(cr + u)), d_h = dh_vec(r, u);
      const V dcell = vload(dcr + u) + d_h * o * (T(1) - tc * tc);
      const V cprev = cp ? vload(cp + u) : V{};
      vstore(di + u, dcell * g * i * (T(1) - i));
      vstore(df + u, dcell * cprev * f * (T(1) - f));
      vstore(dg + u, dcell * i * (T(1) - g * g));
      vstore(dout + u, d_h * tc * o * (T(1) - o));
      vstore(dcr + u, dcell * f);
    }
    for (; u < U; ++u) {
      const T i = ai[u], f = af[u], g = ag[u], o = ao[u];
      const T tc = stanh(cr[u]), d_h = dh_at(r, u);
      const T dcell = dcr[u] + d_h * o * (T(1) - tc * tc);
      const T cprev = cp ? cp[u] : T(0);
      di[u] = dcell * g * i * (T(1) - i);
      df[u] = dcell * cprev * f * (T(1) - f);
      dg[u] = dcell * i * (T(1) - g * g);
      dout[u] = d_h * tc * o * (T(1) - o);
      dcr[u] = dcell * f;
    }
  }
}

// Threads for the time loop. The batch rows are independent, so each thread takes an equal
// slice of the batch through every step on its own: no barrier per step, no h shared between
// cores (a per-step barrier, with the units split instead, measured 20x slower on a loaded
// machine, where every step waited for a descheduled thread). A slice's last tile of rows
// goes through a smaller register tile (micro_rows), so uneven slices cost in proportion.
template <typename T>
int loop_threads(int64_t N, int64_t L, int64_t U) {
  const int nt = threads_for_work(2.0 * double(N) * double(L) * double(4 * U) * double(U));
  return int(nt < N ? nt : N);
}

// Slice t of nt of [0, n).
inline void thread_slice(int64_t n, int t, int nt, int64_t& lo, int64_t& hi) {
  lo = n * t / nt;
  hi = n * (t + 1) / nt;
}

}  // namespace

template <typename T>
void lstm_forward(T* H, T* C, T* Z, const T* x, const T* W, const T* R, const T* b,
                  const T* h0, const T* c0, const LstmShape& s) {
  using Bk = Blocking<T>;
  constexpr int64_t NR = Bk::NR, MR = Bk::MR;
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 4 * U;
  if (N <= 0 || L <= 0 || U <= 0) return;
  // Z = x W + b for every step at once: N*L rows of G pre-activations.
  gemm<T>(Z, x, W, b, N * L, G, D, D, G, G, false, false, false, false);

  const int64_t panels = (U + NR - 1) / NR;
  // Packed R: unit panel p, gate q at Rp + (4p + q) * U * NR, b(k, j) at k * NR + j.
  T* Rp = static_cast<T*>(thread_workspace(kLstmPack, sizeof(T) * 4 * panels * U * NR));
  const int nt = loop_threads<T>(N, L, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t lo, hi;
    thread_slice(panels, t, n_t, lo, hi);  // each thread packs some panels, all use all
    for (int64_t p = lo; p < hi; ++p)
      for (int q = 0; q < 4; ++q)
        pack_slices<NR>(Rp + (4 * p + q) * U * NR, R + q * U + p * NR, G,
                        min64(NR, U - p * NR), U);
#pragma omp barrier
    int64_t r0, r1;
    thread_slice(N, t, n_t, r0, r1);  // this thread's batch rows
    for (int64_t step = 0; step < L; ++step) {
      // h_{t-1}, c_{t-1}: row n at + n * ld (null at step 0 without an initial state: zeros).
      const T* h_prev = step > 0 ? H + (step - 1) * U : h0;
      const T* c_prev = step > 0 ? C + (step - 1) * U : c0;
      const int64_t ld = step > 0 ? L * U : U;
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t u0 = p * NR, nr = min64(NR, U - u0);
        for (int64_t n0 = r0; n0 < r1; n0 += MR) {
          const int64_t mr = min64(MR, r1 - n0);
          T* z = Z + (n0 * L + step) * G;
          if (h_prev)
            for (int q = 0; q < 4; ++q)
              micro_rows<T>(U, h_prev + n0 * ld, ld, 1, Rp + (4 * p + q) * U * NR, NR,
                            z + q * U + u0, L * G, mr, nr, true);
          cell_forward(z, L * G, C + (n0 * L + step) * U, H + (n0 * L + step) * U, L * U,
                       c_prev ? c_prev + n0 * ld : nullptr, ld, mr, U, u0, u0 + nr);
        }
      }
    }
  }
}

template <typename T>
void lstm_backward(T* dx, T* dW, T* dR, T* db, T* dh0, T* dc0, const T* dH, const T* dhL,
                   const T* dcL, const T* x, const T* W, const T* R, const T* h0, const T* c0,
                   const T* H, const T* C, const T* Z, const LstmShape& s, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr int64_t NR = Bk::NR, MR = Bk::MR;
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 4 * U, NL = N * L, K = D + U + 1;
  if (N <= 0 || L <= 0 || U <= 0) {  // no step: the weight gradients get nothing; = writes 0
    if (!accumulate) {
      for (int64_t i = 0; i < D * G; ++i) dW[i] = T(0);
      for (int64_t i = 0; i < U * G; ++i) dR[i] = T(0);
      if (db)
        for (int64_t i = 0; i < G; ++i) db[i] = T(0);
    }
    return;
  }
  const int64_t panels = (U + NR - 1) / NR;
  // Workspaces, once per call: dz of every step (N*L x G); the packed R^T panels (unit panel
  // p at RpT + p * G * NR, b(k, j) = R[p*NR + j, k] at k * NR + j); the carried dc (N x U) and
  // dh from the next step (N x U); the rows [x_t, h_{t-1}, 1] of every step (N*L x K,
  // K = D+U+1) and their product with dz (K x G), which holds dW over dR over db.
  T* dZ = static_cast<T*>(thread_workspace(kLstmGates, sizeof(T) * NL * G));
  T* RpT = static_cast<T*>(thread_workspace(kLstmPack, sizeof(T) * panels * G * NR));
  T* state = static_cast<T*>(
      thread_workspace(kLstmState, sizeof(T) * (2 * N * U + NL * K + K * G)));
  T* dc = state;
  T* dh = dc + N * U;
  T* XH = dh + N * U;
  T* dWRb = XH + NL * K;
  const int nt = loop_threads<T>(N, L, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t lo, hi;
    thread_slice(panels, t, n_t, lo, hi);
    for (int64_t p = lo; p < hi; ++p)
      pack_strips<NR>(RpT + p * G * NR, R + p * NR * G, G, min64(NR, U - p * NR), G);
#pragma omp barrier
    int64_t r0, r1;
    thread_slice(N, t, n_t, r0, r1);
    for (int64_t n = r0; n < r1; ++n)
      for (int64_t u = 0; u < U; ++u) dc[n * U + u] = dcL ? dcL[n * U + u] : T(0);
    // dh_{t} from step t+1: dh = dz_{t+1} R^T for this thread's rows, every unit panel.
    auto recurrent_dh = [&](T* out, int64_t ld_out, int64_t step_next) {
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t u0 = p * NR, nr = min64(NR, U - u0);
        for (int64_t n0 = r0; n0 < r1; n0 += MR)
          micro_rows<T>(G, dZ + (n0 * L + step_next) * G, L * G, 1, RpT + p * G * NR, NR,
                        out + n0 * ld_out + u0, ld_out, min64(MR, r1 - n0), nr, false);
      }
    };
    for (int64_t step = L - 1; step >= 0; --step) {
      if (step < L - 1) recurrent_dh(dh, U, step + 1);
      const T* c_prev = step > 0 ? C + (step - 1) * U : c0;
      const int64_t ld_cp = step > 0 ? L * U : U;
      for (int64_t n0 = r0; n0 < r1; n0 += MR) {
        const int64_t mr = min64(MR, r1 - n0);
        cell_backward(dZ + (n0 * L + step) * G, L * G, dc + n0 * U,
                      step < L - 1 ? dh + n0 * U : nullptr, U,
                      dH ? dH + (n0 * L + step) * U : nullptr, L * U,
                      step == L - 1 && dhL ? dhL + n0 * U : nullptr, Z + (n0 * L + step) * G,
                      L * G, C + (n0 * L + step) * U, L * U,
                      c_prev ? c_prev + n0 * ld_cp : nullptr, ld_cp, mr, U);
      }
    }
    // Gradients of the initial state: dh0 = dz_0 R^T, dc0 = the carried dc.
    if (dh0) recurrent_dh(dh0, U, 0);
    if (dc0)
      for (int64_t n = r0; n < r1; ++n)
        for (int64_t u = 0; u < U; ++u) dc0[n * U + u] = dc[n * U + u];
    // Rows [x_t, h_{t-1}, 1] of every (n, t), h_{-1} = h0 (or zeros), for the weight
    // gradients (the 1 makes the product's last row the bias gradient, the sum of dz).
    for (int64_t n = r0; n < r1; ++n)
      for (int64_t step = 0; step < L; ++step) {
        T* row = XH + (n * L + step) * K;
        row[D + U] = T(1);
        std::memcpy(row, x + (n * L + step) * D, sizeof(T) * D);
        const T* hp = step > 0 ? H + (n * L + step - 1) * U : (h0 ? h0 + n * U : nullptr);
        if (hp)
          std::memcpy(row + D, hp, sizeof(T) * U);
        else
          std::memset(row + D, 0, sizeof(T) * U);
      }
  }
  // [dW; dR; db] = [x, h_prev, 1]^T dz: one GEMM over every step (dz packed once for all).
  gemm<T>(dWRb, XH, dZ, nullptr, K, G, NL, K, G, G, true, false, false, false);
  auto store = [&](T* dst, const T* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = accumulate ? dst[i] + src[i] : src[i];
  };
  store(dW, dWRb, D * G);
  store(dR, dWRb + D * G, U * G);
  if (db) store(db, dWRb + (D + U) * G, G);
  if (dx) gemm<T>(dx, dZ, W, nullptr, NL, D, G, G, G, D, false, true, false, false);
}

template void lstm_forward<float>(float*, float*, float*, const float*, const float*,
                                  const float*, const float*, const float*, const float*,
                                  const LstmShape&);
template void lstm_forward<double>(double*, double*, double*, const double*, const double*,
                                   const double*, const double*, const double*, const double*,
                                   const LstmShape&);
template void lstm_backward<float>(float*, float*, float*, float*, float*, float*, const float*,
                                   const float*, const float*, const float*, const float*,
                                   const float*, const float*, const float*, const float*,
                                   const float*, const float*, const LstmShape&, bool);
template void lstm_backward<double>(double*, double*, double*, double*, double*, double*,
                                    const double*, const double*, const double*, const double*,
                                    const double*, const double*, const double*, const double*,
                                    const double*, const double*, const double*,
                                    const LstmShape&, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
