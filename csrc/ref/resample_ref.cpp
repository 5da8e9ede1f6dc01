// Reference nearest-neighbour upsampling and zero padding on NHWC (the definitions
// csrc/cpu/resample.cpp is tested against). Legend: x, dx [N,H,W,C]; upsampling y, dy
// [N,P,Q,C] with P = H*sh, Q = W*sw (sh x sw = size_h x size_w); padding y, dy [N,P,Q,C] with
// P = pt + H + pb, Q = pl + W + pr.

#include "ref/ref.h"

namespace dlfast {
namespace ref {
namespace {

inline int64_t nhwc(int64_t n, int64_t h, int64_t w, int64_t c, int64_t H, int64_t W,
                    int64_t C) {
  return ((n * H + h) * W + w) * C + c;
}

}  // namespace

// y[n, h*sh + i, w*sw + j, c] (=) x[n, h, w, c]   for i < sh, j < sw
template <typename T>
void upsampling2d_forward(T* y, const T* x, const Upsample2dShape& s) {
  const int64_t P = s.H * s.size_h, Q = s.W * s.size_w;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        for (int64_t c = 0; c < s.C; ++c)
          y[nhwc(n, p, q, c, P, Q, s.C)] = x[nhwc(n, p / s.size_h, q / s.size_w, c, s.H, s.W, s.C)];
}

// dx[n, h, w, c] (=) sum_{i < sh, j < sw} dy[n, h*sh + i, w*sw + j, c]
template <typename T>
void upsampling2d_backward(T* dx, const T* dy, const Upsample2dShape& s) {
  const int64_t P = s.H * s.size_h, Q = s.W * s.size_w;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t w = 0; w < s.W; ++w)
        for (int64_t c = 0; c < s.C; ++c) {
          double sum = 0;
          for (int64_t i = 0; i < s.size_h; ++i)
            for (int64_t j = 0; j < s.size_w; ++j)
              sum += double(dy[nhwc(n, h * s.size_h + i, w * s.size_w + j, c, P, Q, s.C)]);
          dx[nhwc(n, h, w, c, s.H, s.W, s.C)] = T(sum);
        }
}

// y[n,p,q,c] (=) x[n, p - pt, q - pl, c] inside the frame, 0 on it
template <typename T>
void zeropadding2d_forward(T* y, const T* x, const Pad2dShape& s) {
  const int64_t P = s.pad_top + s.H + s.pad_bottom, Q = s.pad_left + s.W + s.pad_right;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        for (int64_t c = 0; c < s.C; ++c) {
          const int64_t h = p - s.pad_top, w = q - s.pad_left;
          const bool inside = h >= 0 && h < s.H && w >= 0 && w < s.W;
          y[nhwc(n, p, q, c, P, Q, s.C)] = inside ? x[nhwc(n, h, w, c, s.H, s.W, s.C)] : T(0);
        }
}

// dx[n,h,w,c] (=) dy[n, pt + h, pl + w, c]   (the frame's gradient is dropped)
template <typename T>
void zeropadding2d_backward(T* dx, const T* dy, const Pad2dShape& s) {
  const int64_t P = s.pad_top + s.H + s.pad_bottom, Q = s.pad_left + s.W + s.pad_right;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t w = 0; w < s.W; ++w)
        for (int64_t c = 0; c < s.C; ++c)
          dx[nhwc(n, h, w, c, s.H, s.W, s.C)] =
              dy[nhwc(n, s.pad_top + h, s.pad_left + w, c, P, Q, s.C)];
}

#define DLFAST_REF_RESAMPLE(T)                                                                \
  template void upsampling2d_forward<T>(T*, const T*, const Upsample2dShape&);                \
  template void upsampling2d_backward<T>(T*, const T*, const Upsample2dShape&);               \
  template void zeropadding2d_forward<T>(T*, const T*, const Pad2dShape&);                    \
  template void zeropadding2d_backward<T>(T*, const T*, const Pad2dShape&);
DLFAST_REF_RESAMPLE(float)
DLFAST_REF_RESAMPLE(double)
#undef DLFAST_REF_RESAMPLE

}  // namespace ref
}  // namespace dlfast
