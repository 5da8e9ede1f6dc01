// The CUDA kernels' launchers (floor 1 of the optional GPU module dlfast._cuda), float32.
// Same names, argument order and shape letters as csrc/cpu (common/dispatch.h has the legend
// and the shape structs): outputs first, then inputs, then weights, then sizes; the stream
// last. Every pointer is device memory. Launchers only enqueue work on `stream` (nothing
// waits, nothing is allocated); workspaces come from the caller, sized by the *_workspace
// functions. Weight gradients accumulate (+=) unless `accumulate` is false (=); activation
// gradients are overwritten (=). Softmax is never fused into a GEMM epilogue: the layers
// that end in softmax run activation_forward after a linear GEMM.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "common/dispatch.h"

namespace dlfast {
namespace cuda {

// C[M,N] (= or +=) op(A)[M,K] . op(B)[K,N] (+ bias[N] on every row), then act (linear, relu,
// sigmoid or tanh). op(A) = A (row-major, lda) or A^T when trans_a (A stored K x M); likewise
// B. bias may be null.
void gemm(float* C, const float* A, const float* B, const float* bias, int64_t M, int64_t N,
          int64_t K, int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b,
          bool accumulate, Activation act, cudaStream_t stream);

// Whether every matrix product (gemm, dense, conv2d, LSTM) may round its inputs to TF32 and
// run on tensor cores (devices of compute capability >= 8.0; elsewhere it stays float32).
// Off by default. Not thread-safe against launches running on other host threads.
void set_allow_tf32(bool allow);
bool allow_tf32();
// allow_tf32() and the current device has TF32 tensor cores: what launches will use.
bool gemm_use_tf32();

// y[R,C] = act(x[R,C]) (y may alias x); softmax over each row.
void activation_forward(float* y, const float* x, int64_t R, int64_t C, Activation act,
                        cudaStream_t stream);
// dx[R,C] = dy * act'(y) from the forward output y (dx may alias dy; softmax: its Jacobian).
void activation_backward(float* dx, const float* dy, const float* y, int64_t R, int64_t C,
                         Activation act, cudaStream_t stream);
// out[i] = a[i] + b[i] for n elements (out may alias a or b): the Add layer, and the sum of
// the gradients reaching one tensor from several layers.
void add(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream);
// out[C] (= or +=) the sum of each column of x[R,C], in a fixed order.
void column_sum(float* out, const float* x, int64_t R, int64_t C, bool accumulate,
                cudaStream_t stream);

// y[N,U] = act(x[N,D] . W[D,U] + b[U]); b may be null.
void dense_forward(float* y, const float* x, const float* W, const float* b, int64_t N,
                   int64_t D, int64_t U, Activation act, cudaStream_t stream);
// dz = dy * act'(y) (into the workspace dz[N,U], which may alias dy; unused for linear);
// dW[D,U] (+= or =) x^T dz; db[U] (+= or =) colsum(dz); dx[N,D] (=) dz W^T. dx, db may be null.
void dense_backward(float* dx, float* dW, float* db, float* dz, const float* dy, const float* x,
                    const float* W, const float* y, int64_t N, int64_t D, int64_t U,
                    Activation act, bool accumulate, cudaStream_t stream);

// Mean loss over the batch (Keras's sum_over_batch_size, as the CPU kernel): *loss (= or +=)
// scale * mean, in float64; grad[N,C] (=, may be null) its gradient w.r.t. y_pred (logits
// when from_logits). target[N,C], or labels[N] for the sparse loss. The categorical losses
// need from_logits (a model fuses its softmax into the loss). work: loss_workspace floats.
void loss_forward_backward(float* grad, double* loss, float* work, const float* y_pred,
                           const float* target, const int64_t* labels, int64_t N, int64_t C,
                           Loss loss_kind, bool from_logits, double scale, bool accumulate,
                           cudaStream_t stream);
int64_t loss_workspace(int64_t N, int64_t C);
// *count += the rows of y_pred[N,C] whose argmax is labels[n] (sparse) or the argmax of
// target[n] (one-hot); with C == 1, whether y_pred > threshold agrees with target > 0.5.
void count_correct(int64_t* count, const float* y_pred, const float* target,
                   const int64_t* labels, int64_t N, int64_t C, float threshold,
                   cudaStream_t stream);

// Keras SGD on n parameters (as the CPU sgd_update): w -= lr*wd*w when wd != 0; then plain
// w -= lr*g, or v = m*v - lr*g, w += v (Nesterov: w += m*v - lr*g). v may be null (m == 0).
void sgd_update(float* w, float* v, const float* g, int64_t n, float lr, float momentum,
                bool nesterov, float weight_decay, cudaStream_t stream);
// Keras Adam at step t (1-based): m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// w = w (1 - lr wd) - lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps) (decoupled weight decay wd,
// Keras 3's w -= lr*wd*w before the step).
void adam_update(float* w, float* m, float* v, const float* g, int64_t n, float lr, float beta1,
                 float beta2, float epsilon, int64_t t, float weight_decay, cudaStream_t stream);

// y[N,P,Q,K] = act(conv2d(x[N,H,W,C], w[R,S,C,K]) + b[K]) as an implicit GEMM (no im2col
// buffer); b may be null.
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dShape& s, Activation act, cudaStream_t stream);
// dz = dy * act'(y) into the workspace dz[N,P,Q,K] (may alias dy; unused for linear);
// dw (+= or =), db (+= or =, may be null), dx (=, may be null); all implicit GEMMs.
void conv2d_backward(float* dx, float* dw, float* db, float* dz, const float* dy,
                     const float* x, const float* w, const float* y, const Conv2dShape& s,
                     Activation act, bool accumulate, cudaStream_t stream);

// Pooling on NHWC (Pool2dShape): max pads with -inf, average counts only cells inside.
void maxpool2d_forward(float* y, const float* x, const Pool2dShape& s, cudaStream_t stream);
// dx (=): each dy goes to the first maximum of its window (recomputed from x).
void maxpool2d_backward(float* dx, const float* dy, const float* x, const Pool2dShape& s,
                        cudaStream_t stream);
void avgpool2d_forward(float* y, const float* x, const Pool2dShape& s, cudaStream_t stream);
void avgpool2d_backward(float* dx, const float* dy, const Pool2dShape& s, cudaStream_t stream);

// LSTM over a sequence, the CPU kernel's layouts: H, C [N,L,U], Z [N,L,G] (the activated gates
// i, f, c~, o), x[N,L,D], W[D,G], R[U,G], b[G]; b, h0, c0 [N,U] may be null (zeros).
// Z = x W + b in one GEMM, then per step a GEMM adds h_{t-1} R and a fused cell kernel.
void lstm_forward(float* H, float* C, float* Z, const float* x, const float* W, const float* R,
                  const float* b, const float* h0, const float* c0, const LstmShape& s,
                  cudaStream_t stream);
// Backward through time (as the CPU lstm_backward): per step one GEMM (dz_{t+1} R^T) and a
// fused cell kernel; then the weight gradients by three GEMMs over all steps. dH, dhL, dcL,
// db, dx, dh0, dc0 may be null. work: lstm_backward_workspace floats.
void lstm_backward(float* dx, float* dW, float* dR, float* db, float* dh0, float* dc0,
                   const float* dH, const float* dhL, const float* dcL, const float* x,
                   const float* W, const float* R, const float* h0, const float* c0,
                   const float* H, const float* C, const float* Z, const LstmShape& s,
                   bool accumulate, float* work, cudaStream_t stream);
int64_t lstm_backward_workspace(const LstmShape& s);

}  // namespace cuda
}  // namespace dlfast
