// Packed GEMM in the Goto/BLIS design, compiled once per ISA (see kernels.h).
//
//   C[M,N] (= or +=) op(A)[M,K] . op(B)[K,N]   (+ bias[N] per row, then ReLU, when asked)
//
// Loops, outermost first (BLIS names): jc over NC columns of C (B block in L3), pc over KC of the
// reduction (packed B panel kc x nc), ic over MC rows (packed A block mc x kc, in L2), jr over
// NR-wide micro-panels of B (kc x NR, stays in L1), ir over MR-tall micro-panels of A (ir
// outside jr when kc is short, see kRowOrderMaxKc); the micro-kernel keeps an MR x NR tile of
// C in registers for the whole kc loop.
// Packed A stores each MR-row panel k-major (a(i,k) at k*MR + i); packed B stores each
// NR-column panel k-major (b(k,j) at k*NR + j); both are zero-padded to full panels, so the
// micro-kernel never branches. Transposes cost nothing extra: packing reads op(A), op(B).
// Small products skip packing A (the micro-kernel reads A in place through strides) and read
// full-width B panels in place when B is not transposed.
// Threads split C into column (or row) slabs; each thread packs what its slab needs, so
// there are no barriers, and results do not depend on the thread count (same blocking, same
// summation order per element).
#include <omp.h>

#include <new>

#include "common/threading.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// How far ahead (in elements) the micro-kernel prefetches its packed A panel, which streams
// from L2: 64 elements = ~10 k-steps of MR=6 floats, about 60 cycles ahead.
constexpr int kPrefetchA = 64;
// Measured at 1 thread, K x N = 784x256 / 256x128 / 512x512 (GFLOP/s, packed -> in place):
// M=16: 57->65, 55->68, 58->75; M=32: about even; M=64: 79->74, 81->75 (ldb = 1 KiB strides
// alias in L1 once the panel is reused by more than a few A panels).
constexpr int64_t kInPlaceBMaxM = 32;
// Below this many multiply-adds the product runs on one thread without packing A.
constexpr int64_t kSmallMNK = 64 * 64 * 64;
// Reductions up to this long walk the tiles of a block along C's rows (ir outer, jr inner)
// instead of BLIS's jr outer: with so few k steps a tile's store of C is a large share of its
// work, and row order writes C line after line, while the small packed B block (kc x nc) is
// re-read from L2 for each row panel. Weight-gradient shapes (A transposed), 2 threads, min of
// 500 calls: 784x256x16 55-56 -> 52 us, 256x128x16 11.7 -> 10.4, 784x256x32 88-90 -> 85,
// 784x256x64 154-156 -> 153-157; kc 128 and 256 gained nothing measurable.
constexpr int64_t kRowOrderMaxKc = 64;

// The packed micro-kernel: one MR x NR tile of C from a packed A panel (a(i,k) at k*MR+i) and a
// B panel b(k,j) at k*ldb+j: packed (ldb = NR) or read in place from a row-major B. Per k: NV aligned loads of B, MR broadcasts of A straight
// from memory, MR*NV FMAs into registers; nothing else in the loop (checked with objdump).
// R (<= MR) is the register tile's height: the panel's last rows may be fewer than MR (M = 64
// is 10 panels of 6 and one of 4), and a 4-row tile costs 4/6 of a full one (see micro_tile).
template <typename T, int R>
inline void micro_packed(int64_t kc, const T* __restrict a, const T* __restrict b, int64_t ldb,
                         T* c, int64_t ldc, int64_t mr, int64_t nr, bool accumulate,
                         const T* bias, bool relu) {
  using V = vec_t<T>;
  constexpr int MR = Blocking<T>::MR, NV = Blocking<T>::NV, L = Vec<T>::lanes, NR = NV * L;
  // Ask for the C tile now so its lines arrive while the k loop runs (a row of the tile
  // may straddle two lines when C is not 64-byte aligned).
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + NR - 1, 1);
  }
  V acc[R][NV];
  zero_tile<T>(acc);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = vload(b + j * L);
    __builtin_prefetch(a + kPrefetchA);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      V ai = vsplat(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
    a += MR;
    b += ldb;
  }
  store_tile<T, R, NV>(acc, c, ldc, mr, nr, accumulate, bias, relu);
}

// One tile of C from packed A: micro_packed on the smallest register tile that holds its mr
// rows. GEMMs of a few row panels (the Dense layers' batch of 64 = 10 x 6 + 4) otherwise
// spend a sixth of their last panel's work on zero rows.
template <typename T>
inline void micro_tile(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate, const T* bias, bool relu) {
  with_tile_rows<T>(mr, [&](auto rows) {
    micro_packed<T, decltype(rows)::value>(kc, a, b, ldb, c, ldc, mr, nr, accumulate, bias,
                                           relu);
  });
}


// Ap <- op(A)[0:mc, 0:kc] in MR-row panels; `a` points at op(A)(0,0) of the block.
template <typename T>
void pack_a(T* Ap, const T* a, int64_t lda, bool trans_a, int64_t mc, int64_t kc) {
  if (trans_a)
    pack_slices<Blocking<T>::MR>(Ap, a, lda, mc, kc);
  else
    pack_strips<Blocking<T>::MR>(Ap, a, lda, mc, kc);
}

// Bp <- op(B)[0:kc, 0:nc] in NR-column panels; `b` points at op(B)(0,0) of the block.
template <typename T>
void pack_b(T* Bp, const T* b, int64_t ldb, bool trans_b, int64_t kc, int64_t nc) {
  if (trans_b)
    pack_strips<Blocking<T>::NR>(Bp, b, ldb, nc, kc);
  else
    pack_slices<Blocking<T>::NR>(Bp, b, ldb, nc, kc);
}

struct GemmArgs {
  int64_t M, N, K, lda, ldb, ldc;
  bool trans_a, trans_b, accumulate, relu;
};

// Pointer to op(X)(r, c) for X stored row-major with leading dimension ld.
template <typename T>
inline const T* op_at(const T* X, int64_t ld, bool trans, int64_t r, int64_t c) {
  return trans ? X + c * ld + r : X + r * ld + c;
}

// The reduction is cut into equal blocks of at most KC (with KC = 256, K = 784 is 4 x 196, not 3 x 256 + 16,
// whose last short block pays a full pass of C loads and stores for little work). Depends on K
// only, so every thread count sums in the same order.
template <typename T>
inline int64_t k_step(int64_t K) {
  const int64_t blocks = (K + Blocking<T>::KC - 1) / Blocking<T>::KC;
  return round_up((K + blocks - 1) / blocks, 4);
}

// The packed algorithm on the slab C[m0:m1, n0:n1], on the calling thread.
// B is read in place (only its ragged last panel packed) when it is not transposed and the slab
// has few rows: packing costs ~0.5-1 cycle per element of B, while each element then feeds only
// 2*M flops (M/16 cycles at peak), so below kInPlaceBMaxM rows the copy does not pay for itself.
// kPrePackedA: op(A) was packed whole beforehand (every K block, see pack_a_all) into Ap_all,
// shared by the threads; then m0..m1 is 0..M <= MC. A template parameter so the usual path's
// inner loops compile exactly as before (a runtime pointer test cost dW2 1-thread 82 -> 77 GF/s).
template <typename T, bool kPrePackedA = false>
void gemm_packed(T* C, const T* A, const T* B, const T* bias, const GemmArgs& g, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1, const T* Ap_all = nullptr) {
  using Bk = Blocking<T>;
  const bool b_in_place = !g.trans_b && m1 - m0 <= kInPlaceBMaxM;
  const int64_t kstep = k_step<T>(g.K);
  const int64_t Mpad = round_up(g.M, Bk::MR);
  T* Ap = kPrePackedA
              ? nullptr
              : static_cast<T*>(thread_workspace(kPackA, sizeof(T) * Bk::MC * Bk::KC));
  T* Bp = static_cast<T*>(
      thread_workspace(kPackB, sizeof(T) * Bk::KC * round_up(min64(Bk::NC, n1 - n0), Bk::NR)));
  for (int64_t jc = n0; jc < n1; jc += Bk::NC) {
    const int64_t nc = min64(Bk::NC, n1 - jc);
    const int64_t nc_direct = b_in_place ? nc / Bk::NR * Bk::NR : 0;  // panels read in place
    for (int64_t pc = 0; pc < g.K; pc += kstep) {
      const int64_t kc = min64(kstep, g.K - pc);
      const bool accumulate = g.accumulate || pc > 0;
      const bool last = pc + kc == g.K;
      if (nc_direct < nc)
        pack_b(Bp, op_at(B, g.ldb, g.trans_b, pc, jc + nc_direct), g.ldb, g.trans_b, kc,
               nc - nc_direct);
      for (int64_t ic = m0; ic < m1; ic += Bk::MC) {
        const int64_t mc = min64(Bk::MC, m1 - ic);
        const T* Ablk = kPrePackedA ? Ap_all + pc * Mpad + (ic - m0) * kc : Ap;
        if (!kPrePackedA) pack_a(Ap, op_at(A, g.lda, g.trans_a, ic, pc), g.lda, g.trans_a, mc, kc);
        auto tile = [&](int64_t ir, int64_t jr) {
          const int64_t nr = min64(Bk::NR, nc - jr);
          const T* tile_bias = last && bias ? bias + jc + jr : nullptr;
          const bool direct = jr < nc_direct;
          const T* bpanel = direct ? B + pc * g.ldb + jc + jr : Bp + (jr - nc_direct) * kc;
          const int64_t bld = direct ? g.ldb : Bk::NR;
          micro_tile<T>(kc, Ablk + ir * kc, bpanel, bld, C + (ic + ir) * g.ldc + jc + jr,
                        g.ldc, min64(Bk::MR, mc - ir), nr, accumulate, tile_bias,
                        last && g.relu);
        };
        if (kc <= kRowOrderMaxKc) {
          for (int64_t ir = 0; ir < mc; ir += Bk::MR)
            for (int64_t jr = 0; jr < nc; jr += Bk::NR) tile(ir, jr);
        } else {
          for (int64_t jr = 0; jr < nc; jr += Bk::NR)
            for (int64_t ir = 0; ir < mc; ir += Bk::MR) tile(ir, jr);
        }
      }
    }
  }
}

// Packs panels [p0, p1) of op(A) (MR rows each, all of K) into Ap_all: K block pc at
// Ap_all + pc*Mpad, panel p of it at + p*MR*kc (the layout gemm_packed reads with Ap_all).
template <typename T>
void pack_a_all(T* Ap_all, const T* A, const GemmArgs& g, int64_t p0, int64_t p1) {
  using Bk = Blocking<T>;
  const int64_t kstep = k_step<T>(g.K), Mpad = round_up(g.M, Bk::MR);
  const int64_t r0 = p0 * Bk::MR, r1 = min64(p1 * Bk::MR, g.M);
  if (r0 >= r1) return;
  for (int64_t pc = 0; pc < g.K; pc += kstep) {
    const int64_t kc = min64(kstep, g.K - pc);
    pack_a(Ap_all + pc * Mpad + r0 * kc, op_at(A, g.lda, g.trans_a, r0, pc), g.lda, g.trans_a,
           r1 - r0, kc);
  }
}

// Small products: one thread, A read in place, B read in place when possible.
template <typename T>
void gemm_small(T* C, const T* A, const T* B, const T* bias, const GemmArgs& g) {
  using Bk = Blocking<T>;
  T* Bp = static_cast<T*>(thread_workspace(kPackSmall, sizeof(T) * Bk::KC * Bk::NR));
  const int64_t a_rs = g.trans_a ? 1 : g.lda, a_cs = g.trans_a ? g.lda : 1;
  const int64_t kstep = k_step<T>(g.K);
  for (int64_t pc = 0; pc < g.K; pc += kstep) {
    const int64_t kc = min64(kstep, g.K - pc);
    const bool accumulate = g.accumulate || pc > 0;
    const bool last = pc + kc == g.K;
    for (int64_t jr = 0; jr < g.N; jr += Bk::NR) {
      const int64_t nr = min64(Bk::NR, g.N - jr);
      const T* panel = op_at(B, g.ldb, g.trans_b, pc, jr);
      int64_t panel_ld = g.ldb;
      if (g.trans_b || nr < Bk::NR) {
        pack_b(Bp, panel, g.ldb, g.trans_b, kc, nr);
        panel = Bp;
        panel_ld = Bk::NR;
      }
      const T* tile_bias = last && bias ? bias + jr : nullptr;
      for (int64_t ir = 0; ir < g.M; ir += Bk::MR) {
        const int64_t mr = min64(Bk::MR, g.M - ir);
        with_tile_rows<T>(mr, [&](auto rows) {
          micro_strided<T, decltype(rows)::value>(
              kc, op_at(A, g.lda, g.trans_a, ir, pc), a_rs, a_cs, panel, panel_ld,
              C + ir * g.ldc + jr, g.ldc, mr, nr, accumulate, tile_bias, last && g.relu);
        });
      }
    }
  }
}

// Narrow products, N < NR: a 10-class head's forward (x @ W, N = 10) and weight gradient
// (x^T @ dz). The general tile is NR = 2 vectors wide; at N = 10 on AVX-512 (NR = 32) it
// computes 22 padding columns for 10 real ones and stores them through the scalar edge path.
// Here the tile is R rows x NV = ceil(N / lanes) vectors, the last one masked on its loads of
// B and C, so no column past N is read or written (N = 10: 1 zmm, 10 of 16 lanes; 2 ymm, 10
// of 16). A and B are read in place (B^T packed first), and the whole reduction stays in
// registers: each element of C is summed over k = 0..K-1 in order, on any thread count.
template <typename T, int NV>
struct Narrow {
  // Accumulators + NV loads of B + one broadcast must fit the register file: 32 zmm
  // (16 x 1 + 2; 14 x 2 + 3), 16 ymm/xmm (12 x 1 + 2; 6 x 2 + 3).
  static constexpr int R = DLFAST_VEC_BYTES == 64 ? (NV == 1 ? 16 : 14) : (NV == 1 ? 12 : 6);
};

template <typename T, int R, int NV>
inline void micro_narrow(int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                         int64_t ldb, int64_t n, T* c, int64_t ldc, int64_t mr,
                         bool accumulate, const T* bias, bool relu) {
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  const int tail = int(n) - (NV - 1) * L;  // lanes of the last vector, 1..L
  V acc[R][NV];
  zero_tile<T>(acc);
  const T* row[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) row[i] = a + (i < mr ? i : 0) * a_rs;  // rows past mr: row 0
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
#pragma GCC unroll 2
    for (int j = 0; j + 1 < NV; ++j) bv[j] = vload(b + k * ldb + j * L);
    bv[NV - 1] = vload_first(b + k * ldb + (NV - 1) * L, tail);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      V ai = vsplat(row[i][k * a_cs]);
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      T* p = c + i * ldc + j * L;
      const int w = j + 1 < NV ? L : tail;
      V v = acc[i][j];
      if (accumulate) v += vload_first(p, w);
      if (bias) v += vload_first(bias + j * L, w);
      if (relu) v = vmax0<T>(v);
      vstore_first(p, v, w);
    }
  }
}

// Rows [m0, m1) of a narrow product, tile by tile; the last tile on 4 or 8 rows when it has
// no more.
template <typename T, int NV>
void gemm_narrow_rows(T* C, const T* A, const T* b, int64_t ldb, const T* bias,
                      const GemmArgs& g, int64_t m0, int64_t m1) {
  constexpr int R = Narrow<T, NV>::R;
  const int64_t a_rs = g.trans_a ? 1 : g.lda, a_cs = g.trans_a ? g.lda : 1;
  for (int64_t ir = m0; ir < m1; ir += R) {
    const int64_t mr = min64(R, m1 - ir);
    const T* a = op_at(A, g.lda, g.trans_a, ir, 0);
    T* c = C + ir * g.ldc;
    if (mr <= 4 && R > 4)
      micro_narrow<T, 4, NV>(g.K, a, a_rs, a_cs, b, ldb, g.N, c, g.ldc, mr, g.accumulate, bias,
                             g.relu);
    else if (mr <= 8 && R > 8)
      micro_narrow<T, 8, NV>(g.K, a, a_rs, a_cs, b, ldb, g.N, c, g.ldc, mr, g.accumulate, bias,
                             g.relu);
    else
      micro_narrow<T, R, NV>(g.K, a, a_rs, a_cs, b, ldb, g.N, c, g.ldc, mr, g.accumulate, bias,
                             g.relu);
  }
}

// Calls rows(lo, hi) on slabs of whole W-row tiles of C, split over threads when the
// product is large enough (the narrow paths; nothing in `rows` may throw).
template <int64_t W, class F>
void split_row_tiles(const GemmArgs& g, F&& rows) {
  const int64_t tiles = (g.M + W - 1) / W;
  const int nt = g.M * g.N * g.K <= kSmallMNK || tiles < 2
                     ? 1
                     : threads_for_gemm(2.0 * double(g.M) * double(g.N) * double(g.K));
  if (nt <= 1) return rows(int64_t(0), g.M);
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t lo = min64(tiles * t / n * W, g.M), hi = min64(tiles * (t + 1) / n * W, g.M);
    if (lo < hi) rows(lo, hi);
  }
}

template <typename T, int NV>
void gemm_narrow(T* C, const T* A, const T* B, const T* bias, const GemmArgs& g) {
  constexpr int R = Narrow<T, NV>::R, L = Vec<T>::lanes;
  const T* b = B;
  int64_t ldb = g.ldb;
  if (g.trans_b) {  // op(B)(k, j) = B[j*ldb + k]: copy into K rows of NV*L (N used)
    T* Bp = static_cast<T*>(thread_workspace(kPackSmall, sizeof(T) * g.K * NV * L));
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t j = 0; j < g.N; ++j) Bp[k * NV * L + j] = B[j * g.ldb + k];
    b = Bp;
    ldb = NV * L;
  }
  split_row_tiles<R>(g, [&](int64_t lo, int64_t hi) {
    gemm_narrow_rows<T, NV>(C, A, b, ldb, bias, g, lo, hi);
  });
}

// Narrow products with A transposed (the weight gradient x^T @ dz of a layer of N <= 16
// units): op(A)'s columns are contiguous, so the tile turns round: Q vectors of rows of C by
// NB broadcast columns (B copied once into K rows of NB, zero past N), every lane a real row
// (at N = 10 the row tile above fills 10 of 16 lanes on AVX-512). The NB x Q*L tile reaches
// C through a buffer, transposed.
template <int NB>
constexpr int narrow_ta_vectors() {  // Q: NB*Q accumulators + Q loads + 1 broadcast
  if (DLFAST_VEC_BYTES == 64) return NB <= 4 ? 4 : NB <= 8 ? 3 : NB <= 12 ? 2 : 1;
  return NB <= 4 ? 2 : 1;  // 16 registers: NB <= 12 only (see gemm)
}

template <typename T, int NB, int Q, bool kFull>
inline void micro_narrow_ta(int64_t K, const T* a, int64_t lda, const T* bp, int64_t m,
                            int64_t n, T* c, int64_t ldc, bool accumulate, const T* bias,
                            bool relu) {
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  V acc[NB][Q];
  zero_tile<T>(acc);
  for (int64_t k = 0; k < K; ++k) {
    const T* ak = a + k * lda;
    V av[Q];
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      if (kFull)
        av[q] = vload(ak + q * L);
      else
        av[q] = q * L < m ? vload_first(ak + q * L, int(min64(L, m - q * L))) : V{};
    }
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) {
      const V bj = vsplat(bp[k * NB + j]);
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) acc[j][q] += av[q] * bj;
    }
  }
  alignas(64) T buf[NB][Q * L];
#pragma GCC unroll 16
  for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) vstore(&buf[j][q * L], acc[j][q]);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T v = buf[j][i];
      if (accumulate) v += c[i * ldc + j];
      if (bias) v += bias[j];
      if (relu) v = v < T(0) ? T(0) : v;
      c[i * ldc + j] = v;
    }
}

template <typename T, int NB>
void gemm_narrow_ta_rows(T* C, const T* A, const T* bp, const T* bias, const GemmArgs& g,
                         int64_t m0, int64_t m1) {
  constexpr int Q = narrow_ta_vectors<NB>(), W = Q * Vec<T>::lanes;
  for (int64_t i = m0; i < m1; i += W) {
    const int64_t m = min64(W, m1 - i);
    if (m == W)
      micro_narrow_ta<T, NB, Q, true>(g.K, A + i, g.lda, bp, m, g.N, C + i * g.ldc, g.ldc,
                                      g.accumulate, bias, g.relu);
    else
      micro_narrow_ta<T, NB, Q, false>(g.K, A + i, g.lda, bp, m, g.N, C + i * g.ldc, g.ldc,
                                       g.accumulate, bias, g.relu);
  }
}

template <typename T, int NB>
void gemm_narrow_ta(T* C, const T* A, const T* B, const T* bias, const GemmArgs& g) {
  constexpr int W = narrow_ta_vectors<NB>() * Vec<T>::lanes;
  T* bp = static_cast<T*>(thread_workspace(kPackSmall, sizeof(T) * g.K * NB));
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t j = 0; j < NB; ++j)
      bp[k * NB + j] = j < g.N ? *op_at(B, g.ldb, g.trans_b, k, j) : T(0);
  split_row_tiles<W>(g, [&](int64_t lo, int64_t hi) {
    gemm_narrow_ta_rows<T, NB>(C, A, bp, bias, g, lo, hi);
  });
}

// K == 0: the product is empty, C = (accumulate ? C : 0) + bias, then ReLU.
template <typename T>
void gemm_empty(T* C, const T* bias, const GemmArgs& g) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      T v = g.accumulate ? C[i * g.ldc + j] : T(0);
      if (bias) v += bias[j];
      if (g.relu) v = v < 0 ? T(0) : v;  // NaN stays NaN (vmax0)
      C[i * g.ldc + j] = v;
    }
}

}  // namespace

template <typename T>
void gemm(T* C, const T* A, const T* B, const T* bias, int64_t M, int64_t N, int64_t K,
          int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b, bool accumulate,
          bool relu) {
  using Bk = Blocking<T>;
  const GemmArgs g{M, N, K, lda, ldb, ldc, trans_a, trans_b, accumulate, relu};
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return gemm_empty(C, bias, g);
  if (trans_a && N <= (DLFAST_VEC_BYTES == 64 ? 16 : 12)) {
    if (N <= 4) return gemm_narrow_ta<T, 4>(C, A, B, bias, g);
    if (N <= 8) return gemm_narrow_ta<T, 8>(C, A, B, bias, g);
    if (N <= 12) return gemm_narrow_ta<T, 12>(C, A, B, bias, g);
    if constexpr (DLFAST_VEC_BYTES == 64) return gemm_narrow_ta<T, 16>(C, A, B, bias, g);
  }
  if (N < Bk::NR) {
    if (N <= Vec<T>::lanes) return gemm_narrow<T, 1>(C, A, B, bias, g);
    return gemm_narrow<T, 2>(C, A, B, bias, g);
  }
  if (M * N * K <= kSmallMNK) return gemm_small(C, A, B, bias, g);

  const int nt = threads_for_gemm(2.0 * double(M) * double(N) * double(K));
  if (nt <= 1) return gemm_packed(C, A, B, bias, g, 0, M, 0, N);

  // Split C into slabs of whole micro-panels along N (each thread all rows) or M. When
  // splitting N with M <= MC, every thread needs all of op(A): it is packed once, each thread
  // packing half of its panels (all K blocks) into one shared buffer, then a barrier. Before,
  // both threads packed it whole (at M = 64 ~10% of each thread's time). The side is chosen
  // by an estimate in cycles: FMAs of the larger slab (16 lanes x FMA per cycle) + packing
  // (~1 cycle per element; duplicated packing counted whole). 2 threads, GFLOP/s before ->
  // after (with the vectorised strip packing): 64x784x256 133 -> 143, 64x256x784 139 -> 148,
  // 64x256x128 124 -> 142 (it was split along M: 5 vs 6 row panels), 64x128x256 124 -> 144.
  // Sharing op(B) the same way when splitting M was slower at K = 64 (784x64x256: 165 -> 160,
  // 256x64x128: 149 -> 141 GFLOP/s): B is small there, and reading the other core's half
  // costs more than packing it again.
  const int64_t mp = (M + Bk::MR - 1) / Bk::MR, np = (N + Bk::NR - 1) / Bk::NR;
  const bool share_a = M <= Bk::MC;
  bool split_n = np >= mp;  // the plain rule when nothing is shared (2048^3 keeps its split)
  if (share_a) {
    const double tile = double(Bk::MR * Bk::NR) * double(K) / 16.0;
    const double cost_n = double((np + nt - 1) / nt) * mp * tile + double(M) * K / nt +
                          double((np + nt - 1) / nt) * Bk::NR * K;
    const double cost_m = double((mp + nt - 1) / nt) * np * tile + double(N) * K +
                          double((mp + nt - 1) / nt) * Bk::MR * K;
    split_n = cost_n < cost_m;
  }
  const bool shared = split_n && share_a;
  T* Ap_all = shared ? static_cast<T*>(thread_workspace(kPackSmall, sizeof(T) * K * mp * Bk::MR))
                     : nullptr;
  const int64_t unit = split_n ? Bk::NR : Bk::MR;
  const int64_t panels = split_n ? np : mp;
  bool failed = false;
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t lo = min64(panels * t / n * unit, split_n ? N : M);
    const int64_t hi = min64(panels * (t + 1) / n * unit, split_n ? N : M);
    if (shared) {
      pack_a_all(Ap_all, A, g, mp * t / n, mp * (t + 1) / n);
#pragma omp barrier
      // (Prefetching the other thread's half right after the barrier, to overlap its
      // cross-core misses, measured no better: removed.)
    }
    if (lo < hi) {
      try {
        if (shared)
          gemm_packed<T, true>(C, A, B, bias, g, 0, M, lo, hi, Ap_all);
        else if (split_n)
          gemm_packed<T>(C, A, B, bias, g, 0, M, lo, hi);
        else
          gemm_packed<T>(C, A, B, bias, g, lo, hi, 0, N);
      } catch (const std::bad_alloc&) {
#pragma omp atomic write
        failed = true;
      }
    }
  }
  if (failed) throw std::bad_alloc();
}

// One thread; op(A) = the M x K matrix already packed in the layout of pack_a_all (see
// kernels.h): K block pc (of gemm_k_step(K)) at Ap + pc * round_up(M, MR), panel p of it at
// + p*MR*kc, a(i, k) at k*MR + i, rows past M zero. conv2d_forward writes im2col this way.
template <typename T>
void gemm_prepacked_a(T* C, const T* Ap, const T* B, const T* bias, int64_t M, int64_t N,
                      int64_t K, int64_t ldb, int64_t ldc, bool trans_b, bool accumulate,
                      bool relu) {
  const GemmArgs g{M, N, K, 0, ldb, ldc, false, trans_b, accumulate, relu};
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return gemm_empty(C, bias, g);
  gemm_packed<T, true>(C, nullptr, B, bias, g, 0, M, 0, N, Ap);
}

template <typename T>
int gemm_mr() {
  return Blocking<T>::MR;
}
template <typename T>
int64_t gemm_k_step(int64_t K) {
  return k_step<T>(K);
}

template void gemm_prepacked_a<float>(float*, const float*, const float*, const float*, int64_t,
                                      int64_t, int64_t, int64_t, int64_t, bool, bool, bool);
template void gemm_prepacked_a<double>(double*, const double*, const double*, const double*,
                                       int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool,
                                       bool);
template int gemm_mr<float>();
template int gemm_mr<double>();
template int64_t gemm_k_step<float>(int64_t);
template int64_t gemm_k_step<double>(int64_t);
template void gemm<float>(float*, const float*, const float*, const float*, int64_t, int64_t,
                          int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool);
template void gemm<double>(double*, const double*, const double*, const double*, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
