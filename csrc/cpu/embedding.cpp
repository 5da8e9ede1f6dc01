// Embedding lookup (Keras's Embedding), forward and backward, compiled once per ISA (see
// kernels.h). Legend: ids[n] (int64, each in [0, V): the bindings check it before any kernel
// runs), W and dW [V,E] (V rows of the table, E features), y and dy [n,E].
//
// Forward copies row ids[i] of W to row i of y (threads split the n rows). Backward adds row
// i of dy into row ids[i] of dW, no one-hot: threads split the E columns, and each walks
// every id in order, so each dW element sums its rows in id order whatever the thread count
// (no two threads write one element, no atomics: the same bits for 1 and 2 threads).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/threading.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace dlfast {
namespace DLFAST_ISA {

// y[i,:] (=) = W[ids[i],:].
template <typename T>
void embedding_forward(T* y, const int64_t* ids, const T* W, int64_t n, int64_t V, int64_t E) {
  (void)V;
  if (n <= 0 || E <= 0) return;
  parallel_ranges(n, threads_for_work(double(n) * double(E)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) std::memcpy(y + i * E, W + ids[i] * E, sizeof(T) * E);
  });
}

// dW (+= or =) the scatter-add: dW[v,:] = (dW[v,:] +) sum over i with ids[i] = v of dy[i,:],
// the rows added in order of i. Rows of dW no id names get 0 (=) or stay (+=).
template <typename T>
void embedding_backward(T* dW, const T* dy, const int64_t* ids, int64_t n, int64_t V, int64_t E,
                        bool accumulate) {
  if (V <= 0 || E <= 0) return;
  if (!accumulate)
    parallel_ranges(V, threads_for_work(double(V) * double(E)), [&](int64_t lo, int64_t hi) {
      std::memset(dW + lo * E, 0, sizeof(T) * size_t((hi - lo) * E));
    });
  if (n <= 0) return;
  // Column slices of whole vectors (16 elements) where E allows, so each thread's adds
  // vectorise; E < 32 runs on one thread.
  const int64_t chunks = (E + 15) / 16;
  const int threads = int(std::min<int64_t>(threads_for_work(double(n) * double(E)), chunks));
  parallel_ranges(chunks, threads, [&](int64_t c0, int64_t c1) {
    const int64_t e0 = c0 * 16, e1 = std::min(E, c1 * 16);
    for (int64_t i = 0; i < n; ++i) {
      T* __restrict dst = dW + ids[i] * E;
      const T* __restrict src = dy + i * E;
      for (int64_t e = e0; e < e1; ++e) dst[e] += src[e];
    }
  });
}

#define DLFAST_EMBEDDING(T)                                                                  \
  template void embedding_forward<T>(T*, const int64_t*, const T*, int64_t, int64_t,        \
                                     int64_t);                                               \
  template void embedding_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t,       \
                                      int64_t, bool);
DLFAST_EMBEDDING(float)
DLFAST_EMBEDDING(double)
#undef DLFAST_EMBEDDING

}  // namespace DLFAST_ISA
}  // namespace dlfast
