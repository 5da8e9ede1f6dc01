// Reference embedding lookup (the definition csrc/cpu/embedding.cpp is tested against).
// Legend: ids[n] (each in [0, V), checked by the bindings), W and dW [V,E], y and dy [n,E].
#include <vector>

#include "ref/ref.h"

namespace dlfast {
namespace ref {

// y[i,e] = W[ids[i],e]
template <typename T>
void embedding_forward(T* y, const int64_t* ids, const T* W, int64_t n, int64_t V, int64_t E) {
  (void)V;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < E; ++e) y[i * E + e] = W[ids[i] * E + e];
}

// dW[v,e] (+= or =) sum over i with ids[i] = v of dy[i,e], summed in double
template <typename T>
void embedding_backward(T* dW, const T* dy, const int64_t* ids, int64_t n, int64_t V, int64_t E,
                        bool accumulate) {
  std::vector<double> sum(size_t(V * E), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < E; ++e) sum[size_t(ids[i] * E + e)] += double(dy[i * E + e]);
  for (int64_t k = 0; k < V * E; ++k) dW[k] = T((accumulate ? double(dW[k]) : 0.0) + sum[k]);
}

#define DLFAST_REF_EMBEDDING(T)                                                               \
  template void embedding_forward<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t); \
  template void embedding_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, \
                                      bool);
DLFAST_REF_EMBEDDING(float)
DLFAST_REF_EMBEDDING(double)
#undef DLFAST_REF_EMBEDDING

}  // namespace ref
}  // namespace dlfast
