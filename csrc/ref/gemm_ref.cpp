#include "ref/gemm_ref.h"

namespace dlfast {
namespace ref {

template <typename T>
void gemm(T* C, const T* A, const T* B, const T* bias, int64_t M, int64_t N, int64_t K,
          int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b, bool accumulate,
          bool relu) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;  // accumulate in double: the reference should not be the weak link
      for (int64_t k = 0; k < K; ++k) {
        const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const T b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        s += double(a) * double(b);
      }
      if (accumulate) s += double(C[i * ldc + j]);
      if (bias) s += double(bias[j]);
      if (relu && s < 0) s = 0;  // NaN fails s < 0 and stays NaN (issue 18), as the kernels
      C[i * ldc + j] = T(s);
    }
}

template void gemm<float>(float*, const float*, const float*, const float*, int64_t, int64_t,
                          int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool);
template void gemm<double>(double*, const double*, const double*, const double*, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool);

}  // namespace ref
}  // namespace dlfast
