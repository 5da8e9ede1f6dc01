// Dense (fully connected) layer on top of the packed GEMM, compiled once per ISA.
//   forward:  y[N,U] = act(x[N,D] . W[D,U] + b[U])        bias and ReLU fused into the GEMM store
//   backward: dz = dy * act'(y)                            (skipped for linear)
//             dW[D,U] += x^T . dz ;  db[U] += colsum(dz)   (weight gradients accumulate,
//                                                         or are overwritten when asked)
//             dx[N,D]  = dz . W^T                          (overwritten; skipped when dx is null)
#include <new>

#include "common/threading.h"
#include "cpu/parallel.h"
#include "cpu/kernels.h"
#include "cpu/vec.h"

namespace dlfast {
namespace DLFAST_ISA {

template <typename T>
void dense_forward(T* y, const T* x, const T* W, const T* b, int64_t N, int64_t D, int64_t U,
                   Activation act) {
  gemm<T>(y, x, W, b, N, U, D, /*lda=*/D, /*ldb=*/U, /*ldc=*/U, false, false,
          /*accumulate=*/false, /*relu=*/act == Activation::relu);
  if (act != Activation::linear && act != Activation::relu) activation_forward<T>(y, y, N, U, act);
}

template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, const T* y,
                    int64_t N, int64_t D, int64_t U, Activation act, bool accumulate) {
  const T* dz = dy;
  if (act != Activation::linear) {
    T* buf = static_cast<T*>(thread_workspace(kDenseGrad, sizeof(T) * (N * U > 0 ? N * U : 1)));
    activation_backward<T>(buf, dy, y, N, U, act);
    dz = buf;
  }
  auto weight_grads = [&] {
    gemm<T>(dW, x, dz, nullptr, D, U, N, /*lda=*/D, /*ldb=*/U, /*ldc=*/U, /*trans_a=*/true,
            false, accumulate, false);
    if (db) {
      if (!accumulate)
        for (int64_t j = 0; j < U; ++j) db[j] = T(0);
      add_column_sums<T>(db, dz, N, U);
    }
  };
  auto input_grad = [&] {
    gemm<T>(dx, dz, W, nullptr, N, D, U, /*lda=*/U, /*ldb=*/U, /*ldc=*/D, false,
            /*trans_b=*/true, /*accumulate=*/false, false);
  };
  // dW and dx are independent products of the same size (N*D*U multiply-adds each). On two
  // threads each runs whole on its own thread (gemm sees it is inside a parallel region and
  // stays on one thread) instead of both split in two one after the other: a small GEMM split
  // over two threads scales poorly (each thread packs what its slab needs, then waits for the
  // other). Same blocking either way, so the same bits. With more threads each product keeps
  // all of them (untested: this machine has two cores).
  if (dx && threads_for_gemm(2.0 * double(N) * double(D) * double(U)) == 2) {
    bool failed = false;
    parallel_ranges(2, 2, [&](int64_t lo, int64_t) {
      try {
        if (lo == 0)
          weight_grads();
        else
          input_grad();
      } catch (const std::bad_alloc&) {
#pragma omp atomic write
        failed = true;
      }
    });
    if (failed) throw std::bad_alloc();
    return;
  }
  weight_grads();
  if (dx) input_grad();
}

template void dense_forward<float>(float*, const float*, const float*, const float*, int64_t,
                                   int64_t, int64_t, Activation);
template void dense_forward<double>(double*, const double*, const double*, const double*,
                                    int64_t, int64_t, int64_t, Activation);
template void dense_backward<float>(float*, float*, float*, const float*, const float*,
                                    const float*, const float*, int64_t, int64_t, int64_t,
                                    Activation, bool);
template void dense_backward<double>(double*, double*, double*, const double*, const double*,
                                     const double*, const double*, int64_t, int64_t, int64_t,
                                     Activation, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
