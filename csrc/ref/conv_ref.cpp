// Reference 2-D convolution and transposed convolution, NHWC x HWIO (the definitions
// csrc/cpu/conv_forward.cpp, conv_backward.cpp and conv_transpose.cpp are tested against). Legend
// (Conv2dShape): x[N,H,W,C], w[R,S,C,K], b[K], y[N,P,Q,K]; strides sh x sw, dilations dh x dw,
// pads pt (top), pl (left). Output pixel (p, q) meets input pixel (h, w) through kernel tap
// (r, t) when h = p*sh - pt + r*dh and w = q*sw - pl + t*dw; taps outside the input read zeros.
// The transposed convolution runs the same index map the other way: its input is [N,P,Q,K],
// its output [N,H,W,C], b[C]. Sums in double; a scatter (+=) goes to a double buffer.
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {
namespace {

// Offset of element (i, j, k, l) of a row-major array of shape [., J, K, L].
inline int64_t at(int64_t i, int64_t j, int64_t k, int64_t l, int64_t J, int64_t K, int64_t L) {
  return ((i * J + j) * K + k) * L + l;
}

// Input row/column of output row/column `o` through tap `r`; false when it is in the padding.
inline bool input_index(int64_t o, int64_t r, int64_t stride, int64_t pad, int64_t dil,
                        int64_t n, int64_t* i) {
  *i = o * stride - pad + r * dil;
  return *i >= 0 && *i < n;
}

}  // namespace

// y[n,p,q,k] = act(b[k] + sum_{r,t,c} x[n,h,w,c] w[r,t,c,k])   (h, w from (p, q) and (r, t))
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q)
        for (int64_t k = 0; k < s.K; ++k) {
          double z = b ? double(b[k]) : 0.0;
          for (int64_t r = 0; r < s.R; ++r)
            for (int64_t t = 0; t < s.S; ++t) {
              int64_t h, wc;
              if (!input_index(p, r, s.stride_h, s.pad_top, s.dil_h, s.H, &h) ||
                  !input_index(q, t, s.stride_w, s.pad_left, s.dil_w, s.W, &wc))
                continue;
              for (int64_t c = 0; c < s.C; ++c)
                z += double(x[at(n, h, wc, c, s.H, s.W, s.C)]) *
                     double(w[at(r, t, c, k, s.S, s.C, s.K)]);
            }
          y[at(n, p, q, k, s.P, s.Q, s.K)] = T(z);
        }
  activation_forward(y, y, s.N * s.P * s.Q, s.K, act, 0.0);
}

// dz = dy * act'(y)
// dw[r,t,c,k] (+= or =) sum_{n,p,q} x[n,h,w,c] dz[n,p,q,k]
// db[k]       (+= or =) sum_{n,p,q} dz[n,p,q,k]                              (db may be null)
// dx[n,h,w,c] (=) sum over the (p, q, r, t) that reach (h, w) of sum_k dz[n,p,q,k] w[r,t,c,k]
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                     const Conv2dShape& s, Activation act, bool accumulate) {
  const int64_t M = s.N * s.P * s.Q;
  std::vector<T> dz(size_t(M * s.K));
  activation_backward(dz.data(), dy, y, M, s.K, act, 0.0);
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t t = 0; t < s.S; ++t)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t k = 0; k < s.K; ++k) {
          T& out = dw[at(r, t, c, k, s.S, s.C, s.K)];
          double sum = accumulate ? double(out) : 0.0;
          for (int64_t n = 0; n < s.N; ++n)
            for (int64_t p = 0; p < s.P; ++p)
              for (int64_t q = 0; q < s.Q; ++q) {
                int64_t h, wc;
                if (input_index(p, r, s.stride_h, s.pad_top, s.dil_h, s.H, &h) &&
                    input_index(q, t, s.stride_w, s.pad_left, s.dil_w, s.W, &wc))
                  sum += double(x[at(n, h, wc, c, s.H, s.W, s.C)]) *
                         double(dz[size_t(at(n, p, q, k, s.P, s.Q, s.K))]);
              }
          out = T(sum);
        }
  for (int64_t k = 0; db && k < s.K; ++k) {
    double sum = accumulate ? double(db[k]) : 0.0;
    for (int64_t m = 0; m < M; ++m) sum += double(dz[size_t(m * s.K + k)]);
    db[k] = T(sum);
  }
  if (!dx) return;
  std::vector<double> acc(size_t(s.N * s.H * s.W * s.C), 0.0);  // dx, scattered
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q)
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t t = 0; t < s.S; ++t) {
            int64_t h, wc;
            if (!input_index(p, r, s.stride_h, s.pad_top, s.dil_h, s.H, &h) ||
                !input_index(q, t, s.stride_w, s.pad_left, s.dil_w, s.W, &wc))
              continue;
            for (int64_t c = 0; c < s.C; ++c)
              for (int64_t k = 0; k < s.K; ++k)
                acc[size_t(at(n, h, wc, c, s.H, s.W, s.C))] +=
                    double(dz[size_t(at(n, p, q, k, s.P, s.Q, s.K))]) *
                    double(w[at(r, t, c, k, s.S, s.C, s.K)]);
          }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = T(acc[i]);
}

// Transposed convolution: input x[N,P,Q,K], kernel w[R,S,C,K], output y[N,H,W,C], b[C].
// y[n,h,w,c] = act(b[c] + sum over the (p, q, r, t) that reach (h, w) of
//                          sum_k x[n,p,q,k] w[r,t,c,k])
template <typename T>
void conv2d_transpose_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                              Activation act) {
  std::vector<double> acc(size_t(s.N * s.H * s.W * s.C), 0.0);  // y before bias, scattered
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q)
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t t = 0; t < s.S; ++t) {
            int64_t h, wc;
            if (!input_index(p, r, s.stride_h, s.pad_top, s.dil_h, s.H, &h) ||
                !input_index(q, t, s.stride_w, s.pad_left, s.dil_w, s.W, &wc))
              continue;
            for (int64_t c = 0; c < s.C; ++c)
              for (int64_t k = 0; k < s.K; ++k)
                acc[size_t(at(n, h, wc, c, s.H, s.W, s.C))] +=
                    double(x[at(n, p, q, k, s.P, s.Q, s.K)]) *
                    double(w[at(r, t, c, k, s.S, s.C, s.K)]);
          }
  for (size_t i = 0; i < acc.size(); ++i)
    y[i] = T(acc[i] + (b ? double(b[int64_t(i) % s.C]) : 0.0));
  activation_forward(y, y, s.N * s.H * s.W, s.C, act, 0.0);
}

// dz = dy * act'(y)   (dy, y, dz [N,H,W,C])
// db[c]       (+= or =) sum_{n,h,w} dz[n,h,w,c]                              (db may be null)
// dw[r,t,c,k] (+= or =) sum_{n,p,q} dz[n,h,w,c] x[n,p,q,k]                  (h, w in the output)
// dx[n,p,q,k] (=) sum_{r,t,c} dz[n,h,w,c] w[r,t,c,k]: the forward convolution of dz
template <typename T>
void conv2d_transpose_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const T* y, const Conv2dShape& s, Activation act,
                               bool accumulate) {
  const int64_t M = s.N * s.H * s.W;
  std::vector<T> dz(size_t(M * s.C));
  activation_backward(dz.data(), dy, y, M, s.C, act, 0.0);
  for (int64_t c = 0; db && c < s.C; ++c) {
    double sum = accumulate ? double(db[c]) : 0.0;
    for (int64_t m = 0; m < M; ++m) sum += double(dz[size_t(m * s.C + c)]);
    db[c] = T(sum);
  }
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t t = 0; t < s.S; ++t)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t k = 0; k < s.K; ++k) {
          T& out = dw[at(r, t, c, k, s.S, s.C, s.K)];
          double sum = accumulate ? double(out) : 0.0;
          for (int64_t n = 0; n < s.N; ++n)
            for (int64_t p = 0; p < s.P; ++p)
              for (int64_t q = 0; q < s.Q; ++q) {
                int64_t h, wc;
                if (input_index(p, r, s.stride_h, s.pad_top, s.dil_h, s.H, &h) &&
                    input_index(q, t, s.stride_w, s.pad_left, s.dil_w, s.W, &wc))
                  sum += double(dz[size_t(at(n, h, wc, c, s.H, s.W, s.C))]) *
                         double(x[at(n, p, q, k, s.P, s.Q, s.K)]);
              }
          out = T(sum);
        }
  if (dx) conv2d_forward(dx, dz.data(), w, static_cast<const T*>(nullptr), s, Activation::linear);
}

#define DLFAST_REF_CONV(T)                                                                    \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&,       \
                                  Activation);                                                \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                   const Conv2dShape&, Activation, bool);                     \
  template void conv2d_transpose_forward<T>(T*, const T*, const T*, const T*,                 \
                                            const Conv2dShape&, Activation);                  \
  template void conv2d_transpose_backward<T>(T*, T*, T*, const T*, const T*, const T*,        \
                                             const T*, const Conv2dShape&, Activation, bool);
DLFAST_REF_CONV(float)
DLFAST_REF_CONV(double)
#undef DLFAST_REF_CONV

}  // namespace ref
}  // namespace dlfast
