// Threads (OpenMP) and per-thread workspaces. Not compiled per ISA.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dlfast {

int get_num_threads();
void set_num_threads(int n);

// How many threads a job of `flops` floating-point operations should use: 1 below the size
// where waking a second thread costs more than it saves, else get_num_threads(); 1 when
// called inside a parallel region.
int threads_for_work(double flops);
// The same for matrix products (gemm, and dense_backward's choice of running its two
// products side by side), whose work is multiply-adds on data each thread packs for itself:
// a second thread pays off from ~0.5 MFLOP, the packed GEMM's smallest products.
int threads_for_gemm(double flops);

// Workspace slots: each thread owns one growable, 64-byte-aligned buffer per slot.
// kConvCol: conv2d's im2col / dcol chunk; kConvGrad: conv2d_backward's dz = dy * act'(y);
// kConvPartial: conv2d_backward's per-unit partial dW / db. kLstmPack: the LSTM's (and the
// GRU's) packed recurrent kernel; kLstmGates: their backward's gate gradients of all steps;
// kLstmState: their backward's carried state gradients and shifted hidden states. kConvDz: conv2d_backward's whole
// dz when its dx is a forward convolution; kConvFlip: that convolution's flipped kernel.
enum WorkspaceSlot : int {
  kPackA = 0,
  kPackB = 1,
  kPackSmall = 2,
  kDenseGrad = 3,
  kConvCol = 4,
  kConvGrad = 5,
  kConvPartial = 6,
  kLstmPack = 7,
  kLstmGates = 8,
  kLstmState = 9,
  kConvDz = 10,
  kConvFlip = 11,
  kNumSlots = 12
};
// A buffer of at least `bytes` for the calling thread; valid until the same thread asks the
// same slot for more. Never called inside a hot loop: once per kernel call per thread.
void* thread_workspace(WorkspaceSlot slot, size_t bytes);

}  // namespace dlfast
