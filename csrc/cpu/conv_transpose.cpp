// 2-D transposed convolution (Keras's Conv2DTranspose), NHWC; compiled once per ISA (see
// kernels.h). It is the data gradient of a forward convolution, so it is described by that
// convolution's Conv2dShape s and shares the convolution's machinery (conv_forward.cpp,
// conv_backward.cpp):
//   x[N,P,Q,K]  (the transposed convolution's input: the forward convolution's output)
//   w[R,S,C,K]  (Keras's kernel (kh, kw, filters, in_channels): the forward kernel, HWIO)
//   b[C]        y[N,H,W,C] (the output: the forward convolution's input, C = filters)
// Letters as in conv_common.h; M = N*P*Q input pixels, L = R*S*C. Input pixel (p, q) reaches
// output pixel (h, w) through tap (r, t) when h = p*sh - pad_top + r*dh, w = q*sw - pad_left +
// t*dw.
//   forward:  y = act(col2im(X . W^T) + b)     X[M,K], W[L,K]: row m of X . W^T is what
//                                              input pixel m adds to its R x S window of y
//   backward: dz = dy * act'(y); db (+= or =) colsum(dz)
//             dx (=) conv2d(dz, w): the forward convolution itself (stride s)
//             dw (+= or =) col(dz)^T . X: that convolution's weight gradient
// Paths, by shape:
//   forward  - 1x1 stride 1: one GEMM (bias and ReLU in its store);
//            - stride 1, H = P, W = Q ('same'): conv2d_dx_by_forward (the flipped kernel);
//            - C % NR == 0 and N >= 2: direct (forward_direct_unit);
//            - else a GEMM into dcol chunks + conv2d_col2im (the general path).
//   backward - C % NR == 0 and N >= 2: direct (backward_direct_chunk);
//            - else conv2d_forward (dx) and conv2d_backward without dx (dw).
// The direct paths multiply only (pixel, tap) pairs whose output lies inside y: with 'same'
// padding, 4x4 stride 2 on 8x8 inputs, 12% of the pairs of the dense products land in the
// padding (border pixels' outer taps), and the GEMM paths compute them and throw them away.
// Work units are groups of whole images fixed by the shape alone, never by the thread count,
// and every sum runs in an order fixed by the shape: results are the same for any count.
#include <cstring>

#include "common/threading.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Per-thread buffers of about this size (dcol chunks; a unit's y; a chunk's dz and x): they
// stay in L2 between the loop that writes them and the ones that read them (as conv_common.h's
// kColBytes). The direct forward's unit of y: 256 KiB to 2 MiB measured within noise at the
// bench shape (0.66-0.70 ms); 512 KiB taken.
constexpr int64_t kChunkBytes = int64_t(1) << 20;
constexpr int64_t kUnitBytes = int64_t(1) << 19;
// Groups of whole images for the reductions over pixels (dw, db): as many as 8 threads could
// share evenly, few enough that adding the partial dw's stays cheap.
constexpr int64_t kUnits = 8;

// rows [0, n) of y[n, C] = b (or zeros); a plain loop the compiler vectorises (rather than a
// memcpy call per row of C values).
template <typename T>
void fill_bias_rows(T* __restrict y, const T* __restrict b, int64_t n, int64_t C) {
  if (!b) {
    std::memset(y, 0, sizeof(T) * n * C);
    return;
  }
  for (int64_t i = 0; i < n; ++i, y += C)
    for (int64_t c = 0; c < C; ++c) y[c] = b[c];
}

inline bool is_pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.P == s.H && s.Q == s.W;
}

// As conv_backward.cpp's dx_by_forward: stride 1 and an output as large as the input ('same'),
// where the flipped-kernel forward does the multiply-adds col2im would, with no scatter pass.
inline bool by_flipped_forward(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.P == s.H && s.Q == s.W;
}

// The input pixels p in [*lo, *hi) (of P) whose tap at offset `off` (r*dh) lands inside the
// output's [0, n): p*stride - pad + off in [0, n).
inline void tap_range(int64_t n, int64_t P, int64_t stride, int64_t pad, int64_t off,
                      int64_t* lo, int64_t* hi) {
  const int64_t a = pad - off;  // p*stride >= a and p*stride < n + a
  *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  *hi = n + a <= 0 ? 0 : (n + a + stride - 1) / stride;
  if (*lo > P) *lo = P;
  if (*hi > P) *hi = P;
  if (*hi < *lo) *hi = *lo;
}

// rows dst[i] (i < mr), nr <= NR columns: += acc (or = when !add).
template <typename T, int MR>
inline void put_tile_rows(const vec_t<T> (&acc)[MR][Blocking<T>::NV], T* const* dst,
                          int64_t mr, int64_t nr, bool add) {
  constexpr int NV = Blocking<T>::NV, L = Vec<T>::lanes, NR = Blocking<T>::NR;
  if (nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= mr) break;
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        vec_t<T> v = acc[i][j];
        if (add) v += vload(dst[i] + j * L);
        vstore(dst[i] + j * L, v);
      }
    }
    return;
  }
  alignas(64) T buf[NR];
  for (int i = 0; i < MR && i < mr; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) vstore(buf + j * L, acc[i][j]);
    for (int64_t j = 0; j < nr; ++j) dst[i][j] = add ? dst[i][j] + buf[j] : buf[j];
  }
}

// ---- Forward, GEMM + col2im: the general path ----
// Images [n0, n1) of y: bias, then += every input pixel's window (dcol chunks of `rows`
// pixels in `col`), then the activation while the unit's y is still in cache.
template <typename T>
void forward_col2im_unit(T* y, const T* x, const T* w, const T* b, T* col, const Conv2dShape& s,
                         Activation act, int64_t n0, int64_t n1, int64_t rows) {
  const int64_t K = s.K, C = s.C, L = s.R * s.S * C, PQ = s.P * s.Q, HW = s.H * s.W;
  T* yu = y + n0 * HW * C;
  fill_bias_rows<T>(yu, b, (n1 - n0) * HW, C);
  for (int64_t m0 = n0 * PQ, e = n1 * PQ; m0 < e; m0 += rows) {
    const int64_t m1 = m0 + rows < e ? m0 + rows : e;
    gemm<T>(col, x + m0 * K, w, nullptr, m1 - m0, L, K, /*lda=*/K, /*ldb=*/K, /*ldc=*/L, false,
            /*trans_b=*/true, false, false);
    conv2d_col2im<T>(y, col, s, m0, m1);
  }
  if (act != Activation::linear) activation_forward<T>(yu, yu, (n1 - n0) * HW, C, act);
}

// ---- Forward, direct: register tiles added straight into y (no dcol, no col2im) ----
// Per tap (r, t), the unit's input pixels whose output lies inside y, MR at a time: acc =
// X[those pixels, k0..] . Wf(r, t)[k0.., jp*NR..] (rows of X read in place), and row i is added
// into y at pixel i's output for that tap. C % NR == 0: a tile's columns are filters of one
// tap, so its store is MR additions of NR contiguous values. Loop order: K block, tap, filter
// panel outside, pixels inside: the tap's kc x NR panel of Wf stays in L1 while the unit's X
// and y stay in L2. 64->32 4x4 stride 2 'same' 8x8 b64, 2 threads, min of 200: GEMM + col2im
// 0.95 ms; packed X tiles of consecutive pixels with the outside rows dropped 0.66-0.78 ms;
// only the inside pairs, X in place 0.66-0.70 ms (the A/B alternating: 0.79 -> 0.70).
//   Wf (packed once per call): panel (g = r*S + t, jp) at Wf + (g*npan + jp)*K*NR, element
//   (k, j) at k*NR + j = w[(g*C + jp*NR + j)*K + k].
template <typename T, int MR>
inline void scatter_tile(T* const* dst, const T* const* rows, const T* bp, int64_t mr,
                         int64_t kc) {
  vec_t<T> acc[MR][Blocking<T>::NV];
  zero_tile<T>(acc);
  micro_accumulate<T, MR>(acc, kc, rows, 1, bp, Blocking<T>::NR);
  put_tile_rows<T, MR>(acc, dst, mr, Blocking<T>::NR, true);
}

// Images [n0, n1) of y = act(b + every inside tap of their input pixels).
template <typename T>
void forward_direct_unit(T* y, const T* x, const T* wf, const T* b, const Conv2dShape& s,
                         Activation act, int64_t n0, int64_t n1) {
  constexpr int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR, KC = Blocking<T>::KC;
  const int64_t K = s.K, C = s.C, HW = s.H * s.W, npan = C / NR;
  T* yu = y + n0 * HW * C;
  fill_bias_rows<T>(yu, b, (n1 - n0) * HW, C);
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = min64(KC, K - k0);
    for (int64_t r = 0; r < s.R; ++r) {
      int64_t plo, phi;
      tap_range(s.H, s.P, s.stride_h, s.pad_top, r * s.dil_h, &plo, &phi);
      for (int64_t t = 0; t < s.S; ++t) {
        int64_t qlo, qhi;
        tap_range(s.W, s.Q, s.stride_w, s.pad_left, t * s.dil_w, &qlo, &qhi);
        if (qlo >= qhi || plo >= phi) continue;
        for (int64_t jp = 0; jp < npan; ++jp) {
          const T* bp = wf + ((r * s.S + t) * npan + jp) * K * NR + k0 * NR;
          const T* rows[MR];
          T* dst[MR];
          int64_t i = 0;
          auto flush = [&]() {  // rows past i re-read row 0 (computed, not stored)
            for (int64_t j = i; j < MR; ++j) rows[j] = rows[0];
            scatter_tile<T, MR>(dst, rows, bp, i, kc);
            i = 0;
          };
          for (int64_t n = n0; n < n1; ++n)
            for (int64_t p = plo; p < phi; ++p) {
              const int64_t oh = p * s.stride_h - s.pad_top + r * s.dil_h;
              const T* xrow = x + (n * s.P + p) * s.Q * K + k0;
              T* yrow = y + (n * HW + oh * s.W) * C + jp * NR;
              for (int64_t q = qlo; q < qhi; ++q) {
                rows[i] = xrow + q * K;
                dst[i] = yrow + (q * s.stride_w - s.pad_left + t * s.dil_w) * C;
                if (++i == MR) flush();
              }
            }
          if (i > 0) flush();
        }
      }
    }
  }
  if (act != Activation::linear) activation_forward<T>(yu, yu, (n1 - n0) * HW, C, act);
}

// ---- Backward, direct: both products read dz and x in place, inside pairs only ----
// Per chunk of images (about kChunkBytes of dz, in L2 for all its passes):
//   dw, per tap (r, t), over the chunk's pixels whose tap lies inside dz: register tiles of MR
//     in-channels x NR filters, acc(i, j) += x[m, k0 + i] * dz[pixel m's tap, j0 + j], stored
//     to the group's partial dW^T[tap, in-channel, filter] (= on the group's first chunk, else
//     +=). The partials are transposed into dw[r, t, c, k] when added up. (Blocks of 32-256
//     pixels so that every in-channel tile reuses a block's rows from L1: no faster, 1 thread
//     1.39-1.48 ms either way.)
//   dx, per class of pixels with the same rectangle of inside taps, rows [rlo, rhi) x columns
//     [tlo, thi) of the kernel (one class holds the interior, the others the borders): tiles
//     of MR pixels x NR in-channels, acc over the rectangle's kernel rows of one run of
//     (thi - tlo)*C contiguous values of dz each (dil_w = 1; else C per tap) times the
//     matching rows of Wb (W[L, K] packed once into NR-wide zero-padded panels); stored once.
// 64->32 4x4 stride 2 'same' 8x8 b64, 2 threads: conv2d_forward + conv2d_backward (im2col)
// 1.85 ms; a zero-padded copy of dz read by all (pixel, tap) pairs 1.22-1.34 ms; inside pairs
// only, straight from dz, 1.21-1.31 ms (min of 150, the two alternating in one process: the
// same within noise; kept, as it needs no copy and no bound on the padding's size). Per-tap
// tiles for the border pixels' dx (the first version) or one class per inside-tap rectangle
// (this one): the same too.

// acc += a . b over kc list entries: a(i, k) = xa[li[k]*lda + i] (MR consecutive values of one
// row), b(k, :) = bz[k] + boff (NR wide).
template <typename T, int MR>
inline void micro_dw(vec_t<T> (&acc)[MR][Blocking<T>::NV], int64_t kc, const T* xa,
                     int64_t lda, const int64_t* li, const T* const* bz, int64_t boff) {
  using V = vec_t<T>;
  constexpr int NV = Blocking<T>::NV, L = Vec<T>::lanes;
  for (int64_t k = 0; k < kc; ++k) {
    const T* a = xa + li[k] * lda;
    const T* b = bz[k] + boff;
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = vload(b + j * L);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = vsplat(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
}

// The kernel rows [*lo, *hi) of input pixel p whose taps land inside the output's [0, n):
// p*stride - pad + r*dil in [0, n).
inline void inside_taps(int64_t p, int64_t n, int64_t R, int64_t stride, int64_t pad,
                        int64_t dil, int64_t* lo, int64_t* hi) {
  const int64_t o = p * stride - pad;  // r*dil >= -o and r*dil < n - o
  *lo = o >= 0 ? 0 : (-o + dil - 1) / dil;
  *hi = n - o <= 0 ? 0 : (n - o + dil - 1) / dil;
  if (*hi > R) *hi = R;
  if (*lo > *hi) *lo = *hi;
}

// Runs of consecutive input pixels along one axis with the same inside taps:
// run i = pixels [cut[i], cut[i + 1]) with taps [lo[i], hi[i]). Returns the number of runs.
inline int64_t tap_classes(int64_t P, int64_t n, int64_t R, int64_t stride, int64_t pad,
                           int64_t dil, int64_t* cut, int64_t* lo, int64_t* hi) {
  int64_t count = 0;
  for (int64_t p = 0; p < P; ++p) {
    int64_t a, b;
    inside_taps(p, n, R, stride, pad, dil, &a, &b);
    if (count == 0 || a != lo[count - 1] || b != hi[count - 1]) {
      cut[count] = p, lo[count] = a, hi[count] = b;
      ++count;
    }
  }
  cut[count] = P;
  return count;
}

// What a chunk's work needs besides the arrays: the per-thread lists and the call's geometry.
template <typename T>
struct BackwardChunk {
  const Conv2dShape& s;
  const T* dz;
  const T* x;
  const T* wb;  // W packed, (K/NR rounded up) panels of L x NR
  // pixel classes along h and w (tap_classes); the arrays hold P + 1 and Q + 1 entries
  int64_t nph, npw;
  const int64_t *hcut, *hlo, *hhi, *wcut, *wlo, *whi;
  // per-thread lists (one chunk's pixels): dz pointers, local pixel indices, x's tail rows
  const T** bz;
  int64_t* li;
  T* xtail;  // K % MR != 0: [pixel][MR] the last in-channels, zero-padded
};

template <typename T>
void backward_direct_chunk(const BackwardChunk<T>& bc, T* dx, T* pwt, T* pb, int64_t c0,
                           int64_t c1, bool first) {
  constexpr int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR, NV = Blocking<T>::NV;
  const Conv2dShape& s = bc.s;
  const int64_t K = s.K, C = s.C, PQ = s.P * s.Q, HW = s.H * s.W, L = s.R * s.S * C;
  const int64_t a = c0 * PQ, npx = (c1 - c0) * PQ, nf = C / NR, nk = (K + NR - 1) / NR;
  const T* dzc = bc.dz + c0 * HW * C;
  const T* xc = bc.x + a * K;
  if (pb) add_column_sums<T>(pb, dzc, (c1 - c0) * HW, C);
  const int64_t ktail = K / MR * MR;  // first in-channel of the short tile, if any
  if (ktail < K)
    for (int64_t m = 0; m < npx; ++m)
      for (int64_t i = 0; i < MR; ++i)
        bc.xtail[m * MR + i] = ktail + i < K ? xc[m * K + ktail + i] : T(0);
  // dw^T[g, k0 + i, j0 + j], per tap g = (r, t).
  for (int64_t r = 0; r < s.R; ++r) {
    int64_t plo, phi;
    tap_range(s.H, s.P, s.stride_h, s.pad_top, r * s.dil_h, &plo, &phi);
    for (int64_t t = 0; t < s.S; ++t) {
      int64_t qlo, qhi;
      tap_range(s.W, s.Q, s.stride_w, s.pad_left, t * s.dil_w, &qlo, &qhi);
      const int64_t g = r * s.S + t;
      int64_t cnt = 0;  // the chunk's pixels with this tap inside dz, in pixel order
      for (int64_t n = 0; n < c1 - c0; ++n)
        for (int64_t p = plo; p < phi; ++p) {
          const int64_t oh = p * s.stride_h - s.pad_top + r * s.dil_h;
          const T* zrow = dzc + (n * HW + oh * s.W) * C;
          for (int64_t q = qlo; q < qhi; ++q) {
            bc.bz[cnt] = zrow + (q * s.stride_w - s.pad_left + t * s.dil_w) * C;
            bc.li[cnt++] = n * PQ + p * s.Q + q;
          }
        }
      for (int64_t k0 = 0; k0 < K; k0 += MR) {
        const int64_t mr = min64(MR, K - k0);
        const T* xa = k0 < ktail ? xc + k0 : bc.xtail;
        const int64_t lda = k0 < ktail ? K : MR;
        for (int64_t jf = 0; jf < nf; ++jf)
          with_tile_rows<T>(mr, [&](auto rows) {
            constexpr int R = decltype(rows)::value;
            vec_t<T> acc[R][NV];
            zero_tile<T>(acc);
            micro_dw<T, R>(acc, cnt, xa, lda, bc.li, bc.bz, jf * NR);
            store_tile<T, R, NV>(acc, pwt + (g * K + k0) * C + jf * NR, C, mr, NR, !first,
                                 nullptr, false);
          });
      }
    }
  }
  if (!dx) return;
  // dx, per class of pixels (same inside-tap rectangle).
  const bool runs = s.dil_w == 1;
  for (int64_t ch = 0; ch < bc.nph; ++ch)
    for (int64_t cw = 0; cw < bc.npw; ++cw) {
      const int64_t rlo = bc.hlo[ch], rhi = bc.hhi[ch], tlo = bc.wlo[cw], thi = bc.whi[cw];
      int64_t cnt = 0;  // the class's pixels of the chunk; bz: the pixel's tap (rlo, tlo)
      for (int64_t n = 0; n < c1 - c0; ++n)
        for (int64_t p = bc.hcut[ch]; p < bc.hcut[ch + 1]; ++p)
          for (int64_t q = bc.wcut[cw]; q < bc.wcut[cw + 1]; ++q) {
            bc.bz[cnt] = dzc + (n * HW + (p * s.stride_h - s.pad_top + rlo * s.dil_h) * s.W +
                                q * s.stride_w - s.pad_left + tlo * s.dil_w) * C;
            bc.li[cnt++] = n * PQ + p * s.Q + q;
          }
      if (rlo >= rhi || tlo >= thi) {  // no tap inside: dx = 0
        for (int64_t k = 0; k < cnt; ++k) std::memset(dx + (a + bc.li[k]) * K, 0, sizeof(T) * K);
        continue;
      }
      // segments: kernel rows (a run of taps [tlo, thi)) or single taps
      const int64_t nt_ = thi - tlo, nseg = runs ? rhi - rlo : (rhi - rlo) * nt_;
      const int64_t len = runs ? nt_ * C : C;
      for (int64_t jp = 0; jp < nk; ++jp) {
        const int64_t nr = min64(NR, K - jp * NR);
        for (int64_t i0 = 0; i0 < cnt; i0 += MR) {
          const int64_t mr = min64(MR, cnt - i0);
          with_tile_rows<T>(mr, [&](auto rows) {
            constexpr int R = decltype(rows)::value;
            vec_t<T> acc[R][NV];
            zero_tile<T>(acc);
            const T* rp[R];
            T* dst[R];
            for (int64_t sg = 0; sg < nseg; ++sg) {
              const int64_t dr = runs ? sg : sg / nt_, dt = runs ? 0 : sg % nt_;
              const int64_t off = (dr * s.dil_h * s.W + dt * s.dil_w) * C;
              const T* bp = bc.wb + (jp * L + ((rlo + dr) * s.S + tlo + dt) * C) * NR;
#pragma GCC unroll 16
              for (int i = 0; i < R; ++i) rp[i] = bc.bz[i0 + (i < mr ? i : 0)] + off;
              micro_accumulate<T, R>(acc, len, rp, 1, bp, NR);
            }
#pragma GCC unroll 16
            for (int i = 0; i < R; ++i)
              dst[i] = dx + (a + bc.li[i0 + (i < mr ? i : 0)]) * K + jp * NR;
            put_tile_rows<T, R>(acc, dst, mr, nr, false);
          });
        }
      }
    }
}

}  // namespace

// y[N,H,W,C] (=) act(transposed convolution of x[N,P,Q,K] with w[R,S,C,K] + b[C]); b may be
// null. Threads: units of whole images on different threads; with fewer units than threads
// (batch 1) the GEMM + col2im units run in turn and each GEMM uses all threads.
template <typename T>
void conv2d_transpose_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                              Activation act) {
  constexpr int64_t NR = Blocking<T>::NR;
  const int64_t M = s.N * s.P * s.Q, K = s.K, C = s.C, L = s.R * s.S * C;
  const int64_t HW = s.H * s.W, ysize = s.N * HW * C;
  if (ysize <= 0) return;
  if (M <= 0 || K <= 0) {  // no input pixel (or channel) reaches y: act(b) everywhere
    fill_bias_rows<T>(y, b, s.N * HW, C);
    if (act != Activation::linear) activation_forward<T>(y, y, s.N * HW, C, act);
    return;
  }
  if (is_pointwise(s)) {  // y[M,C] = X . W^T, bias and ReLU in the GEMM's store
    const bool relu = act == Activation::relu;
    gemm<T>(y, x, w, b, M, C, K, /*lda=*/K, /*ldb=*/K, /*ldc=*/C, false, /*trans_b=*/true,
            false, relu);
    if (act != Activation::linear && !relu) activation_forward<T>(y, y, M, C, act);
    return;
  }
  if (by_flipped_forward(s)) {
    conv2d_dx_by_forward<T>(y, x, w, b, s, act);
    return;
  }
  const int nt = threads_for_work(2.0 * double(M) * double(K) * double(L));
  if (C % NR == 0 && s.N >= 2) {  // (N = 1 takes the GEMM path on any thread count)
    // Units: whole images, about kUnitBytes of y each (at least one image, and at least nt
    // units); any split gives the same sums (an element of y only gets its own image's terms,
    // in the order of the loops of forward_direct_unit).
    const int64_t ipu = min64(max64(kUnitBytes / int64_t(sizeof(T)) / (HW * C), 1),
                              (s.N + nt - 1) / nt);
    const int64_t units = (s.N + ipu - 1) / ipu, npan = C / NR;
    T* wf = static_cast<T*>(thread_workspace(kConvFlip, sizeof(T) * L * K));
    for (int64_t g = 0; g < s.R * s.S; ++g)
      for (int64_t jp = 0; jp < npan; ++jp)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t j = 0; j < NR; ++j)
            wf[((g * npan + jp) * K + k) * NR + j] = w[(g * C + jp * NR + j) * K + k];
    parallel_ranges(units, nt, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u)
        forward_direct_unit<T>(y, x, wf, b, s, act, u * ipu, min64(s.N, (u + 1) * ipu));
    });
    return;
  }
  const int64_t G = s.N < kUnits ? s.N : kUnits;
  const int64_t rows = min64(max64(kChunkBytes / int64_t(sizeof(T)) / L, 16), M);
  if (G < nt) {
    T* col = static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * rows * L));
    for (int64_t g = 0; g < G; ++g)
      forward_col2im_unit<T>(y, x, w, b, col, s, act, s.N * g / G, s.N * (g + 1) / G, rows);
    return;
  }
  parallel_ranges(G, nt, [&](int64_t g0, int64_t g1) {
    T* col = static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * rows * L));
    for (int64_t g = g0; g < g1; ++g)
      forward_col2im_unit<T>(y, x, w, b, col, s, act, s.N * g / G, s.N * (g + 1) / G, rows);
  });
}

// dz = dy * act'(y) (dy, y [N,H,W,C]; y unused for linear); db[C] (+= or =, may be null)
// colsum(dz); dx[N,P,Q,K] (=, may be null) the forward convolution of dz; dw[R,S,C,K] (+= or =)
// its weight gradient against x. A whole dz (non-linear activations) lives in the calling
// thread's kConvDz workspace (conv2d_forward, and conv2d_backward without dx, never use it).
template <typename T>
void conv2d_transpose_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const T* y, const Conv2dShape& s, Activation act,
                               bool accumulate) {
  constexpr int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  const int64_t M = s.N * s.P * s.Q, K = s.K, C = s.C, L = s.R * s.S * C, LK = L * K;
  const int64_t HW = s.H * s.W, ypix = s.N * HW;
  const T* dz = dy;
  if (act != Activation::linear && ypix * C > 0) {
    T* buf = static_cast<T*>(thread_workspace(kConvDz, sizeof(T) * ypix * C));
    activation_backward<T>(buf, dy, y, ypix, C, act);
    dz = buf;
  }
  const int nt = threads_for_work(4.0 * double(M) * double(K) * double(L));
  const int64_t G = s.N < kUnits ? s.N : kUnits;
  if (M > 0 && LK > 0 && HW > 0 && C % NR == 0 && G >= 2) {  // (N = 1: on any thread count)
    const int64_t PQ = s.P * s.Q, nk = (K + NR - 1) / NR, stride = LK + C;
    const int64_t ipc = min64(max64(kChunkBytes / int64_t(sizeof(T)) / (HW * C), 1),
                              (s.N + G - 1) / G);  // images per chunk
    T* wb = static_cast<T*>(thread_workspace(kConvFlip, sizeof(T) * nk * L * NR));
    for (int64_t jp = 0; jp < nk; ++jp)
      for (int64_t l = 0; l < L; ++l)
        for (int64_t j = 0; j < NR; ++j)
          wb[(jp * L + l) * NR + j] = jp * NR + j < K ? w[l * K + jp * NR + j] : T(0);
    // Pixel classes along each axis (the same for every image and chunk).
    int64_t* cls = static_cast<int64_t*>(
        thread_workspace(kConvGrad, sizeof(int64_t) * 3 * (s.P + s.Q + 2)));
    int64_t *hcut = cls, *hlo = hcut + s.P + 1, *hhi = hlo + s.P + 1;
    int64_t *wcut = hhi + s.P + 1, *wlo = wcut + s.Q + 1, *whi = wlo + s.Q + 1;
    const int64_t nph = tap_classes(s.P, s.H, s.R, s.stride_h, s.pad_top, s.dil_h, hcut, hlo, hhi);
    const int64_t npw = tap_classes(s.Q, s.W, s.S, s.stride_w, s.pad_left, s.dil_w, wcut, wlo, whi);
    BackwardChunk<T> proto{s, dz, x, wb, nph, npw, hcut, hlo, hhi, wcut, wlo, whi,
                           nullptr, nullptr, nullptr};
    // Partials: G blocks of [dW^T (R*S, K, C) | db (C)], in the calling thread's workspace.
    T* part = static_cast<T*>(thread_workspace(kConvPartial, sizeof(T) * G * stride));
    parallel_ranges(G, nt, [&](int64_t g0, int64_t g1) {
      const int64_t n = ipc * PQ;  // [bz | li | xtail] of one chunk
      char* buf = static_cast<char*>(thread_workspace(
          kConvCol, (sizeof(T*) + sizeof(int64_t) + sizeof(T) * MR) * n + 64));
      BackwardChunk<T> bc = proto;
      bc.bz = reinterpret_cast<const T**>(buf);
      bc.li = reinterpret_cast<int64_t*>(buf + sizeof(T*) * n);
      bc.xtail = reinterpret_cast<T*>(buf + (sizeof(T*) + sizeof(int64_t)) * n);
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t n0 = s.N * g / G, n1 = s.N * (g + 1) / G;
        T* pwt = part + g * stride;
        T* pb = db ? pwt + LK : nullptr;
        if (pb) std::memset(pb, 0, sizeof(T) * C);
        for (int64_t c0 = n0; c0 < n1; c0 += ipc)
          backward_direct_chunk<T>(bc, dx, pwt, pb, c0, min64(n1, c0 + ipc), c0 == n0);
      }
    });
    // dw, db (=|+=) the partials in group order, each element independently (any split);
    // dw[tap, c, k] from dW^T[tap, k, c]: rows (tap, c) of dw split over the threads.
    const int64_t nrows = s.R * s.S * C;
    parallel_ranges(nrows + 1, threads_for_work(8.0 * double(G * stride)),
                    [&](int64_t lo, int64_t hi) {
      for (int64_t row = lo; row < hi; ++row) {
        if (row == nrows) {  // db
          if (db)
            for (int64_t c = 0; c < C; ++c) {
              T sum = part[LK + c];
              for (int64_t g = 1; g < G; ++g) sum += part[g * stride + LK + c];
              db[c] = accumulate ? db[c] + sum : sum;
            }
          continue;
        }
        const int64_t tap = row / C, c = row % C;
        const T* src = part + tap * K * C + c;  // + k*C, + g*stride
        T* d = dw + row * K;
        for (int64_t k = 0; k < K; ++k) {
          T sum = src[k * C];
          for (int64_t g = 1; g < G; ++g) sum += src[g * stride + k * C];
          d[k] = accumulate ? d[k] + sum : sum;
        }
      }
    });
    return;
  }
  if (db && C > 0) {  // serial: the same sum for any thread count
    if (!accumulate) std::memset(db, 0, sizeof(T) * C);
    add_column_sums<T>(db, dz, ypix, C);
  }
  if (dx && M * K > 0) {
    if (L > 0 && ypix > 0)
      conv2d_forward<T>(dx, dz, w, nullptr, s, Activation::linear);
    else
      std::memset(dx, 0, sizeof(T) * M * K);
  }
  if (LK > 0)
    conv2d_backward<T>(nullptr, dw, nullptr, x, dz, w, nullptr, s, Activation::linear,
                       accumulate);
}

template void conv2d_transpose_forward<float>(float*, const float*, const float*, const float*,
                                              const Conv2dShape&, Activation);
template void conv2d_transpose_forward<double>(double*, const double*, const double*,
                                               const double*, const Conv2dShape&, Activation);
template void conv2d_transpose_backward<float>(float*, float*, float*, const float*,
                                               const float*, const float*, const float*,
                                               const Conv2dShape&, Activation, bool);
template void conv2d_transpose_backward<double>(double*, double*, double*, const double*,
                                                const double*, const double*, const double*,
                                                const Conv2dShape&, Activation, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
