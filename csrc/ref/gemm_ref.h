// Scalar reference GEMM: the definition the packed kernels are tested against (tests call it
// through dlfast._core.reference_gemm). Same contract as KernelTable::gemm.
#pragma once
#include <cstdint>

namespace dlfast {
namespace ref {

template <typename T>
void gemm(T* C, const T* A, const T* B, const T* bias, int64_t M, int64_t N, int64_t K,
          int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b, bool accumulate,
          bool relu);

}  // namespace ref
}  // namespace dlfast
