// 2-D max and average pooling on NHWC, forward and backward, compiled once per ISA (see
// kernels.h). Legend (Pool2dShape): x, dx [N,H,W,C]; y, dy [N,P,Q,C]; window R x S, strides
// sh x sw, padding pt (top) / pl (left). Output cell (n,p,q) reads input rows
// h = p*sh - pt + r (0 <= r < R) and columns w = q*sw - pl + s (0 <= s < S), only those inside
// the input: max pooling treats the padding as -inf, average pooling divides by the number of
// window cells inside the input (TensorFlow). The bindings choose P, Q, pt, pl with TF's 'same'
// arithmetic, so every window holds at least one input cell; an empty window would give -inf
// (max) or 0 (average). A NaN in a max window is its maximum (NumPy's max and argmax, PyTorch):
// y is NaN and dy goes to the window's first NaN.
//
// Vectorised over the channel axis C (contiguous in NHWC): every inner loop runs over c.
// Forward: threads split the N*P output rows. Backward: windows overlap along h when sh < R,
// so threads then split whole images (each owns its dx image); when sh >= R the dx rows of
// different output rows are disjoint and threads split the N*P output rows. Either way no two
// threads write the same dx element and the result does not depend on the thread count.
#include <cstdint>
#include <limits>

#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// The running maximum m after seeing v, NaN sticky: a NaN v replaces m, and a NaN m stays
// (v > NaN is false). Element-wise on scalars and vectors alike.
template <typename T>
inline T max_nan(T v, T m) {
  return (v > m) | (v != v) ? v : m;
}
// v takes a window's gradient when it is the maximum m; with a NaN maximum, every NaN cell does
// (the first one in scan order takes it: see max_window_backward).
template <typename T>
inline auto is_max(T v, T m) {
  return (v == m) | (v != v);
}

// Channels handled per pass by the backward kernels' stack buffers (window max and pending
// gradient per channel): 2 x 256 doubles = 4 KiB, in L1.
constexpr int64_t kChannelBlock = 256;

inline int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// The input cells of one window along one axis: [lo, hi) of the input, clipped.
struct Span {
  int64_t lo, hi;
};
inline Span window_span(int64_t out, int64_t stride, int64_t pad, int64_t k, int64_t n) {
  const int64_t start = out * stride - pad;
  return {clamp(start, 0, n), clamp(start + k, 0, n)};
}

// Threads for one pooling pass. A pass moves memory more than it computes: each window cell
// and channel costs about as much as 8 flops (the weight conv_common.h's copy loops use). Counted
// as 1 flop, the CIFAR model's first pool (64x30x30x32 float32, 1.8M cells) stayed on one
// thread: its backward took 0.97 ms with 1 or 2 threads.
inline int pool_threads(const Pool2dShape& s) {
  return threads_for_work(8.0 * double(s.N) * double(s.P) * double(s.Q) * double(s.C) *
                          double(s.R) * double(s.S));
}

// The max of one window over channels [c, c + NV * lanes) (NV whole vectors) or, with NV = 1
// and n < lanes, the first n channels from c; in registers: an ordinary max (one instruction)
// and, beside it, whether any cell was NaN (a compare and an or); the NaN lanes are set once at
// the end. NV vectors side by side keep NV independent max chains in flight. The NaN-sticky
// select on every cell (max_nan: two compares, an or and a blend) made the forward pass 14%
// slower on 64x32x32x32 2x2 (Zen 4).
template <typename T, int NV>
inline void max_window_forward(T* yq, const T* xn, const Pool2dShape& s, Span hs, Span ws,
                               int64_t c, int n = Vec<T>::lanes) {
  using V = vec_t<T>;
  constexpr int kL = Vec<T>::lanes;
  V m[NV];
  decltype(m[0] != m[0]) nan[NV];
  for (int j = 0; j < NV; ++j) {
    m[j] = vsplat(-std::numeric_limits<T>::infinity());
    nan[j] = m[j] != m[j];
  }
  for (int64_t h = hs.lo; h < hs.hi; ++h)
    for (int64_t w = ws.lo; w < ws.hi; ++w) {
      const T* xc = xn + (h * s.W + w) * s.C + c;
      for (int j = 0; j < NV; ++j) {
        const V v = n == kL ? vload(xc + j * kL) : vload_first(xc, n);
        m[j] = v > m[j] ? v : m[j];
        nan[j] |= v != v;
      }
    }
  for (int j = 0; j < NV; ++j) {
    const V y = nan[j] ? vsplat(std::numeric_limits<T>::quiet_NaN()) : m[j];
    if (n == kL)
      vstore(yq + c + j * kL, y);
    else
      vstore_first(yq + c, y, n);
  }
}

// y[n,p,q,:] for the flattened output rows i = n*P + p in [lo, hi): max or mean of the window.
template <typename T, bool kMax>
void forward_rows(T* y, const T* x, const Pool2dShape& s, int64_t lo, int64_t hi) {
  const int64_t C = s.C;
  constexpr int64_t kL = Vec<T>::lanes;
  for (int64_t i = lo; i < hi; ++i) {
    const int64_t n = i / s.P, p = i % s.P;
    const Span hs = window_span(p, s.stride_h, s.pad_top, s.R, s.H);
    const T* xn = x + n * s.H * s.W * C;
    for (int64_t q = 0; q < s.Q; ++q) {
      const Span ws = window_span(q, s.stride_w, s.pad_left, s.S, s.W);
      T* __restrict yq = y + (i * s.Q + q) * C;
      if (kMax) {
        int64_t c = 0;
        for (; c + 4 * kL <= C; c += 4 * kL) max_window_forward<T, 4>(yq, xn, s, hs, ws, c);
        for (; c + kL <= C; c += kL) max_window_forward<T, 1>(yq, xn, s, hs, ws, c);
#if DLFAST_VEC_BYTES >= 32  // masked loads and stores in hardware
        if (c < C) max_window_forward<T, 1>(yq, xn, s, hs, ws, c, int(C - c));
#else  // the SSE2 build's masked load is a memcpy: the tail one channel at a time
        if (c < C) {  // plain max, and the NaN-sticky max again for a window with a NaN
          T* __restrict yt = yq + c;
          const int64_t nt = C - c;
          bool nan = false;
          for (int64_t j = 0; j < nt; ++j) yt[j] = -std::numeric_limits<T>::infinity();
          for (int64_t h = hs.lo; h < hs.hi; ++h)
            for (int64_t w = ws.lo; w < ws.hi; ++w) {
              const T* __restrict xc = xn + (h * s.W + w) * C + c;
              for (int64_t j = 0; j < nt; ++j) {
                yt[j] = xc[j] > yt[j] ? xc[j] : yt[j];
                nan |= xc[j] != xc[j];
              }
            }
          if (nan)
            for (int64_t h = hs.lo; h < hs.hi; ++h)
              for (int64_t w = ws.lo; w < ws.hi; ++w)
                for (int64_t j = 0; j < nt; ++j)
                  yt[j] = max_nan(xn[(h * s.W + w) * C + c + j], yt[j]);
        }
#endif
        continue;
      }
      for (int64_t c = 0; c < C; ++c) yq[c] = T(0);
      for (int64_t h = hs.lo; h < hs.hi; ++h)
        for (int64_t w = ws.lo; w < ws.hi; ++w) {
          const T* __restrict xc = xn + (h * s.W + w) * C;
          for (int64_t c = 0; c < C; ++c) yq[c] += xc[c];
        }
      const int64_t count = (hs.hi - hs.lo) * (ws.hi - ws.lo);
      const T inv = count > 0 ? T(1) / T(count) : T(0);
      for (int64_t c = 0; c < C; ++c) yq[c] *= inv;
    }
  }
}

// Max backward for one window at (n, p, q), channels [c0, c0 + cb): dy goes to the first cell
// (in (h, w) scan order) holding the window's maximum. Two passes over the window: the max,
// then a branch-free scan where `pending` carries dy until the first cell equal to the max
// takes it (added: windows may overlap).
template <typename T>
void max_window_backward(T* dxn, const T* xn, const T* dyq, const Pool2dShape& s, Span hs,
                         Span ws, int64_t c0, int64_t cb) {
  T m[kChannelBlock], pending[kChannelBlock];
  for (int64_t c = 0; c < cb; ++c) {
    m[c] = -std::numeric_limits<T>::infinity();
    pending[c] = dyq[c0 + c];
  }
  for (int64_t h = hs.lo; h < hs.hi; ++h)
    for (int64_t w = ws.lo; w < ws.hi; ++w) {
      const T* __restrict xc = xn + (h * s.W + w) * s.C + c0;
      for (int64_t c = 0; c < cb; ++c) {
        m[c] = max_nan(xc[c], m[c]);
      }
    }
  for (int64_t h = hs.lo; h < hs.hi; ++h)
    for (int64_t w = ws.lo; w < ws.hi; ++w) {
      const int64_t off = (h * s.W + w) * s.C + c0;
      const T* __restrict xc = xn + off;
      T* __restrict dxc = dxn + off;
      // Two loops: GCC (trapping math) if-converts each select alone, not the pair.
      for (int64_t c = 0; c < cb; ++c) dxc[c] += is_max(xc[c], m[c]) ? pending[c] : T(0);
      for (int64_t c = 0; c < cb; ++c) pending[c] = is_max(xc[c], m[c]) ? T(0) : pending[c];
    }
}

// True when the windows cover the input exactly once (stride == window, no padding, sizes
// multiples of the window): the common 2x2 / stride 2 case. Max backward then writes every dx
// cell once instead of zeroing dx and adding into it. bench/run.py's maxpool row, (64,32,32,32)
// float32, 2 threads, forward + backward: 1.21 ms -> 0.79 ms (PyTorch channels_last 1.48 ms).
inline bool windows_tile_input(const Pool2dShape& s) {
  return s.stride_h == s.R && s.stride_w == s.S && s.pad_top == 0 && s.pad_left == 0 &&
         s.P * s.R == s.H && s.Q * s.S == s.W;
}

// Max backward when the windows tile the input (windows_tile_input), for output rows
// [plo, phi) of image n: the generic max_window_backward's two passes, on whole vectors of
// channels held in registers instead of stack buffers (the scalar tail keeps the same
// comparisons: a NaN is the max and its first cell takes the gradient).
// The CIFAR model's first pool, 64x30x30x32 float32, backward alone, min of 30, 1 thread:
// 0.97 ms -> 0.41 ms (and 0.21 ms on 2 threads, with pool_threads' new weight).
template <typename T>
void max_tiled_backward(T* dxn, const T* xn, const T* dyn, const Pool2dShape& s, int64_t plo,
                        int64_t phi) {
  using V = vec_t<T>;
  constexpr int64_t kL = Vec<T>::lanes;
  const int64_t C = s.C, WC = s.W * C, R = s.R, S = s.S;
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t p = plo; p < phi; ++p)
    for (int64_t q = 0; q < s.Q; ++q) {
      const int64_t base = p * R * WC + q * S * C;
      const T* xw = xn + base;
      T* dxw = dxn + base;
      const T* dyq = dyn + (p * s.Q + q) * C;
      int64_t c = 0;
      for (; c + kL <= C; c += kL) {
        V m = vsplat(ninf);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t t = 0; t < S; ++t) {
            m = max_nan(vload(xw + r * WC + t * C + c), m);
          }
        V pending = vload(dyq + c);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t t = 0; t < S; ++t) {
            const int64_t off = r * WC + t * C + c;
            const auto hit = is_max(vload(xw + off), m);
            vstore(dxw + off, hit ? pending : V{});
            pending = hit ? V{} : pending;
          }
      }
      for (; c < C; ++c) {
        T m = ninf;
        for (int64_t r = 0; r < R; ++r)
          for (int64_t t = 0; t < S; ++t) {
            m = max_nan(xw[r * WC + t * C + c], m);
          }
        T pending = dyq[c];
        for (int64_t r = 0; r < R; ++r)
          for (int64_t t = 0; t < S; ++t) {
            const int64_t off = r * WC + t * C + c;
            const bool hit = is_max(xw[off], m);
            dxw[off] = hit ? pending : T(0);
            pending = hit ? T(0) : pending;
          }
      }
    }
}

// dx rows of image n owned by output rows [plo, phi): zeroed, then every window of those rows
// adds its gradient. Owned rows run from the first window's start (row 0 for p = 0) to the
// next window's start (row H for p = P), so consecutive calls tile the image.
template <typename T, bool kMax>
void backward_rows(T* dx, const T* dy, const T* x, const Pool2dShape& s, int64_t n,
                   int64_t plo, int64_t phi) {
  const bool assign = kMax && windows_tile_input(s);
  const int64_t C = s.C, WC = s.W * C;
  const int64_t h0 = plo == 0 ? 0 : clamp(plo * s.stride_h - s.pad_top, 0, s.H);
  const int64_t h1 = phi == s.P ? s.H : clamp(phi * s.stride_h - s.pad_top, 0, s.H);
  T* dxn = dx + n * s.H * WC;
  const T* xn = kMax ? x + n * s.H * WC : nullptr;
  if (assign) {
    max_tiled_backward<T>(dxn, xn, dy + n * s.P * s.Q * C, s, plo, phi);
    return;
  }
  for (int64_t j = h0 * WC; j < h1 * WC; ++j) dxn[j] = T(0);
  for (int64_t p = plo; p < phi; ++p) {
    const Span hs = window_span(p, s.stride_h, s.pad_top, s.R, s.H);
    for (int64_t q = 0; q < s.Q; ++q) {
      const Span ws = window_span(q, s.stride_w, s.pad_left, s.S, s.W);
      const T* dyq = dy + ((n * s.P + p) * s.Q + q) * C;
      if (kMax) {
        for (int64_t c0 = 0; c0 < C; c0 += kChannelBlock) {
          const int64_t cb = C - c0 < kChannelBlock ? C - c0 : kChannelBlock;
          max_window_backward<T>(dxn, xn, dyq, s, hs, ws, c0, cb);
        }
      } else {
        const int64_t count = (hs.hi - hs.lo) * (ws.hi - ws.lo);
        if (count == 0) continue;
        const T inv = T(1) / T(count);
        for (int64_t h = hs.lo; h < hs.hi; ++h)
          for (int64_t w = ws.lo; w < ws.hi; ++w) {
            T* __restrict dxc = dxn + h * WC + w * C;
            for (int64_t c = 0; c < C; ++c) dxc[c] += dyq[c] * inv;
          }
      }
    }
  }
}

template <typename T, bool kMax>
void forward(T* y, const T* x, const Pool2dShape& s) {
  parallel_ranges(s.N * s.P, pool_threads(s), [&](int64_t lo, int64_t hi) {
    forward_rows<T, kMax>(y, x, s, lo, hi);
  });
}

template <typename T, bool kMax>
void backward(T* dx, const T* dy, const T* x, const Pool2dShape& s) {
  const int threads = pool_threads(s);
  if (s.P == 0) {  // no window: dx is all zero
    for (int64_t j = 0; j < s.N * s.H * s.W * s.C; ++j) dx[j] = T(0);
    return;
  }
  if (s.stride_h < s.R) {  // windows overlap along h: one thread per whole image
    parallel_ranges(s.N, threads, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) backward_rows<T, kMax>(dx, dy, x, s, n, 0, s.P);
    });
  } else {  // disjoint dx rows per output row
    parallel_ranges(s.N * s.P, threads, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const int64_t n = i / s.P, p = i % s.P;
        backward_rows<T, kMax>(dx, dy, x, s, n, p, p + 1);
      }
    });
  }
}

}  // namespace

template <typename T>
void maxpool2d_forward(T* y, const T* x, const Pool2dShape& s) {
  forward<T, true>(y, x, s);
}
template <typename T>
void maxpool2d_backward(T* dx, const T* dy, const T* x, const Pool2dShape& s) {
  backward<T, true>(dx, dy, x, s);
}
template <typename T>
void avgpool2d_forward(T* y, const T* x, const Pool2dShape& s) {
  forward<T, false>(y, x, s);
}
template <typename T>
void avgpool2d_backward(T* dx, const T* dy, const Pool2dShape& s) {
  backward<T, false>(dx, dy, nullptr, s);
}

#define DLFAST_POOL_INSTANTIATE(T)                                                   \
  template void maxpool2d_forward<T>(T*, const T*, const Pool2dShape&);             \
  template void maxpool2d_backward<T>(T*, const T*, const T*, const Pool2dShape&);  \
  template void avgpool2d_forward<T>(T*, const T*, const Pool2dShape&);             \
  template void avgpool2d_backward<T>(T*, const T*, const Pool2dShape&);
DLFAST_POOL_INSTANTIATE(float)
DLFAST_POOL_INSTANTIATE(double)

}  // namespace DLFAST_ISA
}  // namespace dlfast
