// 2-D convolution, NHWC x HWIO, on top of the packed GEMM; compiled once per ISA (see kernels.h).
// Letters: N batch, H W input height width, C in-channels, K out-channels (filters),
// R S kernel height width, P Q output height width; M = N*P*Q output pixels, L = R*S*C.
//   x[N,H,W,C]  w[R,S,C,K] (= the matrix W[L,K], no copy)  b[K]  y[N,P,Q,K] (= Y[M,K])
//   forward:  Y = act(col(x) . W + b)          col(x)[M,L]: row m = the (r, s, c) window of
//                                              output pixel m, zeros outside the input
//   backward: dz = dy * act'(y)                (skipped for linear)
//             dW[L,K] (+= or =) col(x)^T . dz ; db[K] (+= or =) colsum(dz)
//             dx (=) col2im(dz . W^T)          (scatter-add of each row's window into dx)
// 1x1 kernels with stride 1 (so no padding) skip im2col: col(x) is x viewed as [N*H*W, C].
// Otherwise col(x) is built in chunks of whole output rows into a per-thread workspace of
// about kColBytes, so memory stays bounded for any batch. The chunking depends only on the
// shape and dtype, never on the thread count, so sums run in the same order for any count.
#include <cstring>

#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Size of one im2col chunk: large enough that each chunk's GEMM has thousands of rows (it
// splits them over threads and packs W once per chunk), small enough to stay in L2/L3.
constexpr int64_t kColBytes = int64_t(2) << 20;

inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline bool is_pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.P == s.H && s.Q == s.W;
}

// Output rows per im2col chunk: whole images when one fits the budget, else a slice of one.
inline int64_t chunk_rows(const Conv2dShape& s, int64_t L, size_t elem) {
  const int64_t PQ = s.P * s.Q;
  int64_t rows = max64(kColBytes / int64_t(elem) / max64(L, 1), 64);
  if (PQ > 0 && rows >= PQ) rows = rows / PQ * PQ;
  return rows;
}

// Threads for a copy/scatter loop touching n elements (~1/8 of a flop's worth of time each).
inline int copy_threads(int64_t n) { return threads_for_work(8.0 * double(n)); }

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

template <typename T>
void im2col(T* col, const T* x, const Conv2dShape& s, int64_t m0, int64_t m1) {
  const int64_t L = s.R * s.S * s.C;
  parallel_ranges(m1 - m0, copy_threads((m1 - m0) * L), [&](int64_t lo, int64_t hi) {
    im2col_rows<T>(col + lo * L, x, s, m0 + lo, m0 + hi);
  });
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

// col2im of rows [m0, m1). Threads split the images the chunk touches, so no two threads
// write the same dx element and each element sums its rows in increasing order.
template <typename T>
void col2im(T* dx, const T* dcol, const Conv2dShape& s, int64_t m0, int64_t m1) {
  const int64_t PQ = s.P * s.Q, L = s.R * s.S * s.C;
  const int64_t n0 = m0 / PQ, n1 = (m1 - 1) / PQ + 1;
  parallel_ranges(n1 - n0, copy_threads((m1 - m0) * L), [&](int64_t lo, int64_t hi) {
    const int64_t a = max64(m0, (n0 + lo) * PQ), e = min64(m1, (n0 + hi) * PQ);
    col2im_rows<T>(dx, dcol, s, a, e, m0);
  });
}

}  // namespace

// y[N,P,Q,K] = act(conv2d(x[N,H,W,C], w[R,S,C,K]) + b[K]); b may be null. y is overwritten.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act) {
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  const bool relu = act == Activation::relu;
  const bool post = act != Activation::linear && !relu;
  if (M <= 0 || K <= 0) return;
  if (is_pointwise(s)) {
    gemm<T>(y, x, w, b, M, K, L, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, false, false, false, relu);
    if (post) activation_forward<T>(y, y, M, K, act);
    return;
  }
  const int64_t rows = chunk_rows(s, L, sizeof(T));
  T* col = static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * max64(min64(rows, M) * L, 1)));
  for (int64_t m0 = 0; m0 < M; m0 += rows) {
    const int64_t m1 = min64(M, m0 + rows), mc = m1 - m0;
    im2col<T>(col, x, s, m0, m1);
    T* yc = y + m0 * K;
    gemm<T>(yc, col, w, b, mc, K, L, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, false, false, false, relu);
    if (post) activation_forward<T>(yc, yc, mc, K, act);  // while the chunk is in cache
  }
}

// dz = dy * act'(y); dw[R,S,C,K] (+= when accumulate, else =) col(x)^T . dz;
// db[K] (same, may be null) colsum(dz); dx[N,H,W,C] (=, may be null) col2im(dz . W^T).
// y[N,P,Q,K] is the forward output (unused for linear).
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                     const Conv2dShape& s, Activation act, bool accumulate) {
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  const int64_t xsize = s.N * s.H * s.W * s.C;
  if (M <= 0 || K <= 0) {  // no output pixel: zero gradients (dw and db only when overwriting)
    if (!accumulate) {
      if (L * K > 0) std::memset(dw, 0, sizeof(T) * L * K);
      if (db && K > 0) std::memset(db, 0, sizeof(T) * K);
    }
    if (dx && xsize > 0) std::memset(dx, 0, sizeof(T) * xsize);
    return;
  }
  const T* dz = dy;
  if (act != Activation::linear) {
    T* buf = static_cast<T*>(thread_workspace(kConvGrad, sizeof(T) * M * K));
    activation_backward<T>(buf, dy, y, M, K, act);
    dz = buf;
  }
  if (db) {  // serial, in row order: the same sum for any thread count
    if (!accumulate)
      for (int64_t j = 0; j < K; ++j) db[j] = T(0);
    for (int64_t i = 0; i < M; ++i) {
      const T* row = dz + i * K;
      for (int64_t j = 0; j < K; ++j) db[j] += row[j];
    }
  }
  if (is_pointwise(s)) {
    gemm<T>(dw, x, dz, nullptr, L, K, M, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, /*trans_a=*/true,
            false, accumulate, false);
    if (dx)
      gemm<T>(dx, dz, w, nullptr, M, L, K, /*lda=*/K, /*ldb=*/K, /*ldc=*/L, false,
              /*trans_b=*/true, false, false);
    return;
  }
  if (dx) std::memset(dx, 0, sizeof(T) * xsize);
  const int64_t rows = chunk_rows(s, L, sizeof(T));
  T* col = static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * max64(min64(rows, M) * L, 1)));
  for (int64_t m0 = 0; m0 < M; m0 += rows) {
    const int64_t m1 = min64(M, m0 + rows), mc = m1 - m0;
    const T* dzc = dz + m0 * K;
    im2col<T>(col, x, s, m0, m1);
    gemm<T>(dw, col, dzc, nullptr, L, K, mc, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, /*trans_a=*/true,
            false, /*accumulate=*/m0 > 0 || accumulate, false);
    if (!dx) continue;
    // col is free again: reuse it for dcol[mc, L] = dz_chunk . W^T.
    gemm<T>(col, dzc, w, nullptr, mc, L, K, /*lda=*/K, /*ldb=*/K, /*ldc=*/L, false,
            /*trans_b=*/true, false, false);
    col2im<T>(dx, col, s, m0, m1);
  }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*,
                                    const Conv2dShape&, Activation);
template void conv2d_forward<double>(double*, const double*, const double*, const double*,
                                     const Conv2dShape&, Activation);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const float*, const Conv2dShape&, Activation,
                                     bool);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const double*, const Conv2dShape&,
                                      Activation, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
