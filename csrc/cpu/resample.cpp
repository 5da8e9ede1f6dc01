// Nearest-neighbour upsampling and zero padding on NHWC, forward and backward, compiled once
// per ISA (see kernels.h). Legend: x, dx [N,H,W,C]; upsampling y, dy [N,P,Q,C] with
// P = H*sh, Q = W*sw (sh x sw = size_h x size_w); padding y, dy [N,P,Q,C] with
// P = pt + H + pb, Q = pl + W + pr (pads top, bottom, left, right).
//
//   upsampling2d_forward:   y[n, h*sh + i, w*sw + j, c] = x[n, h, w, c]            (=)
//   upsampling2d_backward:  dx[n, h, w, c] = sum_{i < sh, j < sw} dy[n, h*sh + i, w*sw + j, c]
//                           in (i, j) order                                      (=)
//   zeropadding2d_forward:  y = 0; y[n, pt + h, pl + w, c] = x[n, h, w, c]        (=)
//   zeropadding2d_backward: dx[n, h, w, c] = dy[n, pt + h, pl + w, c]             (=)
//
// Every pass moves memory and does (almost) no arithmetic: rows are copied whole where they
// can be (memcpy) and the inner loops run over the contiguous W*C or C axis. Threads split
// the rows that a pass writes (the input rows of x for upsampling forward and each dx; the
// output rows for padding forward): no two threads write one element, and each element's sum
// has a fixed order, so the result does not depend on the thread count.
#include <cstdint>
#include <cstring>

#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Threads for a pass that writes `values` elements, each counted as 4 flops: a second thread
// from 500k values (2 MB of float32). Upsampling 2x2 float32, min of 300, 1 -> 2 threads
// (Zen 5, 2 cores): 262k outputs fwd 15.1 -> 16.4 us, bwd 22.4 -> 20.1 (no gain, so one
// thread); 524k fwd 34 -> 20-31 us, bwd 36 -> 27-34; 4.2M fwd 290-360 -> 122-125 us.
inline int copy_threads(int64_t values) { return threads_for_work(4.0 * double(values)); }

// Upsampling forward for the input rows r = n*H + h in [lo, hi): output row r*sh is x's row
// with each cell repeated sw times, rows r*sh + 1 .. r*sh + sh - 1 are copies of it.
template <typename T>
void upsample_rows(T* y, const T* x, const Upsample2dShape& s, int64_t lo, int64_t hi) {
  const int64_t C = s.C, sw = s.size_w, WC = s.W * C, QC = s.W * sw * C;
  for (int64_t r = lo; r < hi; ++r) {
    const T* __restrict xr = x + r * WC;
    T* __restrict y0 = y + r * s.size_h * QC;
    if (C == 1) {  // one value per cell: repeat values, not rows of C
      for (int64_t w = 0; w < s.W; ++w)
        for (int64_t j = 0; j < sw; ++j) y0[w * sw + j] = xr[w];
    } else {
      for (int64_t w = 0; w < s.W; ++w)
        for (int64_t j = 0; j < sw; ++j) std::memcpy(y0 + (w * sw + j) * C, xr + w * C,
                                                     sizeof(T) * size_t(C));
    }
    for (int64_t i = 1; i < s.size_h; ++i) std::memcpy(y0 + i * QC, y0, sizeof(T) * size_t(QC));
  }
}

// Upsampling backward for the dx rows r = n*H + h in [lo, hi): dx row r sums the sh output
// rows r*sh + i, and in each the sw cells of every block, i outer, j inner.
template <typename T>
void upsample_backward_rows(T* dx, const T* dy, const Upsample2dShape& s, int64_t lo,
                            int64_t hi) {
  const int64_t C = s.C, sw = s.size_w, WC = s.W * C, QC = s.W * sw * C;
  for (int64_t r = lo; r < hi; ++r) {
    T* __restrict dxr = dx + r * WC;
    const T* d0 = dy + r * s.size_h * QC;
    for (int64_t i = 0; i < s.size_h; ++i) {
      const T* __restrict di = d0 + i * QC;
      for (int64_t w = 0; w < s.W; ++w) {
        T* __restrict dxc = dxr + w * C;
        const T* __restrict db = di + w * sw * C;  // the block's first cell in this row
        if (i == 0)
          for (int64_t c = 0; c < C; ++c) dxc[c] = db[c];
        else
          for (int64_t c = 0; c < C; ++c) dxc[c] += db[c];
        for (int64_t j = 1; j < sw; ++j)
          for (int64_t c = 0; c < C; ++c) dxc[c] += db[j * C + c];
      }
    }
  }
}

// Padding forward for the output rows r = n*P + p in [lo, hi).
template <typename T>
void pad_rows(T* y, const T* x, const Pad2dShape& s, int64_t lo, int64_t hi) {
  const int64_t P = s.pad_top + s.H + s.pad_bottom, Q = s.pad_left + s.W + s.pad_right;
  const int64_t C = s.C, WC = s.W * C, QC = Q * C;
  for (int64_t r = lo; r < hi; ++r) {
    const int64_t n = r / P, h = r % P - s.pad_top;
    T* yr = y + r * QC;
    if (h < 0 || h >= s.H) {
      std::memset(yr, 0, sizeof(T) * size_t(QC));  // IEEE +0.0 is all zero bits
      continue;
    }
    std::memset(yr, 0, sizeof(T) * size_t(s.pad_left * C));
    std::memcpy(yr + s.pad_left * C, x + (n * s.H + h) * WC, sizeof(T) * size_t(WC));
    std::memset(yr + s.pad_left * C + WC, 0, sizeof(T) * size_t(s.pad_right * C));
  }
}

// Padding backward for the dx rows r = n*H + h in [lo, hi): the interior of dy's row.
template <typename T>
void crop_rows(T* dx, const T* dy, const Pad2dShape& s, int64_t lo, int64_t hi) {
  const int64_t P = s.pad_top + s.H + s.pad_bottom, Q = s.pad_left + s.W + s.pad_right;
  const int64_t C = s.C, WC = s.W * C;
  for (int64_t r = lo; r < hi; ++r) {
    const int64_t n = r / s.H, h = r % s.H;
    std::memcpy(dx + r * WC, dy + ((n * P + s.pad_top + h) * Q + s.pad_left) * C,
                sizeof(T) * size_t(WC));
  }
}

}  // namespace

template <typename T>
void upsampling2d_forward(T* y, const T* x, const Upsample2dShape& s) {
  const int64_t rows = s.N * s.H;
  if (rows <= 0 || s.W * s.C <= 0) return;
  const int threads = copy_threads(rows * s.size_h * s.W * s.size_w * s.C);
  parallel_ranges(rows, threads, [&](int64_t lo, int64_t hi) { upsample_rows(y, x, s, lo, hi); });
}

template <typename T>
void upsampling2d_backward(T* dx, const T* dy, const Upsample2dShape& s) {
  const int64_t rows = s.N * s.H;
  if (rows <= 0 || s.W * s.C <= 0) return;
  const int threads = copy_threads(rows * s.size_h * s.W * s.size_w * s.C);
  parallel_ranges(rows, threads, [&](int64_t lo, int64_t hi) {
    upsample_backward_rows(dx, dy, s, lo, hi);
  });
}

template <typename T>
void zeropadding2d_forward(T* y, const T* x, const Pad2dShape& s) {
  const int64_t rows = s.N * (s.pad_top + s.H + s.pad_bottom);
  const int64_t QC = (s.pad_left + s.W + s.pad_right) * s.C;
  if (rows <= 0 || QC <= 0) return;
  parallel_ranges(rows, copy_threads(rows * QC), [&](int64_t lo, int64_t hi) {
    pad_rows(y, x, s, lo, hi);
  });
}

template <typename T>
void zeropadding2d_backward(T* dx, const T* dy, const Pad2dShape& s) {
  const int64_t rows = s.N * s.H;
  if (rows <= 0 || s.W * s.C <= 0) return;
  parallel_ranges(rows, copy_threads(rows * s.W * s.C), [&](int64_t lo, int64_t hi) {
    crop_rows(dx, dy, s, lo, hi);
  });
}

#define DLFAST_RESAMPLE_INSTANTIATE(T)                                                \
  template void upsampling2d_forward<T>(T*, const T*, const Upsample2dShape&);       \
  template void upsampling2d_backward<T>(T*, const T*, const Upsample2dShape&);      \
  template void zeropadding2d_forward<T>(T*, const T*, const Pad2dShape&);           \
  template void zeropadding2d_backward<T>(T*, const T*, const Pad2dShape&);
DLFAST_RESAMPLE_INSTANTIATE(float)
DLFAST_RESAMPLE_INSTANTIATE(double)

}  // namespace DLFAST_ISA
}  // namespace dlfast
