// Splitting a loop over threads, for the csrc/cpu kernels (internal linkage: see vec.h).
//
// Why not `#pragma omp parallel for if (n > threshold)`: when the condition is false GCC still
// runs the loop inside the outlined parallel function, where it reads the arrays through the
// shared-variable struct and does not vectorise; measured 4x slower than the plain loop on
// 235k floats (SGD update). So the one-thread case calls the body directly.
#pragma once
#include <omp.h>

#include <cstdint>

namespace dlfast {
namespace DLFAST_ISA {
namespace {

// Calls body(lo, hi) on `threads` contiguous slices of [0, n) (the calling thread alone when
// threads <= 1). Slices are fixed by (n, threads), so results never depend on scheduling.
template <typename Body>
inline void parallel_ranges(int64_t n, int threads, const Body& body) {
  if (threads <= 1 || n < 2) {
    body(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
    const int64_t lo = n * t / k, hi = n * (t + 1) / k;
    if (lo < hi) body(lo, hi);
  }
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
