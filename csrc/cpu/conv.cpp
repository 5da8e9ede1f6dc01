// 2-D convolution, NHWC x HWIO, on top of the packed GEMM; compiled once per ISA (see kernels.h).
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
#include <algorithm>
#include <cstring>

#include "common/threading.h"
#include "cpu/gemm_micro.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/tile.h"
#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Per-thread col sub-chunk size (each thread has its own). Measured 2 threads, one process,
// ms fwd/bwd at 128 / 256 / 512 / 1024 / 2048 KiB: 'same' 32x32x32 b64 9.5/22.5, 9.1/19.7,
// 9.0/19.4, 8.8/19.3, 8.8/19.1; 3->32 32x32 fwd 1.22, 1.25, 1.27, 1.28, 1.56 (2 MiB leaves
// too few chunks of whole images to balance two threads). 1 MiB: the best all round.
constexpr int64_t kColBytes = int64_t(1) << 20;

inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

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

// Backward work units (groups of whole images): enough for 8 threads to share evenly, few
// enough that adding the partial dW's stays cheap next to the GEMMs.
constexpr int64_t kUnits = 8;

// Rows per backward sub-chunk: col (and dcol) of kColBytes.
inline int64_t chunk_rows_sub(int64_t L, size_t elem) {
  return max64(kColBytes / int64_t(elem) / max64(L, 1), 16);
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

// ---- Forward: im2col straight into the GEMM's packed-A layout (see gemm_prepacked_a) ----
// Before, im2col wrote col[M, L] and gemm's pack_a copied it again into MR-row panels: a
// second full pass over col, which dominated when L = R*S*C is small (27 for a 3-channel
// first layer). Now each MR-pixel panel is written once, k-major (a(i, k) at k*MR + i),
// straight from x: per panel and kernel row r, each pixel's S*C window is one contiguous run
// (or, for pixels whose window crosses the left/right edge, C-long runs per tap); zero taps
// read from a zero buffer, so interior and border pixels take the same vector path.
// kMR must equal gemm_mr<T>() (checked at run time; the two-pass path runs otherwise).
constexpr int kMR = DLFAST_VEC_BYTES == 64 ? 14 : 6;

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

// Threading (both directions): the im2col path is split into work units fixed by the shape
// alone (never by the thread count); each thread takes whole units, builds each unit's col
// sub-chunks in its own L2-sized workspace and runs a one-thread GEMM on it, so there is no
// fork/join per chunk and col never leaves the core's cache. (Before: one shared chunk of
// 2 MiB, im2col then a 2-thread GEMM per chunk; the 'same' 32x32x32 b64 backward spent
// most of its time in the serial parts.)
//
// Forward units: chunks of kColBytes-sized rows; any row of y is computed by the same GEMM
// call for any thread count.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act) {
  const int64_t M = s.N * s.P * s.Q, K = s.K, L = s.R * s.S * s.C;
  const bool relu = act == Activation::relu;
  const bool post = act != Activation::linear && !relu;
  if (M <= 0 || K <= 0) return;
  // 1x1 stride 1: x is the GEMM's A as it is. L = 0 (no input channel): the GEMM's empty
  // product, y = act(bias) (the chunked paths below divide by L).
  if (is_pointwise(s) || L == 0) {
    gemm<T>(y, x, w, b, M, K, L, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, false, false, false, relu);
    if (post) activation_forward<T>(y, y, M, K, act);
    return;
  }
  const int64_t rows = chunk_rows(s, L, sizeof(T));
  const int64_t chunks = (M + rows - 1) / rows;
  const int nt = threads_for_work(2.0 * double(M) * double(K) * double(L));
  // Direct path (no im2col pass) where the window rows are short (S*C < 32: im2col_packed
  // spends more on per-segment work than on copying) and rows hold several whole tiles.
  // 2 threads, ms, packed -> direct (torch_cl): 3->32 32x32 b64 1.28 -> 0.70 (0.77-0.84);
  // it lost elsewhere: 32->64 15x15 2.55 -> 3.26, 64->64 6x6 0.54 -> 0.77 (few whole tiles
  // per row), 'same' 32x32x32 about even (8.2 vs 9.4 on a noisier run).
  if (s.S * s.C < 32 && s.Q >= 2 * kMR && s.R <= 16) {
    constexpr int NR = kNV * Vec<T>::lanes;
    const int64_t npan = (K + NR - 1) / NR;
    // W packed once: NR-wide panels, k-major, zero-padded columns (read by all threads).
    T* Bp = static_cast<T*>(thread_workspace(kConvPartial, sizeof(T) * npan * L * NR));
    for (int64_t jp = 0; jp < npan; ++jp)
      for (int64_t l = 0; l < L; ++l)
        for (int j = 0; j < NR; ++j)
          Bp[(jp * L + l) * NR + j] = jp * NR + j < K ? w[l * K + jp * NR + j] : T(0);
    const int64_t nrows = s.N * s.P;
    parallel_ranges(nrows, nt, [&](int64_t r0, int64_t r1) {
      T* panel = static_cast<T*>(
          thread_workspace(kConvCol, sizeof(T) * (kMR * L + kMR + s.S * s.C)));
      T* zeros = panel + kMR * L + kMR;
      std::memset(zeros, 0, sizeof(T) * s.S * s.C);
      conv_direct_rows<T>(y, x, Bp, b, panel, zeros, s, r0, r1, relu);
      if (post)
        activation_forward<T>(y + r0 * s.Q * K, y + r0 * s.Q * K, (r1 - r0) * s.Q, K, act);
    });
    return;
  }
  if (gemm_mr<T>() == kMR) {
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
    return;
  }
  parallel_ranges(chunks, chunks >= 2 ? nt : 1, [&](int64_t c0, int64_t c1) {
    T* col =
        static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * max64(min64(rows, M) * L, 1)));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t m0 = c * rows, m1 = min64(M, m0 + rows), mc = m1 - m0;
      im2col_rows<T>(col, x, s, m0, m1);
      T* yc = y + m0 * K;
      gemm<T>(yc, col, w, b, mc, K, L, /*lda=*/L, /*ldb=*/K, /*ldc=*/K, false, false, false,
              relu);
      if (post) activation_forward<T>(yc, yc, mc, K, act);  // while the chunk is in cache
    }
  });
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
//
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
  if (is_pointwise(s) || L == 0) {  // L = 0: only db is nonempty (conv2d_forward)
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
    return;
  }
  constexpr int64_t NR = Blocking<T>::NR;
  const int64_t PQ = s.P * s.Q, HWC = s.H * s.W * s.C, LK = L * K;
  const int64_t G = min64(s.N, kUnits);
  // dx as a forward convolution of dz (see dx_by_forward): dz is then needed whole.
  const bool dx_fwd = dx && dx_by_forward(s);
  const T* dsrc = dy;  // what the chunks' dz comes from: dy (through act') or dz itself
  Activation chunk_act = act;
  if (dx_fwd && act != Activation::linear) {
    T* dz = static_cast<T*>(thread_workspace(kConvDz, sizeof(T) * M * K));
    activation_backward<T>(dz, dy, y, M, K, act);
    dsrc = dz;
    chunk_act = Activation::linear;
  }
  T* dx_col = dx_fwd ? nullptr : dx;  // dx by col2im in the chunks
  const bool small = dw_in_place(s, L);
  // Chunks: whole output rows (small L), or rows of a kColBytes col.
  const int64_t orows = max64(kSmallPixels / max64(s.Q, 1), 1);
  const int64_t rows = min64(small ? orows * s.Q : chunk_rows_sub(L, sizeof(T)), M);
  QRun runs[2 * 64 + 1];
  const int64_t nruns = small ? q_runs(s, runs) : 0;
  // Partials: G blocks of [dW (L*K) | db (K)], in the calling thread's workspace.
  const int64_t stride = LK + K;
  T* part = static_cast<T*>(thread_workspace(kConvPartial, sizeof(T) * G * stride));
  const int nt = threads_for_work(4.0 * double(M) * double(K) * double(L));
  parallel_ranges(G, nt, [&](int64_t g0, int64_t g1) {
    // col: im2col (large L) or dcol (dx) of a chunk. zeros: the row a tap outside the input
    // reads in small_l_dw (a run of up to Q pixels, a_cs apart).
    const int64_t ncol = small && !dx_col ? 0 : rows * L;
    const int64_t nzero = small ? s.Q * s.stride_w * s.C : 0;
    T* col = static_cast<T*>(thread_workspace(kConvCol, sizeof(T) * max64(ncol + nzero, 1)));
    T* zeros = col + ncol;
    for (int64_t j = 0; j < nzero; ++j) zeros[j] = T(0);
    // dz of a chunk: read in place from dy (or the whole dz) when linear, else computed into
    // dz_buf. The in-place dW's last row of an nr < NR panel reads up to NR values past the
    // chunk, past the end of dy on the last one: with K % NR != 0 it takes dz_buf (+ NR zeros).
    const bool copy_dz = chunk_act != Activation::linear || (small && K % NR != 0);
    T* dz_buf = nullptr;
    if (copy_dz) {
      dz_buf = static_cast<T*>(thread_workspace(kConvGrad, sizeof(T) * (rows * K + NR)));
      for (int64_t j = rows * K; j < rows * K + NR; ++j) dz_buf[j] = T(0);
    }
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n0 = s.N * g / G, n1 = s.N * (g + 1) / G;
      const int64_t a = n0 * PQ, e = n1 * PQ;
      T* pw = part + g * stride;
      T* pb = pw + LK;
      if (dx_col) std::memset(dx_col + n0 * HWC, 0, sizeof(T) * (n1 - n0) * HWC);
      for (int64_t j = 0; j < K; ++j) pb[j] = T(0);
      for (int64_t m0 = a; m0 < e; m0 += rows) {
        const int64_t m1 = min64(e, m0 + rows), mc = m1 - m0;
        const T* dzc = dsrc + m0 * K;
        if (chunk_act != Activation::linear)
          activation_backward<T>(dz_buf, dzc, y + m0 * K, mc, K, chunk_act);
        else if (copy_dz)
          std::memcpy(dz_buf, dzc, sizeof(T) * mc * K);
        if (copy_dz) dzc = dz_buf;
        if (db) add_column_sums<T>(pb, dzc, mc, K);
        if (small) {
          small_l_dw<T>(pw, x, dzc, zeros, s, runs, nruns, m0 / s.Q, m1 / s.Q, m0 > a);
        } else {
          im2col_rows<T>(col, x, s, m0, m1);
          gemm<T>(pw, col, dzc, nullptr, L, K, mc, /*lda=*/L, /*ldb=*/K, /*ldc=*/K,
                  /*trans_a=*/true, false, /*accumulate=*/m0 > a, false);
        }
        if (!dx_col) continue;
        // dcol[mc, L] = dz_chunk . W^T (in col, free again), scattered into dx.
        gemm<T>(col, dzc, w, nullptr, mc, L, K, /*lda=*/K, /*ldb=*/K, /*ldc=*/L, false,
                /*trans_b=*/true, false, false);
        col2im_rows<T>(dx_col, col, s, m0, m1, m0);
      }
    }
  });
  // dW (=|+=) sum of the partials in unit order, each element independently (any split).
  parallel_ranges(stride, copy_threads(G * stride), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      if (i >= LK && !db) break;
      T sum = part[i];
      for (int64_t g = 1; g < G; ++g) sum += part[g * stride + i];
      T* d = i < LK ? dw + i : db + (i - LK);
      *d = accumulate ? *d + sum : sum;
    }
  });
  if (dx_fwd) conv2d_dx_by_forward<T>(dx, dsrc, w, nullptr, s, Activation::linear);
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
template void conv2d_dx_by_forward<float>(float*, const float*, const float*, const float*,
                                          const Conv2dShape&, Activation);
template void conv2d_dx_by_forward<double>(double*, const double*, const double*,
                                           const double*, const Conv2dShape&, Activation);
template void conv2d_col2im<float>(float*, const float*, const Conv2dShape&, int64_t, int64_t);
template void conv2d_col2im<double>(double*, const double*, const Conv2dShape&, int64_t,
                                    int64_t);

}  // namespace DLFAST_ISA
}  // namespace dlfast
