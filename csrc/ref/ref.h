// Naive reference kernels (csrc/ref): the definition of every op, written as plain loops in the
// definition's own order, one thread, sums in double. They have exactly the contracts of the
// fast kernels (the KernelTable entries in common/dispatch.h: layouts, = or +=, what may be
// null), so the bindings serve them as dlfast._core.ref.X with the same Python signature as
// dlfast._core.X, and the tests compare the two. Slow on purpose: clarity over speed.
//
// One file per family: gemm_ref.cpp, dense_ref.cpp (activations, dense), loss_ref.cpp,
// optimizer_ref.cpp, conv_ref.cpp (conv2d and its transpose), pool_ref.cpp, lstm_ref.cpp,
// batchnorm_ref.cpp, resample_ref.cpp, regularizer_ref.cpp, layernorm_ref.cpp,
// embedding_ref.cpp, gru_ref.cpp, simple_rnn_ref.cpp; table.cpp gathers them into a
// KernelTable. Each function is instantiated for float and double.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/dispatch.h"
#include "ref/gemm_ref.h"

namespace dlfast {
namespace ref {

// Every reference kernel as one table, in the KernelTable's layout.
template <typename T>
const KernelTable<T>& kernels();

// --- dense_ref.cpp ---------------------------------------------------------------------------
template <typename T>
void activation_forward(T* y, const T* x, int64_t R, int64_t C, Activation act, double slope);
template <typename T>
void activation_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C, Activation act,
                         double slope);
template <typename T>
void dense_forward(T* y, const T* x, const T* W, const T* b, int64_t N, int64_t D, int64_t U,
                   Activation act);
template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, const T* y,
                    int64_t N, int64_t D, int64_t U, Activation act, bool accumulate);

// --- loss_ref.cpp ----------------------------------------------------------------------------
template <typename T>
double loss_forward_backward(T* grad, const T* y_pred, const T* target, const int64_t* labels,
                             int64_t N, int64_t C, Loss loss, bool from_logits, double delta);

// --- optimizer_ref.cpp -----------------------------------------------------------------------
template <typename T>
void sgd_update(T* w, T* v, const T* g, int64_t n, T lr, T momentum, bool nesterov,
                T weight_decay);
template <typename T>
void adam_update(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                 double beta_2, double epsilon, double weight_decay, int64_t step);
template <typename T>
void adamax_update(T* w, T* m, T* u, const T* g, int64_t n, double lr, double beta_1,
                   double beta_2, double epsilon, double weight_decay, int64_t step);
template <typename T>
void adadelta_update(T* w, T* acc_grad, T* acc_delta, const T* g, int64_t n, double lr,
                     double rho, double epsilon, double weight_decay);
template <typename T>
void rmsprop_update(T* w, T* v, T* m, T* a, const T* g, int64_t n, double lr, double rho,
                    double momentum, double epsilon, bool centered, double weight_decay);
template <typename T>
void nadam_update(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                  double beta_2, double epsilon, double weight_decay, int64_t step,
                  double u_product);
template <typename T>
void sgdg2_probe(T* w, T* saved, const T* g, int64_t n, double h);
template <typename T>
void sgdg2_dots(double* dot, const T* g, const T* p, int64_t n);
template <typename T>
void sgdg2_step(T* w, const T* saved, int64_t n, double h_probe, double h_new,
                double weight_decay);

// --- regularizer_ref.cpp ---------------------------------------------------------------------
template <typename T>
double regularizer_penalty(T* grad, const T* w, int64_t n, double l1, double l2);

// --- conv_ref.cpp ----------------------------------------------------------------------------
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act);
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                     const Conv2dShape& s, Activation act, bool accumulate);
template <typename T>
void conv2d_transpose_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                              Activation act);
template <typename T>
void conv2d_transpose_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const T* y, const Conv2dShape& s, Activation act,
                               bool accumulate);

// --- pool_ref.cpp ----------------------------------------------------------------------------
template <typename T>
void maxpool2d_forward(T* y, const T* x, const Pool2dShape& s);
template <typename T>
void maxpool2d_backward(T* dx, const T* dy, const T* x, const Pool2dShape& s);
template <typename T>
void avgpool2d_forward(T* y, const T* x, const Pool2dShape& s);
template <typename T>
void avgpool2d_backward(T* dx, const T* dy, const Pool2dShape& s);

// --- lstm_ref.cpp ----------------------------------------------------------------------------
template <typename T>
void lstm_forward(T* H, T* C, T* Z, const T* x, const T* W, const T* R, const T* b,
                  const T* h0, const T* c0, const LstmShape& s);
template <typename T>
void lstm_backward(T* dx, T* dW, T* dR, T* db, T* dh0, T* dc0, const T* dH, const T* dhL,
                   const T* dcL, const T* x, const T* W, const T* R, const T* h0, const T* c0,
                   const T* H, const T* C, const T* Z, const LstmShape& s, bool accumulate);

// --- batchnorm_ref.cpp -----------------------------------------------------------------------
template <typename T>
void batchnorm_forward(T* y, T* mean, T* inv_std, T* moving_mean, T* moving_var, const T* x,
                       const T* gamma, const T* beta, int64_t R, int64_t C, double momentum,
                       double epsilon, bool training);
template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool training,
                        bool accumulate);

// --- resample_ref.cpp ------------------------------------------------------------------------
template <typename T>
void upsampling2d_forward(T* y, const T* x, const Upsample2dShape& s);
template <typename T>
void upsampling2d_backward(T* dx, const T* dy, const Upsample2dShape& s);
template <typename T>
void zeropadding2d_forward(T* y, const T* x, const Pad2dShape& s);
template <typename T>
void zeropadding2d_backward(T* dx, const T* dy, const Pad2dShape& s);

// --- layernorm_ref.cpp -----------------------------------------------------------------------
template <typename T>
void layernorm_forward(T* y, T* mean, T* inv_std, const T* x, const T* gamma, const T* beta,
                       int64_t R, int64_t C, double epsilon);
template <typename T>
void layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool accumulate);

// --- embedding_ref.cpp -----------------------------------------------------------------------
template <typename T>
void embedding_forward(T* y, const int64_t* ids, const T* W, int64_t n, int64_t V, int64_t E);
template <typename T>
void embedding_backward(T* dW, const T* dy, const int64_t* ids, int64_t n, int64_t V, int64_t E,
                        bool accumulate);
// --- gru_ref.cpp -----------------------------------------------------------------------------
template <typename T>
void gru_forward(T* H, T* Z, const T* x, const T* W, const T* R, const T* b, const T* h0,
                 const LstmShape& s);
template <typename T>
void gru_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL, const T* x,
                  const T* W, const T* R, const T* h0, const T* H, const T* Z,
                  const LstmShape& s, bool accumulate);
// --- simple_rnn_ref.cpp ----------------------------------------------------------------------
template <typename T>
void simple_rnn_forward(T* H, const T* x, const T* W, const T* R, const T* b, const T* h0,
                        const LstmShape& s);
template <typename T>
void simple_rnn_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL,
                         const T* x, const T* W, const T* R, const T* h0, const T* H,
                         const LstmShape& s, bool accumulate);

}  // namespace ref
}  // namespace dlfast
