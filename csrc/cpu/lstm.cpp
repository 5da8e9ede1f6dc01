// LSTM over a whole sequence, forward and backward through time, compiled once per ISA (see
// kernels.h). Sizes: N batch, L time steps, D features, U units; G = 4U gate columns in Keras's
// order i, f, c~, o. x[N,L,D], kernel W[D,G], recurrent kernel R[U,G], bias b[G].
//
//   z_t = x_t W + h_{t-1} R + b          i, f, o = sigmoid(z), c~ = tanh(z)   (per gate block)
//   c_t = f * c_{t-1} + i * c~           h_t = o * tanh(c_t)
//
// Forward: the input projection of every step is one large GEMM (Z = x W + b over N*L rows);
// then the time loop runs inside ONE parallel region. Each thread owns a range of units, packs
// the four gate panels of R for its units once, and per step computes its columns of
// h_{t-1} R straight into Z with the GEMM micro-kernel (h read in place), then the gates and
// the state update for the same rows while they are in L1: one barrier per step, no fork/join,
// no workspace allocated per step. Z keeps the activated gates, which backward reuses.
//
// Backward walks the steps in reverse in one parallel region the same way: per step a thread
// computes dh for its units (dz_{t+1} R^T against its packed panels of R^T, plus dh from
// the output), then the gate gradients dz_t for its units. The weight gradients then take
// three large GEMMs over all steps at once (dW = x^T dz, dR = h_prev^T dz, dx = dz W^T)
// instead of one small GEMM per step.
#include <omp.h>

#include <cstring>
#include <new>

#include "common/threading.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"
#include "cpu/vmath.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Gates and state update of rows [n0, n1) at step t for units [u0, u1). z (the step's
// pre-activations, row stride ldz) is overwritten with the activated gates i, f, c~, o.
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

// Backward of cell_forward for the same block: given dh (row stride lddh) and the carried dc
// (updated in place to dc_{t-1}), writes the pre-activation gradients into dz (row stride ldz).
// a = the activated gates, c = c_t, c_prev = c_{t-1} (null: zeros).
template <typename T>
void cell_backward(T* dz, int64_t ldz, T* dc, int64_t lddc, const T* dh, int64_t lddh,
                   const T* a, int64_t lda, const T* c, int64_t ldc, const T* c_prev,
                   int64_t ldcp, int64_t rows, int64_t U, int64_t u0, int64_t u1) {
  using V = vec_t<T>;
  constexpr int LN = Vec<T>::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    const T* ai = a + r * lda;
    const T *af = ai + U, *ag = ai + 2 * U, *ao = ai + 3 * U;
    T* di = dz + r * ldz;
    T *df = di + U, *dg = di + 2 * U, *dout = di + 3 * U;
    T* dcr = dc + r * lddc;
    const T* dhr = dh + r * lddh;
    const T* cr = c + r * ldc;
    const T* cp = c_prev ? c_prev + r * ldcp : nullptr;
    int64_t u = u0;
    for (; u + LN <= u1; u += LN) {
      const V i = vload(ai + u), f = vload(af + u), g = vload(ag + u), o = vload(ao + u);
      const V tc = vtanh(vload(cr + u)), d_h = vload(dhr + u);
      const V dcell = vload(dcr + u) + d_h * o * (T(1) - tc * tc);
      const V cprev = cp ? vload(cp + u) : V{};
      vstore(di + u, dcell * g * i * (T(1) - i));
      vstore(df + u, dcell * cprev * f * (T(1) - f));
      vstore(dg + u, dcell * i * (T(1) - g * g));
      vstore(dout + u, d_h * tc * o * (T(1) - o));
      vstore(dcr + u, dcell * f);
    }
    for (; u < u1; ++u) {
      const T i = ai[u], f = af[u], g = ag[u], o = ao[u];
      const T tc = stanh(cr[u]), d_h = dhr[u];
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

// Threads for the time loop: each step is one small GEMM (2*N*G*U flops) and a barrier, so a
// second thread needs about half a MFLOP per step to pay for itself, and one unit panel each.
template <typename T>
int loop_threads(int64_t N, int64_t U) {
  const int64_t panels = (U + Blocking<T>::NR - 1) / Blocking<T>::NR;
  const int nt = threads_for_work(4.0 * 2.0 * double(N) * double(4 * U) * double(U));
  return int(nt < panels ? nt : panels);
}

// This thread's unit panels [p0, p1) of `panels`, for thread t of nt.
inline void thread_panels(int64_t panels, int t, int nt, int64_t& p0, int64_t& p1) {
  p0 = panels * t / nt;
  p1 = panels * (t + 1) / nt;
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
  const int nt = loop_threads<T>(N, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t p0, p1;
    thread_panels(panels, t, n_t, p0, p1);
    for (int64_t p = p0; p < p1; ++p)
      for (int q = 0; q < 4; ++q)
        pack_slices<NR>(Rp + (4 * p + q) * U * NR, R + q * U + p * NR, G,
                        min64(NR, U - p * NR), U);
    for (int64_t step = 0; step < L; ++step) {
      // h_{t-1}: row n at h_prev + n * ld_h (null: h0 = 0, nothing to add).
      const T* h_prev = step > 0 ? H + (step - 1) * U : h0;
      const int64_t ld_h = step > 0 ? L * U : U;
      const T* c_prev = step > 0 ? C + (step - 1) * U : c0;
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t u0 = p * NR, nr = min64(NR, U - u0);
        for (int64_t n0 = 0; n0 < N; n0 += MR) {
          const int64_t mr = min64(MR, N - n0);
          T* z = Z + (n0 * L + step) * G;
          if (h_prev)
            for (int q = 0; q < 4; ++q)
              micro_strided<T>(U, h_prev + n0 * ld_h, ld_h, 1, Rp + (4 * p + q) * U * NR, NR,
                               z + q * U + u0, L * G, mr, nr, true, nullptr, false);
          cell_forward(z, L * G, C + (n0 * L + step) * U, H + (n0 * L + step) * U, L * U,
                       c_prev ? c_prev + n0 * ld_h : nullptr, ld_h, mr, U, u0, u0 + nr);
        }
      }
#pragma omp barrier
    }
  }
}

template <typename T>
void lstm_backward(T* dx, T* dW, T* dR, T* db, T* dh0, T* dc0, const T* dH, const T* dhL,
                   const T* dcL, const T* x, const T* W, const T* R, const T* h0, const T* c0,
                   const T* H, const T* C, const T* Z, const LstmShape& s, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr int64_t NR = Bk::NR, MR = Bk::MR;
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 4 * U;
  if (N <= 0 || L <= 0 || U <= 0) return;
  const int64_t panels = (U + NR - 1) / NR;
  // Workspaces, once per call: dz for every step (N*L x G), the packed R^T panels (unit panel
  // p at RpT + p * G * NR: b(k, j) = R[p*NR + j, k] at k * NR + j), the carried dc (N x U) and
  // h_{t-1} of every step (N*L x U) for dR.
  T* dZ = static_cast<T*>(thread_workspace(kLstmGates, sizeof(T) * N * L * G));
  T* RpT = static_cast<T*>(thread_workspace(kLstmPack, sizeof(T) * panels * G * NR));
  T* state = static_cast<T*>(thread_workspace(kLstmState, sizeof(T) * (N * U + N * L * U)));
  T* dc = state;
  T* Hprev = state + N * U;
  const int nt = loop_threads<T>(N, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t p0, p1;
    thread_panels(panels, t, n_t, p0, p1);
    alignas(64) T dh[MR * NR];  // dh of one row panel x unit panel, row stride NR
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t u0 = p * NR, nr = min64(NR, U - u0);
      pack_strips<NR>(RpT + p * G * NR, R + u0 * G, G, nr, G);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t u = u0; u < u0 + nr; ++u) dc[n * U + u] = dcL ? dcL[n * U + u] : T(0);
    }
    for (int64_t step = L - 1; step >= 0; --step) {
      const T* c_prev = step > 0 ? C + (step - 1) * U : c0;
      const int64_t ld_cp = step > 0 ? L * U : U;
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t u0 = p * NR, nr = min64(NR, U - u0);
        for (int64_t n0 = 0; n0 < N; n0 += MR) {
          const int64_t mr = min64(MR, N - n0);
          // dh = dz_{t+1} R^T (this panel's units) + dH_t + dh_L (last step).
          if (step < L - 1)
            micro_strided<T>(G, dZ + (n0 * L + step + 1) * G, L * G, 1, RpT + p * G * NR, NR,
                             dh, NR, mr, nr, false, nullptr, false);
          for (int64_t i = 0; i < mr; ++i)
            for (int64_t j = 0; j < nr; ++j) {
              const int64_t row = n0 + i, u = u0 + j;
              T v = step < L - 1 ? dh[i * NR + j] : T(0);
              if (dH) v += dH[(row * L + step) * U + u];
              if (step == L - 1 && dhL) v += dhL[row * U + u];
              dh[i * NR + j] = v;
            }
          cell_backward(dZ + (n0 * L + step) * G, L * G, dc + n0 * U, U, dh - u0, NR,
                        Z + (n0 * L + step) * G, L * G, C + (n0 * L + step) * U, L * U,
                        c_prev ? c_prev + n0 * ld_cp : nullptr, ld_cp, mr, U, u0, u0 + nr);
        }
      }
#pragma omp barrier
    }
    // Gradients of the initial state: dh0 = dz_0 R^T, dc0 = the carried dc.
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t u0 = p * NR, nr = min64(NR, U - u0);
      for (int64_t n0 = 0; n0 < N; n0 += MR) {
        const int64_t mr = min64(MR, N - n0);
        if (dh0)
          micro_strided<T>(G, dZ + n0 * L * G, L * G, 1, RpT + p * G * NR, NR,
                           dh0 + n0 * U + u0, U, mr, nr, false, nullptr, false);
      }
      if (dc0)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t u = u0; u < u0 + nr; ++u) dc0[n * U + u] = dc[n * U + u];
    }
  }
  // h_{t-1} for every (n, t): h0 (or zeros) then h_0 .. h_{L-2}.
  for (int64_t n = 0; n < N; ++n) {
    T* hp = Hprev + n * L * U;
    if (h0)
      std::memcpy(hp, h0 + n * U, sizeof(T) * U);
    else
      std::memset(hp, 0, sizeof(T) * U);
    std::memcpy(hp + U, H + n * L * U, sizeof(T) * (L - 1) * U);
  }
  const int64_t NL = N * L;
  gemm<T>(dW, x, dZ, nullptr, D, G, NL, D, G, G, true, false, accumulate, false);
  gemm<T>(dR, Hprev, dZ, nullptr, U, G, NL, U, G, G, true, false, accumulate, false);
  if (db) {
    if (!accumulate) std::memset(db, 0, sizeof(T) * G);
    for (int64_t r = 0; r < NL; ++r) {
      const T* dz = dZ + r * G;
      for (int64_t j = 0; j < G; ++j) db[j] += dz[j];
    }
  }
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
