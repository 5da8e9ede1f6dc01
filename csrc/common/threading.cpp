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

int threads_for_work(double flops) {
  // Below ~2 MFLOP a parallel region's wake-up and join (a few microseconds) is a large
  // share of the work; measured with bench/bench_gemm.py at the Dense shapes.
  // Inside a parallel region (dense_backward runs its two products side by side) the caller
  // already shares out the cores: one thread, and no nested region to open.
  if (omp_in_parallel()) return 1;
  const int n = get_num_threads();
  return flops < 2.0e6 ? 1 : n;
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
