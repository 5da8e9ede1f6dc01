// Reference 2-D max and average pooling on NHWC (the definitions csrc/cpu/pool.cpp is tested
// against). Legend (Pool2dShape): x, dx [N,H,W,C]; y, dy [N,P,Q,C]; window R x S, strides
// sh x sw, pads pt (top), pl (left). Output cell (n,p,q,c) has the window of input cells
// (h, w) = (p*sh - pt + r, q*sw - pl + t), 0 <= r < R, 0 <= t < S, those inside the input
// only: max pooling sees the padding as -inf, average pooling divides by the count of window
// cells inside the input. Cells are scanned in (r, t) order. A NaN in a max window is its
// maximum, and the window's gradient goes to its first NaN; without NaN, to its first maximum.
#include <cmath>
#include <limits>
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {
namespace {

inline int64_t nhwc(int64_t n, int64_t h, int64_t w, int64_t c, int64_t H, int64_t W,
                    int64_t C) {
  return ((n * H + h) * W + w) * C + c;
}

// The input cells of the window of output cell (p, q): f(h, w) for each, in (r, t) order.
template <typename F>
void for_each_cell(const Pool2dShape& s, int64_t p, int64_t q, F&& f) {
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t t = 0; t < s.S; ++t) {
      const int64_t h = p * s.stride_h - s.pad_top + r, w = q * s.stride_w - s.pad_left + t;
      if (h >= 0 && h < s.H && w >= 0 && w < s.W) f(h, w);
    }
}

// The offset in x of the maximum of window (n, p, q, c): its first NaN, else its first
// largest cell; -1 for a window with no input cell.
template <typename T>
int64_t argmax(const T* x, const Pool2dShape& s, int64_t n, int64_t p, int64_t q, int64_t c) {
  int64_t best = -1;
  for_each_cell(s, p, q, [&](int64_t h, int64_t w) {
    const int64_t i = nhwc(n, h, w, c, s.H, s.W, s.C);
    if (best >= 0 && std::isnan(x[best])) return;  // a NaN stays the maximum
    if (best < 0 || std::isnan(x[i]) || x[i] > x[best]) best = i;
  });
  return best;
}

// The number of input cells in the window of output cell (p, q).
int64_t window_count(const Pool2dShape& s, int64_t p, int64_t q) {
  int64_t count = 0;
  for_each_cell(s, p, q, [&](int64_t, int64_t) { ++count; });
  return count;
}

}  // namespace

// y[n,p,q,c] = max over the window of x[n,h,w,c]   (-inf for an empty window)
template <typename T>
void maxpool2d_forward(T* y, const T* x, const Pool2dShape& s) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q)
        for (int64_t c = 0; c < s.C; ++c) {
          const int64_t i = argmax(x, s, n, p, q, c);
          y[nhwc(n, p, q, c, s.P, s.Q, s.C)] =
              i >= 0 ? x[i] : -std::numeric_limits<T>::infinity();
        }
}

// dx[n,h,w,c] (=) sum of dy[n,p,q,c] over the windows whose maximum (argmax above) is (h, w)
template <typename T>
void maxpool2d_backward(T* dx, const T* dy, const T* x, const Pool2dShape& s) {
  std::vector<double> acc(size_t(s.N * s.H * s.W * s.C), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q)
        for (int64_t c = 0; c < s.C; ++c) {
          const int64_t i = argmax(x, s, n, p, q, c);
          if (i >= 0) acc[size_t(i)] += double(dy[nhwc(n, p, q, c, s.P, s.Q, s.C)]);
        }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = T(acc[i]);
}

// y[n,p,q,c] = (sum over the window of x[n,h,w,c]) / count   (0 for an empty window)
template <typename T>
void avgpool2d_forward(T* y, const T* x, const Pool2dShape& s) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q)
        for (int64_t c = 0; c < s.C; ++c) {
          double sum = 0;
          for_each_cell(s, p, q, [&](int64_t h, int64_t w) {
            sum += double(x[nhwc(n, h, w, c, s.H, s.W, s.C)]);
          });
          const int64_t count = window_count(s, p, q);
          y[nhwc(n, p, q, c, s.P, s.Q, s.C)] = T(count > 0 ? sum / double(count) : 0.0);
        }
}

// dx[n,h,w,c] (=) sum over the windows holding (h, w) of dy[n,p,q,c] / count
template <typename T>
void avgpool2d_backward(T* dx, const T* dy, const Pool2dShape& s) {
  std::vector<double> acc(size_t(s.N * s.H * s.W * s.C), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q) {
        const int64_t count = window_count(s, p, q);
        if (count == 0) continue;  // an empty window: no cell to give its gradient to
        for (int64_t c = 0; c < s.C; ++c) {
          const double share = double(dy[nhwc(n, p, q, c, s.P, s.Q, s.C)]) / double(count);
          for_each_cell(s, p, q, [&](int64_t h, int64_t w) {
            acc[size_t(nhwc(n, h, w, c, s.H, s.W, s.C))] += share;
          });
        }
      }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = T(acc[i]);
}

#define DLFAST_REF_POOL(T)                                                                    \
  template void maxpool2d_forward<T>(T*, const T*, const Pool2dShape&);                       \
  template void maxpool2d_backward<T>(T*, const T*, const T*, const Pool2dShape&);            \
  template void avgpool2d_forward<T>(T*, const T*, const Pool2dShape&);                       \
  template void avgpool2d_backward<T>(T*, const T*, const Pool2dShape&);
DLFAST_REF_POOL(float)
DLFAST_REF_POOL(double)
#undef DLFAST_REF_POOL

}  // namespace ref
}  // namespace dlfast
