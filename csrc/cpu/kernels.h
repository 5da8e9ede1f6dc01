// Declarations of the fast kernels of one instruction set. Every csrc/cpu/*.cpp is compiled
// once per ISA with DLFAST_ISA set to its name (generic, avx2, avx512), so each ISA gets its
// own namespace and symbols; common/dispatch.cpp includes this header once per ISA.
// No include guard on purpose.
#include <cstdint>
#include "common/dispatch.h"

namespace dlfast {
namespace DLFAST_ISA {

template <typename T>
void gemm(T* C, const T* A, const T* B, const T* bias, int64_t M, int64_t N, int64_t K,
          int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b, bool accumulate,
          bool relu);
// C[M,N] (= or +=) A . op(B) (+ bias, ReLU) on the calling thread, with A given already packed:
// K cut in blocks of gemm_k_step<T>(K) columns; block b (kc columns) at Ap + b*kstep*Mpad,
// Mpad = M rounded up to gemm_mr<T>(); in it, MR-row panel p at + p*MR*kc, a(i, k) at
// k*MR + i; rows past M zero.
template <typename T>
void gemm_prepacked_a(T* C, const T* Ap, const T* B, const T* bias, int64_t M, int64_t N,
                      int64_t K, int64_t ldb, int64_t ldc, bool trans_b, bool accumulate,
                      bool relu);
template <typename T>
int gemm_mr();
template <typename T>
int64_t gemm_k_step(int64_t K);
template <typename T>
void dense_forward(T* y, const T* x, const T* W, const T* b, int64_t N, int64_t D, int64_t U,
                   Activation act);
template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, const T* y,
                    int64_t N, int64_t D, int64_t U, Activation act, bool accumulate);
// slope: leaky_relu's negative slope. Dense and conv2d call these for their own activation,
// which is never leaky_relu (the bindings refuse it there), so they leave slope at 0.
template <typename T>
void activation_forward(T* y, const T* x, int64_t R, int64_t C, Activation act,
                        double slope = 0.0);
template <typename T>
void activation_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C, Activation act,
                         double slope = 0.0);
template <typename T>
double loss_forward_backward(T* grad, const T* y_pred, const T* target, const int64_t* labels,
                             int64_t N, int64_t C, Loss loss, bool from_logits, double delta);
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
void sgdg2_probe(T* w, T* saved, const T* g, int64_t n, double h);
template <typename T>
void sgdg2_dots(double* dot, const T* g, const T* p, int64_t n);
template <typename T>
void sgdg2_step(T* w, const T* saved, int64_t n, double h_probe, double h_new,
                double weight_decay);
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    Activation act);
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                     const Conv2dShape& s, Activation act, bool accumulate);
template <typename T>
void maxpool2d_forward(T* y, const T* x, const Pool2dShape& s);
template <typename T>
void maxpool2d_backward(T* dx, const T* dy, const T* x, const Pool2dShape& s);
template <typename T>
void avgpool2d_forward(T* y, const T* x, const Pool2dShape& s);
template <typename T>
void avgpool2d_backward(T* dx, const T* dy, const Pool2dShape& s);
template <typename T>
void batchnorm_forward(T* y, T* mean, T* inv_std, T* moving_mean, T* moving_var, const T* x,
                       const T* gamma, const T* beta, int64_t R, int64_t C, double momentum,
                       double epsilon, bool training);
template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool training,
                        bool accumulate);
template <typename T>
double regularizer_penalty(T* grad, const T* w, int64_t n, double l1, double l2);

template <typename T>
void lstm_forward(T* H, T* C, T* Z, const T* x, const T* W, const T* R, const T* b,
                  const T* h0, const T* c0, const LstmShape& s);
template <typename T>
void lstm_backward(T* dx, T* dW, T* dR, T* db, T* dh0, T* dc0, const T* dH, const T* dhL,
                   const T* dcL, const T* x, const T* W, const T* R, const T* h0, const T* c0,
                   const T* H, const T* C, const T* Z, const LstmShape& s, bool accumulate);

template <typename T>
void rmsprop_update(T* w, T* v, T* m, T* a, const T* g, int64_t n, double lr, double rho,
                    double momentum, double epsilon, bool centered, double weight_decay);
template <typename T>
void nadam_update(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                  double beta_2, double epsilon, double weight_decay, int64_t step,
                  double u_product);
template <typename T>
void upsampling2d_forward(T* y, const T* x, const Upsample2dShape& s);
template <typename T>
void upsampling2d_backward(T* dx, const T* dy, const Upsample2dShape& s);
template <typename T>
void zeropadding2d_forward(T* y, const T* x, const Pad2dShape& s);
template <typename T>
void zeropadding2d_backward(T* dx, const T* dy, const Pad2dShape& s);
// conv_backward.cpp's pieces that conv_transpose.cpp shares: the stride-1 data gradient as a
// forward convolution with the flipped kernel (dx = act(... + b), b may be null), and col2im
// (dx += the windows of dcol's rows, output pixels [m0, m1)).
template <typename T>
void conv2d_dx_by_forward(T* dx, const T* dz, const T* w, const T* b, const Conv2dShape& s,
                          Activation act);
template <typename T>
void conv2d_col2im(T* dx, const T* dcol, const Conv2dShape& s, int64_t m0, int64_t m1);
// The strategy each kernel takes for s, the function it branches on (conv_forward.cpp,
// conv_backward.cpp); need_dx: conv2d_backward is given a dx.
template <typename T>
ConvForwardPath conv2d_forward_path(const Conv2dShape& s);
template <typename T>
ConvBackwardPaths conv2d_backward_paths(const Conv2dShape& s, bool need_dx);
template <typename T>
void conv2d_transpose_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                              Activation act);
template <typename T>
void conv2d_transpose_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const T* y, const Conv2dShape& s, Activation act,
                               bool accumulate);

template <typename T>
void layernorm_forward(T* y, T* mean, T* inv_std, const T* x, const T* gamma, const T* beta,
                       int64_t R, int64_t C, double epsilon);
template <typename T>
void layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* inv_std, int64_t R, int64_t C, bool accumulate);
template <typename T>
void embedding_forward(T* y, const int64_t* ids, const T* W, int64_t n, int64_t V, int64_t E);
template <typename T>
void embedding_backward(T* dW, const T* dy, const int64_t* ids, int64_t n, int64_t V, int64_t E,
                        bool accumulate);
template <typename T>
void gru_forward(T* H, T* Z, const T* x, const T* W, const T* R, const T* b, const T* h0,
                 const LstmShape& s);
template <typename T>
void gru_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL, const T* x,
                  const T* W, const T* R, const T* h0, const T* H, const T* Z,
                  const LstmShape& s, bool accumulate);
template <typename T>
void simple_rnn_forward(T* H, const T* x, const T* W, const T* R, const T* b, const T* h0,
                        const LstmShape& s);
template <typename T>
void simple_rnn_backward(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL,
                         const T* x, const T* W, const T* R, const T* h0, const T* H,
                         const LstmShape& s, bool accumulate);

}  // namespace DLFAST_ISA
}  // namespace dlfast
