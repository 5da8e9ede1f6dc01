// SimpleRNN (Keras's SimpleRNN, activation tanh) over a whole sequence, forward and backward
// through time, compiled once per ISA (see kernels.h). Sizes: N batch, L time steps,
// D features, U units. x[N,L,D], kernel W[D,U], recurrent kernel R[U,U], bias b[U].
//
//   h_t = tanh(x_t W + h_{t-1} R + b)
//
// The plan of csrc/cpu/lstm.cpp and gru.cpp: the input projection of every step is one GEMM
// straight into H; one parallel region for the time loop, each thread its own batch rows
// through every step; per step h_{t-1} R is added into the step's rows of H by the GEMM
// micro-kernel against R packed once, and tanh applied to the tile in place.
// Backward: da_t = dh_t (1 - h_t^2) with dh_t = dH_t (+ dhL at the last step) + da_{t+1} R^T,
// then dW = x^T da, dR = h_prev^T da, db = colsum(da), dx = da W^T as GEMMs over all steps.
#include <omp.h>

#include <cstring>

#include "common/threading.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"
#include "cpu/vmath.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// tanh in place on `rows` rows (row stride ld) of n columns.
template <typename T>
void tanh_rows(T* h, int64_t ld, int64_t rows, int64_t n) {
  constexpr int LN = Vec<T>::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    T* p = h + r * ld;
    int64_t j = 0;
    for (; j + LN <= n; j += LN) vstore(p + j, vtanh(vload(p + j)));
    for (; j < n; ++j) p[j] = stanh(p[j]);
  }
}

// da (row stride ldg) = (dh + dh_seq + dh_last) (1 - h^2) for `rows` rows of U units; dh (row
// stride U) the gradient from step t+1, dh_seq (row stride ld_seq) and dh_last (row stride U)
// added when not null; h (row stride ldh) the step's output.
template <typename T>
void cell_backward(T* da, int64_t ldg, const T* dh, const T* dh_seq, int64_t ld_seq,
                   const T* dh_last, const T* h, int64_t ldh, int64_t rows, int64_t U) {
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict g = da + r * ldg;
    const T* d = dh ? dh + r * U : nullptr;
    const T* ds = dh_seq ? dh_seq + r * ld_seq : nullptr;
    const T* dl = dh_last ? dh_last + r * U : nullptr;
    const T* hr = h + r * ldh;
    for (int64_t u = 0; u < U; ++u) {
      T v = d ? d[u] : T(0);
      if (ds) v += ds[u];
      if (dl) v += dl[u];
      g[u] = v * (T(1) - hr[u] * hr[u]);
    }
  }
}

int rnn_threads(int64_t N, int64_t L, int64_t U) {
  const int nt = threads_for_work(2.0 * double(N) * double(L) * double(U) * double(U));
  return int(nt < N ? nt : N);
}

inline void slice(int64_t n, int t, int nt, int64_t& lo, int64_t& hi) {
  lo = n * t / nt;
  hi = n * (t + 1) / nt;
}

}  // namespace

template <typename T>
void simple_rnn_forward(T* H, const T* x, const T* W, const T* R, const T* b, const T* h0,
                        const LstmShape& s) {
  using Bk = Blocking<T>;
  constexpr int64_t NR = Bk::NR, MR = Bk::MR;
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U;
  if (N <= 0 || L <= 0 || U <= 0) return;
  gemm<T>(H, x, W, b, N * L, U, D, D, U, U, false, false, false, false);  // x W + b, all steps
  const int64_t panels = (U + NR - 1) / NR;
  T* Rp = static_cast<T*>(thread_workspace(kLstmPack, sizeof(T) * panels * U * NR));
  const int nt = rnn_threads(N, L, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t lo, hi;
    slice(panels, t, n_t, lo, hi);
    for (int64_t p = lo; p < hi; ++p)
      pack_slices<NR>(Rp + p * U * NR, R + p * NR, U, min64(NR, U - p * NR), U);
#pragma omp barrier
    int64_t r0, r1;
    slice(N, t, n_t, r0, r1);
    for (int64_t step = 0; step < L; ++step) {
      const T* h_prev = step > 0 ? H + (step - 1) * U : h0;
      const int64_t ld = step > 0 ? L * U : U;
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t u0 = p * NR, nr = min64(NR, U - u0);
        for (int64_t n0 = r0; n0 < r1; n0 += MR) {
          const int64_t mr = min64(MR, r1 - n0);
          T* h = H + (n0 * L + step) * U + u0;
          if (h_prev)
            micro_rows<T>(U, h_prev + n0 * ld, ld, 1, Rp + p * U * NR, NR, h, L * U, mr, nr, true);
          tanh_rows(h, L * U, mr, nr);
        }
      }
    }
  }
}

template <typename T>
void simple_rnn_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL,
                         const T* x, const T* W, const T* R, const T* h0, const T* H,
                         const LstmShape& s, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr int64_t NR = Bk::NR, MR = Bk::MR;
  const int64_t N = s.N, L = s.L, D = s.D, U = s.U, NL = N * L;
  if (N <= 0 || L <= 0 || U <= 0) {  // no step: = writes 0
    if (!accumulate) {
      std::memset(dW, 0, sizeof(T) * size_t(D * U));
      std::memset(dR, 0, sizeof(T) * size_t(U * U));
      if (db) std::memset(db, 0, sizeof(T) * size_t(U));
    }
    return;
  }
  const int64_t panels = (U + NR - 1) / NR;
  // da of every step (NL x U); R^T packed (panel p at RpT + p * U * NR, b(k, j) = R[p*NR+j, k]);
  // the carried dh (N x U) and the rows h_{t-1} of every step (NL x U).
  T* dA = static_cast<T*>(thread_workspace(kLstmGates, sizeof(T) * NL * U));
  T* RpT = static_cast<T*>(thread_workspace(kLstmPack, sizeof(T) * panels * U * NR));
  T* dh = static_cast<T*>(thread_workspace(kLstmState, sizeof(T) * (N * U + NL * U)));
  T* HP = dh + N * U;
  const int nt = rnn_threads(N, L, U);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_t = omp_get_num_threads();
    int64_t lo, hi;
    slice(panels, t, n_t, lo, hi);
    for (int64_t p = lo; p < hi; ++p)
      pack_strips<NR>(RpT + p * U * NR, R + p * NR * U, U, min64(NR, U - p * NR), U);
#pragma omp barrier
    int64_t r0, r1;
    slice(N, t, n_t, r0, r1);
    for (int64_t step = L - 1; step >= 0; --step)
      for (int64_t n0 = r0; n0 < r1; n0 += MR) {
        const int64_t mr = min64(MR, r1 - n0), m = n0 * L + step;
        cell_backward(dA + m * U, L * U, step < L - 1 ? dh + n0 * U : nullptr,
                      dH ? dH + m * U : nullptr, L * U,
                      step == L - 1 && dhL ? dhL + n0 * U : nullptr, H + m * U, L * U, mr, U);
        for (int64_t p = 0; p < panels; ++p)  // dh_{t-1} = da_t R^T
          micro_rows<T>(U, dA + m * U, L * U, 1, RpT + p * U * NR, NR, dh + n0 * U + p * NR, U,
                        mr, min64(NR, U - p * NR), false);
      }
    if (dh0 && r1 > r0) std::memcpy(dh0 + r0 * U, dh + r0 * U, sizeof(T) * size_t((r1 - r0) * U));
    for (int64_t n = r0; n < r1; ++n)
      for (int64_t step = 0; step < L; ++step) {
        T* row = HP + (n * L + step) * U;
        const T* hp = step > 0 ? H + (n * L + step - 1) * U : (h0 ? h0 + n * U : nullptr);
        if (hp)
          std::memcpy(row, hp, sizeof(T) * size_t(U));
        else
          std::memset(row, 0, sizeof(T) * size_t(U));
      }
  }
  gemm<T>(dW, x, dA, nullptr, D, U, NL, D, U, U, true, false, accumulate, false);
  gemm<T>(dR, HP, dA, nullptr, U, U, NL, U, U, U, true, false, accumulate, false);
  if (db) {
    if (!accumulate) std::memset(db, 0, sizeof(T) * size_t(U));
    add_column_sums(db, dA, NL, U);
  }
  if (dx) gemm<T>(dx, dA, W, nullptr, NL, D, U, U, U, D, false, true, false, false);
}

#define DLFAST_SIMPLE_RNN(T)                                                                  \
  template void simple_rnn_forward<T>(T*, const T*, const T*, const T*, const T*, const T*,  \
                                      const LstmShape&);                                     \
  template void simple_rnn_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*,     \
                                       const T*, const T*, const T*, const T*,               \
                                       const LstmShape&, bool);
DLFAST_SIMPLE_RNN(float)
DLFAST_SIMPLE_RNN(double)
#undef DLFAST_SIMPLE_RNN

}  // namespace DLFAST_ISA
}  // namespace dlfast
