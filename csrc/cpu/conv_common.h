// 2-D convolution, NHWC x HWIO, on top of the packed GEMM: what conv_forward.cpp and
// conv_backward.cpp share (internal linkage, compiled into each once per ISA; see kernels.h):
// the math, the chunking of col(x) in both directions, and col(x) itself unpacked
// (im2col_rows, and its transpose col2im_rows; the forward writes its packed form itself).
// Letters: N batch, H W input height width, C in-channels, K out-channels (filters),
// R S kernel height width, P Q output height width; M = N*P*Q output pixels, L = R*S*C.
//   x[N,H,W,C]  w[R,S,C,K] (= the matrix W[L,K], no copy)  b[K]  y[N,P,Q,K] (= Y[M,K])
//   forward:  Y = act(col(x) . W + b)          col(x)[M,L]: row m = the (r, s, c) window of
//                                              output pixel m, zeros outside the input
//   backward: dz = dy * act'(y)                (skipped for linear)
//             dW[L,K] (+= or =) col(x)^T . dz ; db[K] (+= or =) colsum(dz)
//             dx (=) col2im(dz . W^T)          (scatter-add of each row's window into dx)
//             or, stride 1 'same': dx = a forward convolution of dz with W flipped
//             (dx_by_forward); and for small L the dW product reads x in place
//             (small_l_dw), with no col(x) at all.
// 1x1 kernels with stride 1 (so no padding) skip im2col: col(x) is x viewed as [N*H*W, C].
// Otherwise col(x) is built in chunks of whole output rows into a per-thread workspace of
// about kColBytes, so memory stays bounded for any batch. The chunking depends only on the
// shape and dtype, never on the thread count, so sums run in the same order for any count.
//
// Threading (both directions): the im2col path is split into work units fixed by the shape
// alone (never by the thread count); each thread takes whole units, builds each unit's col
// sub-chunks in its own L2-sized workspace and runs a one-thread GEMM on it, so there is no
// fork/join per chunk and col never leaves the core's cache. (Before: one shared chunk of
// 2 MiB, im2col then a 2-thread GEMM per chunk; the 'same' 32x32x32 b64 backward spent
// most of its time in the serial parts.)
#pragma once
#include <cstdint>
#include <cstring>

#include "common/dispatch.h"
#include "common/threading.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Per-thread col sub-chunk size (each thread has its own). Measured 2 threads, one process,
// ms fwd/bwd at 128 / 256 / 512 / 1024 / 2048 KiB: 'same' 32x32x32 b64 9.5/22.5, 9.1/19.7,
// 9.0/19.4, 8.8/19.3, 8.8/19.1; 3->32 32x32 fwd 1.22, 1.25, 1.27, 1.28, 1.56 (2 MiB leaves
// too few chunks of whole images to balance two threads). 1 MiB: the best all round.
constexpr int64_t kColBytes = int64_t(1) << 20;

inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Output rows per im2col chunk: whole images when one fits the budget, else a slice of one.
inline int64_t chunk_rows(const Conv2dShape& s, int64_t L, size_t elem) {
  const int64_t PQ = s.P * s.Q;
  int64_t rows = max64(kColBytes / int64_t(elem) / max64(L, 1), 64);
  if (PQ > 0 && rows >= PQ) rows = rows / PQ * PQ;
  return rows;
}

// Backward work units (groups of whole images): enough for 8 threads to share evenly, few
// enough that adding the partial dW's stays cheap next to the GEMMs.
constexpr int64_t kUnits = 8;

// Rows per backward sub-chunk: col (and dcol) of kColBytes.
inline int64_t chunk_rows_sub(int64_t L, size_t elem) {
  return max64(kColBytes / int64_t(elem) / max64(L, 1), 16);
}

// Threads for a copy/scatter loop touching n elements (~1/8 of a flop's worth of time each).
inline int copy_threads(int64_t n) { return threads_for_work(8.0 * double(n)); }

inline bool is_pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.P == s.H && s.Q == s.W;
}

// col[m - m0, :] = window of output pixel m, for m in [m0, m1). col rows are L = R*S*C long,
// (r, s, c) order; out-of-input taps are zeros.
template <typename T>
void im2col_rows(T* col, const T* x, const Conv2dShape& s, int64_t m0, int64_t m1) {
  const int64_t C = s.C, SC = s.S * s.C, L = s.R * SC, PQ = s.P * s.Q;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t n = m / PQ, pq = m - n * PQ, p = pq / s.Q, q = pq - p * s.Q;
    const T* xn = x + n * s.H * s.W * C;
    T* dst = col + (m - m0) * L;
    const int64_t ih0 = p * s.stride_h - s.pad_top, iw0 = q * s.stride_w - s.pad_left;
    const bool w_inside = iw0 >= 0 && iw0 + (s.S - 1) * s.dil_w < s.W;
    for (int64_t r = 0; r < s.R; ++r, dst += SC) {
      const int64_t ih = ih0 + r * s.dil_h;
      if (ih < 0 || ih >= s.H) {
        std::memset(dst, 0, sizeof(T) * SC);
        continue;
      }
      const T* xrow = xn + ih * s.W * C;
      if (w_inside && s.dil_w == 1) {  // the S taps are one contiguous run of S*C values
        std::memcpy(dst, xrow + iw0 * C, sizeof(T) * SC);
        continue;
      }
      for (int64_t t = 0; t < s.S; ++t) {
        const int64_t iw = iw0 + t * s.dil_w;
        if (iw < 0 || iw >= s.W)
          std::memset(dst + t * C, 0, sizeof(T) * C);
        else
          std::memcpy(dst + t * C, xrow + iw * C, sizeof(T) * C);
      }
    }
  }
}

// dx += the windows of rows [m0, m1) of dcol (the transpose of im2col_rows), in row order.
template <typename T>
void col2im_rows(T* dx, const T* dcol, const Conv2dShape& s, int64_t m0, int64_t m1,
                 int64_t mbase) {
  const int64_t C = s.C, SC = s.S * s.C, L = s.R * SC, PQ = s.P * s.Q;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t n = m / PQ, pq = m - n * PQ, p = pq / s.Q, q = pq - p * s.Q;
    T* dxn = dx + n * s.H * s.W * C;
    const T* src = dcol + (m - mbase) * L;
    const int64_t ih0 = p * s.stride_h - s.pad_top, iw0 = q * s.stride_w - s.pad_left;
    for (int64_t r = 0; r < s.R; ++r, src += SC) {
      const int64_t ih = ih0 + r * s.dil_h;
      if (ih < 0 || ih >= s.H) continue;
      T* dxrow = dxn + ih * s.W * C;
      for (int64_t t = 0; t < s.S; ++t) {
        const int64_t iw = iw0 + t * s.dil_w;
        if (iw < 0 || iw >= s.W) continue;
        T* d = dxrow + iw * C;
        const T* v = src + t * C;
        for (int64_t c = 0; c < C; ++c) d[c] += v[c];
      }
    }
  }
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
