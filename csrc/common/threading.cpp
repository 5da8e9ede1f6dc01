#include "common/threading.h"

#include <omp.h>

#include <cstdlib>
#include <new>

namespace dlfast {

namespace {
int g_num_threads = 0;  // 0: not set yet, take OpenMP's default (OMP_NUM_THREADS or cores)

struct Workspace {
  void* data[kNumSlots] = {};
  size_t bytes[kNumSlots] = {};
  ~Workspace() {
    for (void* p : data) std::free(p);
  }
};
thread_local Workspace t_workspace;
}  // namespace

int get_num_threads() {
  if (g_num_threads <= 0) g_num_threads = omp_get_max_threads();
  return g_num_threads;
}

void set_num_threads(int n) {
  g_num_threads = n;
  omp_set_num_threads(n);
}

namespace {
// Inside a parallel region (dense_backward runs its two products side by side) the caller
// already shares out the cores: one thread, and no nested region to open.
int threads_from(double flops, double min_flops) {
  if (omp_in_parallel()) return 1;
  return flops < min_flops ? 1 : get_num_threads();
}
}  // namespace

int threads_for_work(double flops) {
  // Below ~2 MFLOP a parallel region's wake-up and join (a few microseconds) is a large
  // share of the work of the element-wise and memory-bound kernels that ask.
  return threads_from(flops, 2.0e6);
}

int threads_for_gemm(double flops) {
  // 2 x 64^3: below it gemm takes its one-thread small path anyway. Measured 1 -> 2 threads
  // (min of 3000 calls, 2-vCPU Zen 3), 24x96x128 (0.59 MFLOP) 8.1 -> 6.1 us, 64x64x80
  // 9.8 -> 7.1, 16x256x128 16.3 -> 10.0, 256x128x16 (A transposed) 17.5 -> 11.0; these
  // had stayed on one thread under threads_for_work's 2 MFLOP.
  return threads_from(flops, 2.0 * 64 * 64 * 64);
}

void* thread_workspace(WorkspaceSlot slot, size_t bytes) {
  Workspace& w = t_workspace;
  if (w.bytes[slot] < bytes) {
    std::free(w.data[slot]);
    size_t rounded = (bytes + 4095) & ~size_t(4095);
    w.data[slot] = std::aligned_alloc(64, rounded);
    if (!w.data[slot]) {
      w.bytes[slot] = 0;
      throw std::bad_alloc();
    }
    w.bytes[slot] = rounded;
  }
  return w.data[slot];
}

}  // namespace dlfast
