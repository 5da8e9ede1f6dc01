// Splitting a loop over threads, for the csrc/cpu kernels (internal linkage: see vec.h).
//
// Why not `#pragma omp parallel for if (n > threshold)`: when the condition is false GCC still
// runs the loop inside the outlined parallel function, where it reads the arrays through the
// shared-variable struct and does not vectorise; measured 4x slower than the plain loop on
// 235k floats (SGD update). So the one-thread case calls the body directly.
#pragma once
#include <omp.h>

#include <algorithm>
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

// Calls body(b, lo, hi) for each fixed block b, rows [b*block, min(n, (b+1)*block)), of
// [0, n), the blocks spread over `threads` threads. The blocks depend on (n, block) only, so a
// reduction that keeps one partial result per block and adds them in block order gives the
// same bits for any thread count.
template <typename Body>
inline void parallel_blocks(int64_t n, int64_t block, int threads, const Body& body) {
  const int64_t blocks = (n + block - 1) / block;
  parallel_ranges(blocks, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) body(b, b * block, std::min(n, (b + 1) * block));
  });
}

}  // namespace
}  // namespace DLFAST_ISA
}  // namespace dlfast
