// 2-D convolution forward, y = act(conv2d(x, w) + b), compiled once per ISA (see kernels.h;
// the letters, the math and the helpers both directions share: conv_common.h). The paths,
// chosen by conv2d_forward_path:
//   pointwise  a 1x1 stride-1 kernel (or L = 0): one GEMM on x as it is (forward_pointwise)
//   direct     short window rows (S*C < 32): register tiles that read x in place
//              (conv_direct_rows)
//   packed     the rest: im2col written straight into the GEMM's packed-A layout, one chunk
//              at a time (im2col_packed + gemm_prepacked_a)
//   empty      no output pixel or filter: nothing to do
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

// ---- Forward: im2col straight into the GEMM's packed-A layout (see gemm_prepacked_a) ----
// Before, im2col wrote col[M, L] and gemm's pack_a copied it again into MR-row panels: a
// second full pass over col, which dominated when L = R*S*C is small (27 for a 3-channel
// first layer). Now each MR-pixel panel is written once, k-major (a(i, k) at k*MR + i),
// straight from x: per panel and kernel row r, each pixel's S*C window is one contiguous run
// (or, for pixels whose window crosses the left/right edge, C-long runs per tap); zero taps
// read from a zero buffer, so interior and border pixels take the same vector path.
// kMR must equal the GEMM's MR (checked when compiled).
constexpr int kMR = DLFAST_VEC_BYTES == 64 ? 14 : 6;
static_assert(kMR == Blocking<float>::MR && kMR == Blocking<double>::MR,
              "im2col_packed writes gemm_prepacked_a's MR-row panels");

// dst[k*kMR + i] = src[i][k] for i < kMR, k < len (one panel, one k segment). On AVX2 floats
// (kMR = 6 < 8 lanes) 8 k's at a time go through an 8x8 register transpose (6 rows + 2 zero
// vectors); each k's 8-wide store spills 2 zeros into the next k's slot, rewritten by the
// next store, and the last k's go through the scalar loop so nothing lands past the segment.
// kSpill: the caller lets the last store spill its 2 zeros past the segment (into a slot
// written later, or the buffer's padding), so every whole group of L k's is vectorised.
// 'same' 32x32x32 b64: the per-tap border segments (len 32) went 24 vector + 8 scalar k's.
template <typename T, bool kSpill>
inline void pack_segment(T* __restrict dst, const T* const* src, int64_t len) {
  int64_t k0 = 0;
  if constexpr (Transpose<T>::kHasTranspose && kMR < Vec<T>::lanes) {
    constexpr int L = Vec<T>::lanes;
    using V = vec_t<T>;
    const int64_t kend = kSpill ? len / L * L : (len - 1) / L * L;
    for (; k0 < kend; k0 += L) {
      V v[L];
#pragma GCC unroll 8
      for (int r = 0; r < L; ++r) v[r] = r < kMR ? vload(src[r < kMR ? r : 0] + k0) : V{};
      transpose_block(v);
#pragma GCC unroll 8
      for (int j = 0; j < L; ++j) vstore(dst + (k0 + j) * kMR, v[j]);
    }
  }
  for (int64_t k = k0; k < len; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = src[i][k];
}

struct PackedA {
  int64_t Mpad, L, kstep;
};

// Panel rows [row, row + kMR) of the packed A, k range [k, k + len), from src[i] (pixel i's
// values for k.., or `zeros`), cut at the K block boundaries.
template <typename T>
inline void put_segment(T* Ap, const PackedA& pa, int64_t row, int64_t k, int64_t len,
                        const T** src, const T* zeros) {
  if (pa.kstep >= pa.L) {  // one K block (L <= KC): no cutting, no division
    // Segments are written in increasing k, panels in increasing row: a spill lands in a
    // slot written later (or in the padding after the last panel).
    pack_segment<T, true>(Ap + row * pa.L + k * kMR, src, len);
    return;
  }
  for (;;) {
    const int64_t kb = k / pa.kstep * pa.kstep, kc = min64(pa.kstep, pa.L - kb);
    const int64_t n = min64(len, kb + kc - k);
    pack_segment<T, false>(Ap + kb * pa.Mpad + row * kc + (k - kb) * kMR, src, n);
    len -= n;
    if (len <= 0) return;
    k += n;
    for (int i = 0; i < kMR; ++i)
      if (src[i] != zeros) src[i] += n;
  }
}

// Packed A of output pixels [m0, m1) (all of L, every K block). `zeros` holds >= S*C zeros.
template <typename T>
void im2col_packed(T* Ap, const T* x, const T* zeros, const Conv2dShape& s, int64_t m0,
                   int64_t m1, int64_t kstep) {
  const int64_t C = s.C, SC = s.S * s.C, L = s.R * SC, PQ = s.P * s.Q;
  const PackedA pa{(m1 - m0 + kMR - 1) / kMR * kMR, L, kstep};
  // (n, p, q) of the next pixel, advanced one pixel at a time (no divisions per pixel).
  int64_t n = m0 / PQ, p = (m0 - n * PQ) / s.Q, q = m0 - n * PQ - p * s.Q;
  for (int64_t mp = m0; mp < m1; mp += kMR) {
    const int64_t row = mp - m0;
    const T* xrow0[kMR];  // pixel i's input image, or null past m1
    int64_t ih0[kMR], iw0[kMR];
    bool all_w_inside = s.dil_w == 1;
    for (int i = 0; i < kMR; ++i) {
      const int64_t m = mp + i;
      if (m >= m1) {
        xrow0[i] = nullptr;
        ih0[i] = iw0[i] = 0;
        continue;
      }
      xrow0[i] = x + n * s.H * s.W * C;
      ih0[i] = p * s.stride_h - s.pad_top;
      iw0[i] = q * s.stride_w - s.pad_left;
      all_w_inside &= iw0[i] >= 0 && iw0[i] + (s.S - 1) * s.dil_w < s.W;
      if (++q == s.Q) {
        q = 0;
        if (++p == s.P) {
          p = 0;
          ++n;
        }
      }
    }
    const T* src[kMR];
    for (int64_t r = 0; r < s.R; ++r) {
      if (all_w_inside) {  // every pixel's S taps: one run of S*C values (or zeros)
        for (int i = 0; i < kMR; ++i) {
          const int64_t ih = ih0[i] + r * s.dil_h;
          src[i] = xrow0[i] && ih >= 0 && ih < s.H ? xrow0[i] + (ih * s.W + iw0[i]) * C : zeros;
        }
        put_segment<T>(Ap, pa, row, r * SC, SC, src, zeros);
        continue;
      }
      for (int64_t t = 0; t < s.S; ++t) {  // per tap: C values (or zeros) per pixel
        for (int i = 0; i < kMR; ++i) {
          const int64_t ih = ih0[i] + r * s.dil_h, iw = iw0[i] + t * s.dil_w;
          src[i] = xrow0[i] && ih >= 0 && ih < s.H && iw >= 0 && iw < s.W
                       ? xrow0[i] + (ih * s.W + iw) * C
                       : zeros;
        }
        put_segment<T>(Ap, pa, row, r * SC + t * C, C, src, zeros);
      }
    }
  }
}

// ---- Forward, direct: no im2col for whole tiles of interior pixels ----
// A register tile of kMR consecutive output pixels of one output row x NR filters. When all
// kMR windows lie inside the input along w (dil_w = 1), pixel i's kernel row r is one
// contiguous run of S*C values of x, so the tile reads x in place (one broadcast per pixel
// and k, as the packed micro-kernel does from its packed A) against W packed once into
// NR-wide panels; kernel rows outside the input (top/bottom 'same' rows) are skipped.
// Other tiles (left/right borders, the last < kMR pixels of a row) are gathered into one
// packed panel first (im2col_packed) and run through the same kernel.
constexpr int kNV = 2;

template <typename T, bool kDirect>
inline void conv_tile(const T* const* a, int64_t nseg, int64_t seglen, const bool* segok,
                      const T* bp, T* y, int64_t ldy, int64_t mr, int64_t nr, const T* bias,
                      bool relu) {
  constexpr int NR = kNV * Vec<T>::lanes;
  vec_t<T> acc[kMR][kNV];
  zero_tile<T>(acc);
  for (int64_t g = 0; g < nseg; ++g)
    if (segok[g])
      micro_accumulate<T, kMR>(acc, seglen, a + g * kMR, kDirect ? 1 : kMR,
                               bp + g * seglen * NR, NR);
  store_tile<T, kMR, kNV>(acc, y, ldy, mr, nr, /*accumulate=*/false, bias, relu);
}

// y rows of output rows [r0, r1) (an output row = Q pixels of one (n, p)).
template <typename T>
void conv_direct_rows(T* y, const T* x, const T* Bp, const T* b, T* panel, const T* zeros,
                      const Conv2dShape& s, int64_t r0, int64_t r1, bool relu) {
  constexpr int NR = kNV * Vec<T>::lanes;
  const int64_t C = s.C, SC = s.S * C, L = s.R * SC, K = s.K;
  const int64_t npan = (K + NR - 1) / NR;
  const T* a[16 * kMR];  // R <= 16 checked by the caller
  bool ok[16];
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t n = row / s.P, p = row - n * s.P;
    const T* xn = x + n * s.H * s.W * C;
    const int64_t ih0 = p * s.stride_h - s.pad_top;
    for (int64_t q0 = 0; q0 < s.Q; q0 += kMR) {
      const int64_t mr = min64(kMR, s.Q - q0), m0 = row * s.Q + q0;
      const int64_t iw_first = q0 * s.stride_w - s.pad_left;
      const int64_t iw_last = (q0 + kMR - 1) * s.stride_w - s.pad_left + (s.S - 1);
      T* yt = y + m0 * K;
      const bool direct = mr == kMR && s.dil_w == 1 && iw_first >= 0 && iw_last < s.W;
      if (direct) {
        for (int64_t r = 0; r < s.R; ++r) {
          const int64_t ih = ih0 + r * s.dil_h;
          ok[r] = ih >= 0 && ih < s.H;
          for (int i = 0; i < kMR; ++i)
            a[r * kMR + i] = ok[r] ? xn + (ih * s.W + iw_first + i * s.stride_w) * C : nullptr;
        }
        for (int64_t jp = 0; jp < npan; ++jp)
          conv_tile<T, true>(a, s.R, SC, ok, Bp + jp * L * NR, yt + jp * NR, K, kMR,
                             min64(NR, K - jp * NR), b ? b + jp * NR : nullptr, relu);
      } else {
        im2col_packed<T>(panel, x, zeros, s, m0, m0 + mr, L);
        for (int i = 0; i < kMR; ++i) a[i] = panel + i;
        ok[0] = true;
        for (int64_t jp = 0; jp < npan; ++jp)
          conv_tile<T, false>(a, 1, L, ok, Bp + jp * L * NR, yt + jp * NR, K, mr,
                              min64(NR, K - jp * NR), b ? b + jp * NR : nullptr, relu);
      }
    }
  }
}

// An activation the GEMM's store cannot apply (all but linear and ReLU): a pass over y after.
inline bool post_pass(Activation act) {
  return act != Activation::linear && act != Activation::relu;
}

// 1x1 stride 1: x is the GEMM's A as it is. L = 0 (no input channel): the GEMM's empty
// product, y = act(bias) (the chunked paths below divide by L).
template <typename T>
void forward_pointwise(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                       Activation act) {
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  gemm<T>(y, x, w, b, M, K, L, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, false, false, false,
          act == Activation::relu);
  if (post_pass(act)) activation_forward<T>(y, y, M, K, act);
}

// Direct tiles (conv_direct_rows), the N*P output rows split between threads.
template <typename T>
void forward_direct(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act) {
  constexpr int NR = kNV * Vec<T>::lanes;
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  const bool relu = act == Activation::relu, post = post_pass(act);
  const int64_t npan = (K + NR - 1) / NR;
  // W packed once: NR-wide panels, k-major, zero-padded columns (read by all threads).
  T* Bp = static_cast<T*>(thread_workspace(kConvPartial, sizeof(T) * npan * L * NR));
  for (int64_t jp = 0; jp < npan; ++jp)
    for (int64_t l = 0; l < L; ++l)
      for (int j = 0; j < NR; ++j)
        Bp[(jp * L + l) * NR + j] = jp * NR + j < K ? w[l * K + jp * NR + j] : T(0);
  const int nt = threads_for_work(2.0 * double(M) * double(K) * double(L));
  parallel_ranges(s.N * s.P, nt, [&](int64_t r0, int64_t r1) {
    T* panel =
        static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * (kMR * L + kMR + s.S * s.C)));
    T* zeros = panel + kMR * L + kMR;
    std::memset(zeros, 0, sizeof(T) * s.S * s.C);
    conv_direct_rows<T>(y, x, Bp, b, panel, zeros, s, r0, r1, relu);
    if (post)
      activation_forward<T>(y + r0 * s.Q * K, y + r0 * s.Q * K, (r1 - r0) * s.Q, K, act);
  });
}

// im2col_packed + gemm_prepacked_a, chunk by chunk. Forward units: chunks of kColBytes-sized
// rows; any row of y is computed by the same GEMM call for any thread count.
template <typename T>
void forward_packed(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act) {
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  const bool relu = act == Activation::relu, post = post_pass(act);
  const int64_t rows = chunk_rows(s, L, sizeof(T));
  const int64_t chunks = (M + rows - 1) / rows;
  const int nt = threads_for_work(2.0 * double(M) * double(K) * double(L));
  const int64_t kstep = gemm_k_step<T>(L);
  const int64_t rows_pad = (min64(rows, M) + kMR - 1) / kMR * kMR;
  parallel_ranges(chunks, chunks >= 2 ? nt : 1, [&](int64_t c0, int64_t c1) {
    // [packed A of one chunk | kMR spill padding | SC zeros]
    T* Ap = static_cast<T*>(
        thread_workspace(kConvCol, sizeof(T) * (rows_pad * L + kMR + s.S * s.C)));
    T* zeros = Ap + rows_pad * L + kMR;
    std::memset(zeros, 0, sizeof(T) * s.S * s.C);
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t m0 = c * rows, m1 = min64(M, m0 + rows), mc = m1 - m0;
      im2col_packed<T>(Ap, x, zeros, s, m0, m1, kstep);
      T* yc = y + m0 * K;
      gemm_prepacked_a<T>(yc, Ap, w, b, mc, K, L, /*ldb=*/K, /*ldc=*/K, false, false, relu);
      if (post) activation_forward<T>(yc, yc, mc, K, act);  // while the chunk is in cache
    }
  });
}

}  // namespace

template <typename T>
ConvForwardPath conv2d_forward_path(const Conv2dShape& s) {
  const int64_t M = s.N * s.P * s.Q, L = s.R * s.S * s.C;
  if (M <= 0 || s.K <= 0) return ConvForwardPath::empty;
  if (is_pointwise(s) || L == 0) return ConvForwardPath::pointwise;
  // Direct path (no im2col pass) where the window rows are short (S*C < 32: im2col_packed
  // spends more on per-segment work than on copying) and rows hold several whole tiles
  // (R <= 16: conv_direct_rows's pointer arrays).
  // 2 threads, ms, packed -> direct (torch_cl): 3->32 32x32 b64 1.28 -> 0.70 (0.77-0.84);
  // it lost elsewhere: 32->64 15x15 2.55 -> 3.26, 64->64 6x6 0.54 -> 0.77 (few whole tiles
  // per row), 'same' 32x32x32 about even (8.2 vs 9.4 on a noisier run).
  if (s.S * s.C < 32 && s.Q >= 2 * kMR && s.R <= 16) return ConvForwardPath::direct;
  return ConvForwardPath::packed;
}

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act) {
  switch (conv2d_forward_path<T>(s)) {
    case ConvForwardPath::empty: return;
    case ConvForwardPath::pointwise: return forward_pointwise<T>(y, x, w, b, s, act);
    case ConvForwardPath::direct: return forward_direct<T>(y, x, w, b, s, act);
    case ConvForwardPath::packed: return forward_packed<T>(y, x, w, b, s, act);
  }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*,
                                    const Conv2dShape&, Activation);
template void conv2d_forward<double>(double*, const double*, const double*, const double*,
                                     const Conv2dShape&, Activation);
template ConvForwardPath conv2d_forward_path<float>(const Conv2dShape&);
template ConvForwardPath conv2d_forward_path<double>(const Conv2dShape&);

}  // namespace DLFAST_ISA
}  // namespace dlfast
