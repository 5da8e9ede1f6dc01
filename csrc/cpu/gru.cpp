// GRU over a whole sequence (Keras 3's GRU, reset_after=True), forward and backward through
// time, compiled once per ISA (see kernels.h). Sizes: N batch, L time steps, D features,
// U units; G = 3U gate columns in Keras's order z, r, h~. x[N,L,D], kernel W[D,G], recurrent
// kernel R[U,G], bias b[2,G] (row 0 the input bias b_in, row 1 the recurrent bias b_rec).
//
//   xz, xr, xh = x_t W + b_in            rz, rr, rh = h_{t-1} R + b_rec     (per gate block)
//   z = sigmoid(xz + rz)   r = sigmoid(xr + rr)   h~ = tanh(xh + r * rh)
//   h_t = z * h_{t-1} + (1 - z) * h~
//
// The same plan as csrc/cpu/lstm.cpp: the input projection of every step is one GEMM into Z;
// the time loop runs in ONE parallel region, each thread its own batch rows through every step
// (no barrier per step), the recurrent product h_{t-1} R by the GEMM micro-kernel against R
// packed once, straight into a register-sized tile, then the gates of that tile. Z keeps per
// step [z, r, h~, rh] (4U columns), which backward reuses.
//
// Backward walks the steps in reverse the same way: with dh the gradient reaching h_t,
//   da_z = dh (h_{t-1} - h~) z (1 - z)    da_h = dh (1 - z) (1 - h~^2)
//   da_r = da_h rh r (1 - r)              d_rh = da_h r
//   dh_{t-1} = dh z + [da_z, da_r, d_rh] R^T
// [da_z, da_r, da_h] is the gradient of the input projection (dW, b_in, dx by large GEMMs
// over all steps); [da_z, da_r, d_rh] that of the recurrent one (dR, b_rec).
#include <omp.h>

#include <cstring>

#include "common/threading.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"
#include "cpu/vmath.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Gates of `rows` batch rows at one step, units [u0, u0 + nr): z (row stride ldz) holds the
// input projections xz, xr, xh and is overwritten with z, r, h~, rh (4U columns); S (row
// stride lds, gate q at q*NR, column u - u0) the recurrent products h_{t-1} R of the tile, or
// null (no h_{t-1}: zeros); b_rec [G] or null; h_prev (row stride ldp) or null; h (row stride
// ldh) gets h_t.
template <typename T>
void cell_forward(T* z, int64_t ldz, const T* S, int64_t lds, const T* b_rec, const T* h_prev,
                  int64_t ldp, T* h, int64_t ldh, int64_t rows, int64_t U, int64_t u0,
                  int64_t nr) {
  using V = vec_t<T>;
  constexpr int LN = Vec<T>::lanes;
  constexpr int64_t NR = Blocking<T>::NR;
  for (int64_t r = 0; r < rows; ++r) {
    T* xz = z + r * ldz + u0;
    T *xr = xz + U, *xh = xz + 2 * U, *rh_out = xz + 3 * U;
    const T* s = S ? S + r * lds : nullptr;
    const T* hp = h_prev ? h_prev + r * ldp + u0 : nullptr;
    T* hr = h + r * ldh + u0;
    const T* bz = b_rec ? b_rec + u0 : nullptr;
    int64_t j = 0;
    for (; j + LN <= nr; j += LN) {
      V rz = s ? vload(s + j) : V{}, rr = s ? vload(s + NR + j) : V{};
      V rh = s ? vload(s + 2 * NR + j) : V{};
      if (bz) {
        rz += vload(bz + j);
        rr += vload(bz + U + j);
        rh += vload(bz + 2 * U + j);
      }
      const V zg = vsigmoid<T>(vload(xz + j) + rz), rg = vsigmoid<T>(vload(xr + j) + rr);
      const V hh = vtanh(vload(xh + j) + rg * rh);
      const V hprev = hp ? vload(hp + j) : V{};
      vstore(xz + j, zg);
      vstore(xr + j, rg);
      vstore(xh + j, hh);
      vstore(rh_out + j, rh);
      vstore(hr + j, zg * hprev + (T(1) - zg) * hh);
    }
    for (; j < nr; ++j) {
      T rz = s ? s[j] : T(0), rr = s ? s[NR + j] : T(0), rh = s ? s[2 * NR + j] : T(0);
      if (bz) rz += bz[j], rr += bz[U + j], rh += bz[2 * U + j];
      const T zg = ssigmoid(xz[j] + rz), rg = ssigmoid(xr[j] + rr);
      const T hh = stanh(xh[j] + rg * rh);
      const T hprev = hp ? hp[j] : T(0);
      xz[j] = zg, xr[j] = rg, xh[j] = hh, rh_out[j] = rh;
      hr[j] = zg * hprev + (T(1) - zg) * hh;
    }
  }
}

// Backward of cell_forward for `rows` rows, all U units. dh (row stride U) holds on entry
// the gradient reaching h_t from step t+1 and leaves with dh z, the direct part of dh_{t-1};
// dh_seq (row stride ld_seq) and dh_last (row stride U) are added when not null. a: Z of the
// step (row stride lda); h_prev (row stride ldp) or null. dX and dRc (row stride ldg) get
// [da_z, da_r, da_h] and [da_z, da_r, d_rh].
template <typename T>
void cell_backward(T* dX, T* dRc, int64_t ldg, T* dh, const T* dh_seq, int64_t ld_seq,
                   const T* dh_last, const T* a, int64_t lda, const T* h_prev, int64_t ldp,
                   int64_t rows, int64_t U) {
  using V = vec_t<T>;
  constexpr int LN = Vec<T>::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    const T* az = a + r * lda;
    const T *ar = az + U, *ah = az + 2 * U, *arh = az + 3 * U;
    T* gx = dX + r * ldg;
    T* gr = dRc + r * ldg;
    T* d = dh + r * U;
    const T* ds = dh_seq ? dh_seq + r * ld_seq : nullptr;
    const T* dl = dh_last ? dh_last + r * U : nullptr;
    const T* hp = h_prev ? h_prev + r * ldp : nullptr;
    int64_t u = 0;
    for (; u + LN <= U; u += LN) {
      V g = vload(d + u);
      if (ds) g += vload(ds + u);
      if (dl) g += vload(dl + u);
      const V zg = vload(az + u), rg = vload(ar + u), hh = vload(ah + u), rh = vload(arh + u);
      const V hprev = hp ? vload(hp + u) : V{};
      const V da_z = g * (hprev - hh) * zg * (T(1) - zg);
      const V da_h = g * (T(1) - zg) * (T(1) - hh * hh);
      const V da_r = da_h * rh * rg * (T(1) - rg);
      vstore(gx + u, da_z), vstore(gx + U + u, da_r), vstore(gx + 2 * U + u, da_h);
      vstore(gr + u, da_z), vstore(gr + U + u, da_r), vstore(gr + 2 * U + u, da_h * rg);
      vstore(d + u, g * zg);
    }
    for (; u < U; ++u) {
      T g = d[u];
      if (ds) g += ds[u];
      if (dl) g += dl[u];
      const T zg = az[u], rg = ar[u], hh = ah[u], rh = arh[u];
      const T hprev = hp ? hp[u] : T(0);
      const T da_z = g * (hprev - hh) * zg * (T(1) - zg);
      const T da_h = g * (T(1) - zg) * (T(1) - hh * hh);
      const T da_r = da_h * rh * rg * (T(1) - rg);
      gx[u] = da_z, gx[U + u] = da_r, gx[2 * U + u] = da_h;
      gr[u] = da_z, gr[U + u] = da_r, gr[2 * U + u] = da_h * rg;
      d[u] = g * zg;
    }
  }
}

// Threads for the time loop: each an equal slice of the batch (see lstm.cpp's loop_threads).
int gru_threads(int64_t N, int64_t L, int64_t U) {
  const int nt = threads_for_work(2.0 * double(N) * double(L) * double(3 * U) * double(U));
  return int(nt < N ? nt : N);
}

inline void slice(int64_t n, int t, int nt, int64_t& lo, int64_t& hi) {
  lo = n * t / nt;
  hi = n * (t + 1) / nt;
}

}  // namespace

template <typename T>
void gru_forward(T* H, T* Z, const T* x, const T* W, const T* R, const T* b, const T* h0,
                 const LstmShape& s) {
  using Bk = Blocking<T>;
  constexpr int64_t NR = Bk::NR, MR = Bk::MR;
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 3 * U, ZW = 4 * U;
  if (N <= 0 || L <= 0 || U <= 0) return;
  // Z[:, 0:G] = x W + b_in for every step at once (row stride 4U; column 3U+ is filled later).
  gemm<T>(Z, x, W, b, N * L, G, D, D, G, ZW, false, false, false, false);
  const T* b_rec = b ? b + G : nullptr;
  const int64_t panels = (U + NR - 1) / NR;
  // Packed R: unit panel p, gate q at Rp + (3p + q) * U * NR, b(k, j) at k * NR + j.
  T* Rp = static_cast<T*>(thread_workspace(kLstmPack, sizeof(T) * 3 * panels * U * NR));
  const int nt = gru_threads(N, L, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t lo, hi;
    slice(panels, t, n_t, lo, hi);
    for (int64_t p = lo; p < hi; ++p)
      for (int q = 0; q < 3; ++q)
        pack_slices<NR>(Rp + (3 * p + q) * U * NR, R + q * U + p * NR, G,
                        min64(NR, U - p * NR), U);
#pragma omp barrier
    int64_t r0, r1;
    slice(N, t, n_t, r0, r1);
    alignas(64) T S[MR * 3 * NR];  // one tile's recurrent products, gate q at q*NR
    for (int64_t step = 0; step < L; ++step) {
      const T* h_prev = step > 0 ? H + (step - 1) * U : h0;
      const int64_t ld = step > 0 ? L * U : U;
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t u0 = p * NR, nr = min64(NR, U - u0);
        for (int64_t n0 = r0; n0 < r1; n0 += MR) {
          const int64_t mr = min64(MR, r1 - n0);
          if (h_prev)
            for (int q = 0; q < 3; ++q)
              micro_rows<T>(U, h_prev + n0 * ld, ld, 1, Rp + (3 * p + q) * U * NR, NR,
                            S + q * NR, 3 * NR, mr, nr, false);
          cell_forward(Z + (n0 * L + step) * ZW, L * ZW, h_prev ? S : nullptr, 3 * NR, b_rec,
                       h_prev ? h_prev + n0 * ld : nullptr, ld, H + (n0 * L + step) * U, L * U,
                       mr, U, u0, nr);
        }
      }
    }
  }
}

template <typename T>
void gru_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL, const T* x,
                  const T* W, const T* R, const T* h0, const T* H, const T* Z,
                  const LstmShape& s, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr int64_t NR = Bk::NR, MR = Bk::MR;
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, G = 3 * U, ZW = 4 * U, NL = N * L;
  if (N <= 0 || L <= 0 || U <= 0) {  // no step: the weight gradients get nothing; = writes 0
    if (!accumulate) {
      std::memset(dW, 0, sizeof(T) * size_t(D * G));
      std::memset(dR, 0, sizeof(T) * size_t(U * G));
      if (db) std::memset(db, 0, sizeof(T) * size_t(2 * G));
    }
    return;
  }
  const int64_t panels = (U + NR - 1) / NR;
  // Workspaces, once per call: dX and dRc of every step (NL x G each); R^T packed (unit panel
  // p at RpT + p * G * NR, b(k, j) = R[p*NR + j, k]); the carried dh (N x U) and the rows
  // h_{t-1} of every (n, t) (NL x U) for dR.
  T* dX = static_cast<T*>(thread_workspace(kLstmGates, sizeof(T) * 2 * NL * G));
  T* dRc = dX + NL * G;
  T* RpT = static_cast<T*>(thread_workspace(kLstmPack, sizeof(T) * panels * G * NR));
  T* dh = static_cast<T*>(thread_workspace(kLstmState, sizeof(T) * (N * U + NL * U)));
  T* HP = dh + N * U;
  const int nt = gru_threads(N, L, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t lo, hi;
    slice(panels, t, n_t, lo, hi);
    for (int64_t p = lo; p < hi; ++p)
      pack_strips<NR>(RpT + p * G * NR, R + p * NR * G, G, min64(NR, U - p * NR), G);
#pragma omp barrier
    int64_t r0, r1;
    slice(N, t, n_t, r0, r1);
    if (r1 > r0) std::memset(dh + r0 * U, 0, sizeof(T) * size_t((r1 - r0) * U));
    for (int64_t step = L - 1; step >= 0; --step) {
      const T* h_prev = step > 0 ? H + (step - 1) * U : h0;
      const int64_t ldp = step > 0 ? L * U : U;
      for (int64_t n0 = r0; n0 < r1; n0 += MR) {
        const int64_t mr = min64(MR, r1 - n0), m = n0 * L + step;
        cell_backward(dX + m * G, dRc + m * G, L * G, dh + n0 * U,
                      dH ? dH + m * U : nullptr, L * U,
                      step == L - 1 && dhL ? dhL + n0 * U : nullptr, Z + m * ZW, L * ZW,
                      h_prev ? h_prev + n0 * ldp : nullptr, ldp, mr, U);
        for (int64_t p = 0; p < panels; ++p)  // dh_{t-1} += [da_z, da_r, d_rh] R^T
          micro_rows<T>(G, dRc + m * G, L * G, 1, RpT + p * G * NR, NR, dh + n0 * U + p * NR,
                        U, mr, min64(NR, U - p * NR), true);
      }
    }
    if (dh0 && r1 > r0) std::memcpy(dh0 + r0 * U, dh + r0 * U, sizeof(T) * size_t((r1 - r0) * U));
    for (int64_t n = r0; n < r1; ++n)  // h_{t-1} of every step, h0 (or zeros) at t = 0
      for (int64_t step = 0; step < L; ++step) {
        T* row = HP + (n * L + step) * U;
        const T* hp = step > 0 ? H + (n * L + step - 1) * U : (h0 ? h0 + n * U : nullptr);
        if (hp)
          std::memcpy(row, hp, sizeof(T) * size_t(U));
        else
          std::memset(row, 0, sizeof(T) * size_t(U));
      }
  }
  // dW = x^T dX, dR = h_prev^T dRc over every step (= or +=, straight into the gradients).
  gemm<T>(dW, x, dX, nullptr, D, G, NL, D, G, G, true, false, accumulate, false);
  gemm<T>(dR, HP, dRc, nullptr, U, G, NL, U, G, G, true, false, accumulate, false);
  if (db) {
    if (!accumulate) std::memset(db, 0, sizeof(T) * size_t(2 * G));
    add_column_sums(db, dX, NL, G);
    add_column_sums(db + G, dRc, NL, G);
  }
  if (dx) gemm<T>(dx, dX, W, nullptr, NL, D, G, G, G, D, false, true, false, false);
}

#define DLFAST_GRU(T)                                                                         \
  template void gru_forward<T>(T*, T*, const T*, const T*, const T*, const T*, const T*,     \
                               const LstmShape&);                                            \
  template void gru_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*,  \
                                const T*, const T*, const T*, const T*, const LstmShape&,    \
                                bool);
DLFAST_GRU(float)
DLFAST_GRU(double)
#undef DLFAST_GRU

}  // namespace DLFAST_ISA
}  // namespace dlfast
