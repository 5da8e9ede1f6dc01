// 2-D convolution backward: dz = dy * act'(y), then dW, db and dx from it, compiled once per
// ISA (see kernels.h; the letters, the math and the helpers both directions share:
// conv_common.h). The paths, chosen by conv2d_backward_paths:
//   dW  pointwise  1x1 stride 1 (or L = 0): one GEMM x^T dz (and dx pointwise: dz W^T)
//       in_place   small L: the micro-kernel reads x in place (small_l_dw), no im2col
//       im2col     the rest: col(x)^T dz by gemm() on im2col chunks (backward_chunk)
//   dx  by_forward stride-1 'same': a forward convolution of dz with the flipped kernel
//                  (conv2d_dx_by_forward, which conv_transpose.cpp shares, as conv2d_col2im)
//       col2im     the rest: dcol = dz W^T per chunk, scattered into dx
//   both empty     no output pixel or filter: zeros; dx none: not asked for
#include <algorithm>
#include <cstring>

#include "common/threading.h"
#include "cpu/conv_common.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/tile.h"
#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Small L (a first layer: L = 3*3*3 = 27): dW += col^T dz runs on the micro-kernel with A
// read in place from x, no im2col. Tap l = (r, s, c) of pixel (n, p, q) is
// x[n, p*sh - pt + r*dh, q*sw - pl + s*dw, c]: along a run of pixels of one output row it
// advances by sw*C per pixel, so a tile of MR taps is MR row pointers with a_cs = sw*C, and
// B is the run's dz rows read in place. Taps outside the input read a zero row instead.
// A tile's accumulators stay in registers over every run of a chunk (several output rows),
// then one store. Through im2col + gemm(), each chunk of col was built with short copies
// (S*C = 9 values) and packed again, for one tile row of 27 taps. 3->32 3x3 32x32 b64,
// dW + db with ReLU, min of 30: 3.15 -> 1.92 ms on 1 thread, 1.78 -> 0.94 ms on 2 (with
// add_column_sums and the vectorised ReLU backward; bench/run.py's cifar row shows the step).
constexpr int64_t kSmallPixels = 256;  // about this many pixels (whole output rows) per chunk

// When the dW product reads x in place instead of going through im2col + gemm(). 32x32 b64
// 3x3 'valid', dW with ReLU, 1 thread, min of 15, two alternating runs, ms (gemm -> in place):
// L=27: K=16 1.9 -> 0.93, K=64 4.8 -> 3.8, K=128 8.9 -> 7.8; L=63: K=64 8.2 -> 7.5, K=128
// 15.3 -> 15.4; L=72: K=32 5.0 -> 4.2, K=64 8.7 -> 8.5, K=128 16.3 -> 17.5; L=99: K=32
// 6.8 -> 5.9, K=64 11.5 -> 11.5; L=126: K=32 7.8 -> 7.1, K=64 13.4 -> 14.3; L=144: K=32
// 8.8 -> 8.3, K=64 15.2 -> 16.4. (S <= 64: one bit per kernel column in QRun::wmask.)
inline bool dw_in_place(const Conv2dShape& s, int64_t L) {
  return s.S <= 64 && (L <= 64 || (L <= 144 && L * s.K <= 72 * 64));  // 144: largest measured
}

// A run: output row `row` (= n*P + p), pixels [q0, q1), whose taps in kernel column t are
// all inside the input along w iff bit t of wmask (the same for every pixel of the run).
struct QRun {
  int64_t q0, q1;
  uint64_t wmask;
};

// The q ranges of an output row over which no tap column enters or leaves the input.
inline int64_t q_runs(const Conv2dShape& s, QRun* runs) {
  int64_t cut[2 * 64 + 2], n = 0;
  cut[n++] = 0;
  cut[n++] = s.Q;
  for (int64_t t = 0; t < s.S; ++t) {  // tap column t is inside for q in [lo, hi)
    const int64_t off = s.pad_left - t * s.dil_w;  // q*sw >= off and q*sw < W + off
    const int64_t lo = off <= 0 ? 0 : (off + s.stride_w - 1) / s.stride_w;
    const int64_t hi = s.W + off <= 0 ? 0 : (s.W + off + s.stride_w - 1) / s.stride_w;
    cut[n++] = clamp64(lo, 0, s.Q);
    cut[n++] = clamp64(hi, 0, s.Q);
  }
  std::sort(cut, cut + n);
  int64_t count = 0;
  for (int64_t i = 0; i + 1 < n; ++i) {
    if (cut[i] == cut[i + 1]) continue;
    const int64_t q = cut[i];
    uint64_t mask = 0;
    for (int64_t t = 0; t < s.S; ++t) {
      const int64_t iw = q * s.stride_w - s.pad_left + t * s.dil_w;
      if (iw >= 0 && iw < s.W) mask |= uint64_t(1) << t;
    }
    runs[count++] = {q, cut[i + 1], mask};
  }
  return count;
}

// pw[l0.., k0..] (= or +=) taps [l0, l0 + mr) x dz[:, k0 .. k0 + nr) over output rows
// [row0, row1) of the chunk whose dz rows start at dzc (row row0's pixel 0).
template <typename T, int MR>
void small_l_dw_tile(T* pw, const T* x, const T* dzc, const T* zeros, const Conv2dShape& s,
                     const QRun* runs, int64_t nruns, int64_t row0, int64_t row1, int64_t l0,
                     int64_t mr, int64_t k0, int64_t nr, bool accumulate) {
  constexpr int NV = Blocking<T>::NV;
  const int64_t C = s.C, K = s.K, a_cs = s.stride_w * C;
  int64_t tr[MR], tt[MR], tc[MR];  // tap (r, t, c) of each tile row; rows past mr repeat l0
  for (int i = 0; i < MR; ++i) {
    const int64_t l = l0 + (i < mr ? i : 0);
    tr[i] = l / (s.S * C);
    tt[i] = l / C % s.S;
    tc[i] = l % C;
  }
  vec_t<T> acc[MR][NV];
  zero_tile<T>(acc);
  const T* rows[MR];
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t n = row / s.P, p = row - n * s.P;
    const T* xn = x + n * s.H * s.W * C;
    const int64_t ih0 = p * s.stride_h - s.pad_top;
    for (int64_t k = 0; k < nruns; ++k) {
      const QRun& run = runs[k];
      const int64_t iw0 = run.q0 * s.stride_w - s.pad_left;
      for (int i = 0; i < MR; ++i) {
        const int64_t ih = ih0 + tr[i] * s.dil_h;
        rows[i] = ih >= 0 && ih < s.H && (run.wmask >> tt[i] & 1)
                      ? xn + (ih * s.W + iw0 + tt[i] * s.dil_w) * C + tc[i]
                      : zeros;
      }
      micro_accumulate<T, MR>(acc, run.q1 - run.q0, rows, a_cs,
                              dzc + ((row - row0) * s.Q + run.q0) * K + k0, K);
    }
  }
  store_tile<T, MR, NV>(acc, pw + l0 * K + k0, K, mr, nr, accumulate, nullptr, false);
}

// The unit's partial dW (= or +=) over output rows [row0, row1): every tile, the last few
// taps on a smaller register tile (with_tile_rows).
template <typename T>
void small_l_dw(T* pw, const T* x, const T* dzc, const T* zeros, const Conv2dShape& s,
                const QRun* runs, int64_t nruns, int64_t row0, int64_t row1, bool accumulate) {
  constexpr int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  const int64_t L = s.R * s.S * s.C;
  for (int64_t l0 = 0; l0 < L; l0 += MR) {
    const int64_t mr = min64(MR, L - l0);
    for (int64_t k0 = 0; k0 < s.K; k0 += NR) {
      const int64_t nr = min64(NR, s.K - k0);
      with_tile_rows<T>(mr, [&](auto rows) {
        small_l_dw_tile<T, decltype(rows)::value>(pw, x, dzc, zeros, s, runs, nruns, row0,
                                                  row1, l0, mr, k0, nr, accumulate);
      });
    }
  }
}

// dx by a forward convolution of dz with the flipped kernel instead of dcol = dz W^T and its
// col2im scatter: for stride-1 convolutions whose output is as large as the input ('same'),
// where both do the same multiply-adds (a 'valid' one would add rows and columns of zero
// taps). Its reduction runs over R*S*K, not K alone, with no scatter pass over dcol. 32->32
// 3x3 'same' 32x32 b64 with ReLU, whole backward, min of 15, old and new builds alternating:
// 1 thread 37.9-38.9 -> 34.5-35.0 ms, 2 threads 26.1-26.7 -> 23.0-24.7 ms.
inline bool dx_by_forward(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.P == s.H && s.Q == s.W;
}

// No output pixel (or filter): zero gradients (dw and db only when overwriting).
template <typename T>
void backward_empty(T* dx, T* dw, T* db, const Conv2dShape& s, bool accumulate) {
  const int64_t K = s.K, L = s.R * s.S * s.C, xsize = s.N * s.H * s.W * s.C;
  if (!accumulate) {
    if (L * K > 0) std::memset(dw, 0, sizeof(T) * L * K);
    if (db && K > 0) std::memset(db, 0, sizeof(T) * K);
  }
  if (dx && xsize > 0) std::memset(dx, 0, sizeof(T) * xsize);
}

// 1x1 stride 1: col(x) is x, dcol is dx, so both products are plain GEMMs on the whole dz.
// L = 0: only db is nonempty (conv2d_forward).
template <typename T>
void backward_pointwise(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                        const Conv2dShape& s, Activation act, bool accumulate) {
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  const T* dz = dy;
  if (act != Activation::linear) {
    T* buf = static_cast<T*>(thread_workspace(kConvGrad, sizeof(T) * M * K));
    activation_backward<T>(buf, dy, y, M, K, act);
    dz = buf;
  }
  if (db) {  // serial: the same sum for any thread count
    if (!accumulate)
      for (int64_t j = 0; j < K; ++j) db[j] = T(0);
    add_column_sums<T>(db, dz, M, K);
  }
  gemm<T>(dw, x, dz, nullptr, L, K, M, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, /*trans_a=*/true,
          false, accumulate, false);
  if (dx)
    gemm<T>(dx, dz, w, nullptr, M, L, K, /*lda=*/K, /*ldb=*/K, /*ldc=*/L, false,
            /*trans_b=*/true, false, false);
}

// dz = dy * act'(y); dw[R,S,C,K] (+= when accumulate, else =) col(x)^T . dz;
// db[K] (same, may be null) colsum(dz); dx[N,H,W,C] (=, may be null) col2im(dz . W^T).
// y[N,P,Q,K] is the forward output (unused for linear).
//
// Backward units: G = min(N, kUnits) groups of whole images (fixed by N alone). Each unit
// writes its own partial dW / db (so the long-reduction dW GEMM of a 3-channel first layer,
// 27x32 from 57,600 rows, runs on every thread instead of splitting a 27x32 output) and its
// own images of dx (col2im writes no element another unit writes). The partials are then
// added in unit order: results are the same for any thread count.
//
// Each unit walks its pixels in chunks; per chunk: dz = dy * act'(y) into a per-thread buffer
// (with the chunk's db sum, while it is in cache), col of the chunk, dW += col^T dz, and for
// dx, dcol = dz W^T scattered by col2im. dz never exists whole: before, it was one M x K pass
// over memory of its own ahead of the chunks.
template <typename T>
struct Units {
  const Conv2dShape& s;
  const T *x, *w, *y;
  const T* dsrc;     // what the chunks' dz comes from: dy (through act') or dz itself
  Activation act;    // the chunks' act' (linear when dsrc is dz)
  T* dx;             // dx by col2im in the chunks, or null
  bool db;           // db asked for (the partials hold it either way)
  bool small;        // dW in place (small_l_dw), else im2col + gemm()
  int64_t G, rows;   // units; output pixels per chunk
  const QRun* runs;  // small: the runs of an output row (q_runs)
  int64_t nruns;
  T* part;  // G blocks of [dW (L*K) | db (K)]
};

// A thread's buffers (backward_units): col, zeros, and dz when copy_dz.
template <typename T>
struct UnitBuffers {
  T *col, *zeros, *dz;
  bool copy_dz;
};

// Output pixels [m0, m1) of the unit whose first pixel is a: the chunk's dz, its db into pb,
// its dW into pw (= on the unit's first chunk, then +=), its dcol scattered into dx.
template <typename T>
void backward_chunk(const Units<T>& u, const UnitBuffers<T>& buf, T* pw, T* pb, int64_t a,
                    int64_t m0, int64_t m1) {
  const Conv2dShape& s = u.s;
  const int64_t K = s.K, L = s.R * s.S * s.C, mc = m1 - m0;
  const T* dzc = u.dsrc + m0 * K;
  if (u.act != Activation::linear)
    activation_backward<T>(buf.dz, dzc, u.y + m0 * K, mc, K, u.act);
  else if (buf.copy_dz)
    std::memcpy(buf.dz, dzc, sizeof(T) * mc * K);
  if (buf.copy_dz) dzc = buf.dz;
  if (u.db) add_column_sums<T>(pb, dzc, mc, K);
  if (u.small) {
    small_l_dw<T>(pw, u.x, dzc, buf.zeros, s, u.runs, u.nruns, m0 / s.Q, m1 / s.Q, m0 > a);
  } else {
    im2col_rows<T>(buf.col, u.x, s, m0, m1);
    gemm<T>(pw, buf.col, dzc, nullptr, L, K, mc, /*lda=*/L, /*ldb=*/K, /*ldc=*/K,
            /*trans_a=*/true, false, /*accumulate=*/m0 > a, false);
  }
  if (!u.dx) return;
  // dcol[mc, L] = dz_chunk . W^T (in col, free again), scattered into dx.
  gemm<T>(buf.col, dzc, u.w, nullptr, mc, L, K, /*lda=*/K, /*ldb=*/K, /*ldc=*/L, false,
          /*trans_b=*/true, false, false);
  col2im_rows<T>(u.dx, buf.col, s, m0, m1, m0);
}

// Units [g0, g1) on the calling thread: each its partials and its images of dx.
template <typename T>
void backward_units(const Units<T>& u, int64_t g0, int64_t g1) {
  constexpr int64_t NR = Blocking<T>::NR;
  const Conv2dShape& s = u.s;
  const int64_t K = s.K, L = s.R * s.S * s.C, LK = L * K, PQ = s.P * s.Q, HWC = s.H * s.W * s.C;
  // col: im2col (large L) or dcol (dx) of a chunk. zeros: the row a tap outside the input
  // reads in small_l_dw (a run of up to Q pixels, a_cs apart).
  const int64_t ncol = u.small && !u.dx ? 0 : u.rows * L;
  const int64_t nzero = u.small ? s.Q * s.stride_w * s.C : 0;
  UnitBuffers<T> buf{};
  buf.col = static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * max64(ncol + nzero, 1)));
  buf.zeros = buf.col + ncol;
  for (int64_t j = 0; j < nzero; ++j) buf.zeros[j] = T(0);
  // dz of a chunk: read in place from dy (or the whole dz) when linear, else computed into
  // buf.dz. The in-place dW's last row of an nr < NR panel reads up to NR values past the
  // chunk, past the end of dy on the last one: with K % NR != 0 it takes buf.dz (+ NR zeros).
  buf.copy_dz = u.act != Activation::linear || (u.small && K % NR != 0);
  if (buf.copy_dz) {
    buf.dz = static_cast<T*>(thread_workspace(kConvGrad, sizeof(T) * (u.rows * K + NR)));
    for (int64_t j = u.rows * K; j < u.rows * K + NR; ++j) buf.dz[j] = T(0);
  }
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t n0 = s.N * g / u.G, n1 = s.N * (g + 1) / u.G;
    const int64_t a = n0 * PQ, e = n1 * PQ;
    T* pw = u.part + g * (LK + K);
    T* pb = pw + LK;
    if (u.dx) std::memset(u.dx + n0 * HWC, 0, sizeof(T) * (n1 - n0) * HWC);
    for (int64_t j = 0; j < K; ++j) pb[j] = T(0);
    for (int64_t m0 = a; m0 < e; m0 += u.rows)
      backward_chunk<T>(u, buf, pw, pb, a, m0, min64(e, m0 + u.rows));
  }
}

// dW (=|+=) sum of the G partials in unit order, each element independently (any split);
// db likewise when asked for.
template <typename T>
void add_partials(T* dw, T* db, const T* part, int64_t G, int64_t LK, int64_t K,
                  bool accumulate) {
  const int64_t stride = LK + K;
  parallel_ranges(stride, copy_threads(G * stride), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      if (i >= LK && !db) break;
      T sum = part[i];
      for (int64_t g = 1; g < G; ++g) sum += part[g * stride + i];
      T* d = i < LK ? dw + i : db + (i - LK);
      *d = accumulate ? *d + sum : sum;
    }
  });
}

// The in_place / im2col dW paths, with dx by_forward, col2im or none.
template <typename T>
void backward_chunked(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                      const Conv2dShape& s, Activation act, bool accumulate,
                      ConvBackwardPaths path) {
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  // dx as a forward convolution of dz (see dx_by_forward): dz is then needed whole.
  const bool dx_fwd = path.dx == ConvDxPath::by_forward;
  const T* dsrc = dy;
  Activation chunk_act = act;
  if (dx_fwd && act != Activation::linear) {
    T* dz = static_cast<T*>(thread_workspace(kConvDz, sizeof(T) * M * K));
    activation_backward<T>(dz, dy, y, M, K, act);
    dsrc = dz;
    chunk_act = Activation::linear;
  }
  const bool small = path.dw == ConvDwPath::in_place;
  // Chunks: whole output rows (small L), or rows of a kColBytes col.
  const int64_t orows = max64(kSmallPixels / max64(s.Q, 1), 1);
  const int64_t rows = min64(small ? orows * s.Q : chunk_rows_sub(L, sizeof(T)), M);
  QRun runs[2 * 64 + 1];
  const int64_t nruns = small ? q_runs(s, runs) : 0;
  // Partials: G blocks of [dW (L*K) | db (K)], in the calling thread's workspace.
  const int64_t G = min64(s.N, kUnits);
  T* part = static_cast<T*>(thread_workspace(kConvPartial, sizeof(T) * G * (L * K + K)));
  T* dx_col = path.dx == ConvDxPath::col2im ? dx : nullptr;
  const Units<T> u{s, x, w, y, dsrc, chunk_act, dx_col, db != nullptr, small, G, rows, runs,
                   nruns, part};
  const int nt = threads_for_work(4.0 * double(M) * double(K) * double(L));
  parallel_ranges(G, nt, [&](int64_t g0, int64_t g1) { backward_units<T>(u, g0, g1); });
  add_partials<T>(dw, db, part, G, L * K, K, accumulate);
  if (dx_fwd) conv2d_dx_by_forward<T>(dx, dsrc, w, nullptr, s, Activation::linear);
}

}  // namespace

template <typename T>
ConvBackwardPaths conv2d_backward_paths(const Conv2dShape& s, bool need_dx) {
  const int64_t M = s.N * s.P * s.Q, L = s.R * s.S * s.C;
  const auto dx = [&](ConvDxPath p) { return need_dx ? p : ConvDxPath::none; };
  if (M <= 0 || s.K <= 0) return {dx(ConvDxPath::empty), ConvDwPath::empty};
  if (is_pointwise(s) || L == 0) return {dx(ConvDxPath::pointwise), ConvDwPath::pointwise};
  return {dx(dx_by_forward(s) ? ConvDxPath::by_forward : ConvDxPath::col2im),
          dw_in_place(s, L) ? ConvDwPath::in_place : ConvDwPath::im2col};
}

template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                     const Conv2dShape& s, Activation act, bool accumulate) {
  const ConvBackwardPaths path = conv2d_backward_paths<T>(s, dx != nullptr);
  switch (path.dw) {
    case ConvDwPath::empty: return backward_empty<T>(dx, dw, db, s, accumulate);
    case ConvDwPath::pointwise:
      return backward_pointwise<T>(dx, dw, db, dy, x, w, y, s, act, accumulate);
    default: return backward_chunked<T>(dx, dw, db, dy, x, w, y, s, act, accumulate, path);
  }
}

// dx[n, h, w, c] = sum over (r, t, k) of dz[n, h + pt - r*dh, w + pl - t*dw, k] w[r, t, c, k]:
// a forward convolution of dz (K channels) with the kernel flipped in (r, t) and transposed
// in (c, k), stride 1, padding (R-1)*dh - pt on top (taps past dz's edges read zeros).
// The flipped kernel lives in the calling thread's kConvFlip workspace (conv2d_forward does
// not use that slot).
template <typename T>
void conv2d_dx_by_forward(T* dx, const T* dz, const T* w, const T* b, const Conv2dShape& s,
                          Activation act) {
  const int64_t K = s.K, L = s.R * s.S * s.C;
  T* wt = static_cast<T*>(thread_workspace(kConvFlip, sizeof(T) * max64(L * K, 1)));
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t t = 0; t < s.S; ++t)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t k = 0; k < K; ++k)
          wt[(((s.R - 1 - r) * s.S + (s.S - 1 - t)) * K + k) * s.C + c] =
              w[((r * s.S + t) * s.C + c) * K + k];
  Conv2dShape st{};
  st.N = s.N, st.H = s.P, st.W = s.Q, st.C = K;
  st.R = s.R, st.S = s.S, st.K = s.C, st.P = s.H, st.Q = s.W;
  st.stride_h = st.stride_w = 1, st.dil_h = s.dil_h, st.dil_w = s.dil_w;
  st.pad_top = (s.R - 1) * s.dil_h - s.pad_top;
  st.pad_left = (s.S - 1) * s.dil_w - s.pad_left;
  conv2d_forward<T>(dx, dz, wt, b, st, act);
}

// dx (+=) the windows of dcol's rows: output pixels [m0, m1), dcol[m1 - m0, R*S*C].
template <typename T>
void conv2d_col2im(T* dx, const T* dcol, const Conv2dShape& s, int64_t m0, int64_t m1) {
  col2im_rows<T>(dx, dcol, s, m0, m1, m0);
}

template void conv2d_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const float*, const Conv2dShape&, Activation,
                                     bool);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const double*, const Conv2dShape&,
                                      Activation, bool);
template void conv2d_dx_by_forward<float>(float*, const float*, const float*, const float*,
                                          const Conv2dShape&, Activation);
template void conv2d_dx_by_forward<double>(double*, const double*, const double*,
                                           const double*, const Conv2dShape&, Activation);
template void conv2d_col2im<float>(float*, const float*, const Conv2dShape&, int64_t, int64_t);
template void conv2d_col2im<double>(double*, const double*, const Conv2dShape&, int64_t,
                                    int64_t);
template ConvBackwardPaths conv2d_backward_paths<float>(const Conv2dShape&, bool);
template ConvBackwardPaths conv2d_backward_paths<double>(const Conv2dShape&, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
