// dlfast kernel dispatch: one table of function pointers per dtype, filled once at import
// from the CPU's features (or from DLFAST_CPU_CAPABILITY, which may only force a lower path).
//
// Dimension letters used across csrc/: N batch, D in-features, U units (out-features),
// M N K for GEMM (C is M x N, the reduction is K), C classes for losses.
// Argument order everywhere: outputs first, then inputs, then weights, then sizes (llm.c's).
#pragma once
#include <cstdint>

namespace dlfast {

// The activations and the losses, each named once: the enums below and the Python
// dictionaries dlfast._core.ACTIVATIONS / LOSSES (name -> code, in list order) are made from
// these lists, so a new entry reaches Python with nothing else to edit.
// leaky_relu: y = x > 0 ? x : slope*x, its slope an argument of the element-wise activation
// kernels (activation_forward/backward); the fused Dense/Conv2D kernels do not take it.
#define DLFAST_ACTIVATIONS(X) X(linear) X(relu) X(sigmoid) X(tanh) X(softmax) X(leaky_relu)
#define DLFAST_LOSSES(X)                                                                    \
  X(mse) X(binary_crossentropy) X(categorical_crossentropy) X(sparse_categorical_crossentropy) \
  X(mae) X(huber) X(kl_divergence)
#define DLFAST_ENUMERATOR(name) name,
enum class Activation : int { DLFAST_ACTIVATIONS(DLFAST_ENUMERATOR) };
enum class Loss : int { DLFAST_LOSSES(DLFAST_ENUMERATOR) };
#undef DLFAST_ENUMERATOR
#define DLFAST_NAME(name) #name,
inline constexpr const char* kActivationNames[] = {DLFAST_ACTIVATIONS(DLFAST_NAME)};
inline constexpr const char* kLossNames[] = {DLFAST_LOSSES(DLFAST_NAME)};
#undef DLFAST_NAME
inline constexpr int kActivationCount = int(sizeof(kActivationNames) / sizeof(const char*));
inline constexpr int kLossCount = int(sizeof(kLossNames) / sizeof(const char*));

// 2-D convolution on NHWC input with an HWIO kernel (TensorFlow/Keras layouts):
// x[N,H,W,C], w[R,S,C,K], b[K], y[N,P,Q,K]. Output pixel (p,q) reads input rows
// p*stride_h - pad_top + r*dil_h (r < R) and columns q*stride_w - pad_left + s*dil_w (s < S);
// reads outside the input are zeros. The bindings derive P, Q and the pads from 'valid'/'same'.
struct Conv2dShape {
  int64_t N, H, W, C;
  int64_t R, S, K;
  int64_t P, Q;
  int64_t stride_h, stride_w, dil_h, dil_w;
  int64_t pad_top, pad_left;
};

// The strategy conv2d_forward and conv2d_backward take for a shape; csrc/cpu/conv_forward.cpp
// and conv_backward.cpp say when and why. The bindings name them (conv2d_paths) in this order.
// empty: no output pixel or filter; pointwise: 1x1 stride 1 (or no input channel), plain GEMMs
// on x; direct: register tiles reading x in place; packed: im2col into the GEMM's packed A.
enum class ConvForwardPath : int { empty, pointwise, direct, packed };
// dx: none (not asked for), empty, pointwise, by_forward (a forward convolution of dz with the
// flipped kernel), col2im (dcol = dz W^T scattered). dw: empty, pointwise, in_place (x read in
// place by the micro-kernel), im2col (col(x)^T dz by gemm()).
enum class ConvDxPath : int { none, empty, pointwise, by_forward, col2im };
enum class ConvDwPath : int { empty, pointwise, in_place, im2col };
struct ConvBackwardPaths {
  ConvDxPath dx;
  ConvDwPath dw;
};

// 2-D pooling on NHWC input: x[N,H,W,C] -> y[N,P,Q,C], window R x S, same index arithmetic as
// Conv2dShape (no dilation). Max pooling pads with -inf; average pooling divides by the number
// of window cells inside the input (padding excluded, as TensorFlow).
struct Pool2dShape {
  int64_t N, H, W, C;
  int64_t R, S;
  int64_t P, Q;
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left;
};

// LSTM over a sequence: x[N,L,D] (batch, time steps, features), U units, G = 4U gate columns in
// Keras's order i, f, c~, o: kernel W[D,G], recurrent kernel R[U,G], bias b[G]. The GRU and
// the SimpleRNN take the same four sizes (G is 3U for the GRU).
struct LstmShape {
  int64_t N, L, D, U;
};

// Nearest-neighbour upsampling on NHWC (Keras's UpSampling2D): x[N,H,W,C] ->
// y[N, H*size_h, W*size_w, C], y[n, h*size_h + i, w*size_w + j, c] = x[n, h, w, c].
struct Upsample2dShape {
  int64_t N, H, W, C;
  int64_t size_h, size_w;
};

// Zero padding on NHWC (Keras's ZeroPadding2D): x[N,H,W,C] -> y[N,P,Q,C] with
// P = pad_top + H + pad_bottom, Q = pad_left + W + pad_right; x sits at (pad_top, pad_left),
// zeros around it. Pads are >= 0.
struct Pad2dShape {
  int64_t N, H, W, C;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
};

template <typename T>
struct KernelTable {
  // C[M,N] (= or +=) op(A)[M,K] . op(B)[K,N], then + bias[N] on every row, then ReLU if asked.
  // op(A) = A (row-major, lda) or A^T when trans_a (A stored K x M); likewise B.
  void (*gemm)(T* C, const T* A, const T* B, const T* bias, int64_t M, int64_t N, int64_t K,
               int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b,
               bool accumulate, bool relu);
  // y[N,U] = act(x[N,D] . W[D,U] + b[U]); b may be null.
  void (*dense_forward)(T* y, const T* x, const T* W, const T* b, int64_t N, int64_t D,
                        int64_t U, Activation act);
  // dz = dy * act'(y); dW[D,U] += x^T dz; db[U] += colsum(dz); dx[N,D] = dz W^T.
  // With accumulate false the weight gradients are overwritten (=) instead (a training step
  // that would otherwise zero them first). dx and db may be null; y is the forward output.
  void (*dense_backward)(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, const T* y,
                         int64_t N, int64_t D, int64_t U, Activation act, bool accumulate);
  // y[R,C] = act(x[R,C]) (y may alias x); softmax is over each row; `slope` is leaky_relu's
  // negative slope (>= 0; unused by the other activations).
  void (*activation_forward)(T* y, const T* x, int64_t R, int64_t C, Activation act,
                             double slope);
  // dx[R,C] = dy * act'(y), given the forward output y (dx may alias dy); leaky_relu:
  // dy * (y > 0 ? 1 : slope), which needs slope >= 0 (then y > 0 exactly where x > 0).
  void (*activation_backward)(T* dx, const T* dy, const T* y, int64_t R, int64_t C,
                              Activation act, double slope);
  // Mean loss over the batch (Keras's sum_over_batch_size); grad[N,C] = d loss / d y_pred
  // (or d loss / d logits when from_logits). target is [N,C], or labels[N] for the sparse loss.
  // delta: Huber's threshold (the other losses ignore it).
  double (*loss_forward_backward)(T* grad, const T* y_pred, const T* target,
                                  const int64_t* labels, int64_t N, int64_t C, Loss loss,
                                  bool from_logits, double delta);
  // Keras SGD on n parameters: w -= lr*wd*w (decoupled decay, when wd != 0), then
  // plain: w -= lr*g; momentum: v = m*v - lr*g, w += v (Nesterov: w += m*v - lr*g).
  void (*sgd_update)(T* w, T* v, const T* g, int64_t n, T lr, T momentum, bool nesterov,
                     T weight_decay);
  // Keras 3's Adam, Adamax and Adadelta on n parameters, in place, at step t = `step` (1 for
  // the first update). Each first applies the decoupled weight decay w -= lr*wd*w, then:
  // Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
  //       w -= alpha*m/(sqrt(v) + eps), alpha = lr*sqrt(1 - b2^t)/(1 - b1^t).
  void (*adam_update)(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                      double beta_2, double epsilon, double weight_decay, int64_t step);
  // Adamax: m += (g - m)(1 - b1); u = max(b2*u, |g|); w -= lr*m/((1 - b1^t)(u + eps)).
  void (*adamax_update)(T* w, T* m, T* u, const T* g, int64_t n, double lr, double beta_1,
                        double beta_2, double epsilon, double weight_decay, int64_t step);
  // Adadelta: a = rho*a + (1 - rho)g^2; delta = -sqrt(d + eps)*g/sqrt(a + eps);
  //           d = rho*d + (1 - rho)delta^2; w += lr*delta.
  void (*adadelta_update)(T* w, T* acc_grad, T* acc_delta, const T* g, int64_t n, double lr,
                          double rho, double epsilon, double weight_decay);
  // SGD-G2 (Ayadi & Turinici, arXiv 2002.09304) in three passes around the caller's second
  // gradient evaluation:
  // probe: saved = g; w -= h*g (w is now the probe point theta - h*g).
  void (*sgdg2_probe)(T* w, T* saved, const T* g, int64_t n, double h);
  // dot[0] += <g - p, g>; dot[1] += |g - p|^2, accumulated in double.
  void (*sgdg2_dots)(double* dot, const T* g, const T* p, int64_t n);
  // step: from the probe point, w = theta*(1 - h_new*wd) - h_new*saved, theta = w + h_probe*saved.
  void (*sgdg2_step)(T* w, const T* saved, int64_t n, double h_probe, double h_new,
                     double weight_decay);

  // y = act(conv2d(x, w) + b); b may be null.
  void (*conv2d_forward)(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                         Activation act);
  // dz = dy * act'(y); dw (+= or =) and db (+= or =, may be null) from dz and x;
  // dx (=, may be null) from dz and w. y is the forward output (unused for linear).
  void (*conv2d_backward)(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                          const Conv2dShape& s, Activation act, bool accumulate);
  void (*maxpool2d_forward)(T* y, const T* x, const Pool2dShape& s);
  // dx (=) routes each dy to the (first) max of its window, recomputed from x.
  void (*maxpool2d_backward)(T* dx, const T* dy, const T* x, const Pool2dShape& s);
  void (*avgpool2d_forward)(T* y, const T* x, const Pool2dShape& s);
  void (*avgpool2d_backward)(T* dx, const T* dy, const Pool2dShape& s);

  // Every step of an LSTM: H[N,L,U] (h_t), C[N,L,U] (c_t) and Z[N,L,G] (the activated gates
  // i, f, c~, o, kept for backward). b, h0[N,U], c0[N,U] may be null (zeros).
  void (*lstm_forward)(T* H, T* C, T* Z, const T* x, const T* W, const T* R, const T* b,
                       const T* h0, const T* c0, const LstmShape& s);
  // Backward through time from dH[N,L,U] (gradient of every h_t; null: none) plus dhL and dcL
  // [N,U] (gradients of the last h and c; null: none), given the forward's H, C, Z.
  // dW, dR, db (+= or =, db may be null); dx (=), dh0, dc0 (=) may be null.
  void (*lstm_backward)(T* dx, T* dW, T* dR, T* db, T* dh0, T* dc0, const T* dH, const T* dhL,
                        const T* dcL, const T* x, const T* W, const T* R, const T* h0,
                        const T* c0, const T* H, const T* C, const T* Z, const LstmShape& s,
                        bool accumulate);

  // Batch normalization over the last axis, x/y [R,C] (R = N or N*H*W rows, C channels).
  // Training: batch mean and biased variance, moving_* = moving_*·momentum + batch·(1−momentum);
  // inference: the moving statistics. y (=) = (x − mean)·inv_std·gamma + beta (gamma, beta
  // may be null); mean[C], inv_std[C] (=) are the statistics used, kept for backward.
  void (*batchnorm_forward)(T* y, T* mean, T* inv_std, T* moving_mean, T* moving_var,
                            const T* x, const T* gamma, const T* beta, int64_t R, int64_t C,
                            double momentum, double epsilon, bool training);
  // dbeta (+= or =) colsum(dy), dgamma (+= or =) colsum(dy·xhat); dx (=) through the batch
  // statistics in training, gamma·inv_std·dy in inference. dx, dgamma, dbeta may be null.
  void (*batchnorm_backward)(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                             const T* gamma, const T* mean, const T* inv_std, int64_t R,
                             int64_t C, bool training, bool accumulate);
  // Returns l1·Σ|w| + l2·Σw² over w[n] (Keras's L1L2); grad (+=, when not null) its gradient
  // l1·sign(w) + 2·l2·w.
  double (*regularizer_penalty)(T* grad, const T* w, int64_t n, double l1, double l2);

  // Keras 3's RMSprop on n parameters, in place (decoupled weight decay first, as above):
  // v = rho*v + (1 - rho)g^2; centered: a = rho*a + (1 - rho)g, d = v - a^2 + eps, else
  // d = v + eps; inc = lr*g/sqrt(d); momentum: m = momentum*m + inc, w -= m; else w -= inc.
  // m is used only when momentum != 0, a only when centered (either may be null otherwise).
  void (*rmsprop_update)(T* w, T* v, T* m, T* a, const T* g, int64_t n, double lr, double rho,
                         double momentum, double epsilon, bool centered, double weight_decay);
  // Keras 3's Nadam at step t; u_product = u_1...u_t with u_s = b1(1 - 0.5*0.96^s):
  // m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
  // w -= lr*(u_{t+1} m/(1 - u_product u_{t+1}) + (1 - u_t) g/(1 - u_product))
  //      / (sqrt(v/(1 - b2^t)) + eps).
  void (*nadam_update)(T* w, T* m, T* v, const T* g, int64_t n, double lr, double beta_1,
                       double beta_2, double epsilon, double weight_decay, int64_t step,
                       double u_product);
  // Nearest-neighbour upsampling (Upsample2dShape): y (=) repeats each x cell over a
  // size_h x size_w block.
  void (*upsampling2d_forward)(T* y, const T* x, const Upsample2dShape& s);
  // dx[n,h,w,c] (=) = sum over its block of dy[n, h*size_h + i, w*size_w + j, c], summed in
  // (i, j) order.
  void (*upsampling2d_backward)(T* dx, const T* dy, const Upsample2dShape& s);
  // Zero padding (Pad2dShape): y (=) is x framed by zeros.
  void (*zeropadding2d_forward)(T* y, const T* x, const Pad2dShape& s);
  // dx (=) is the H x W window of dy at (pad_top, pad_left) (the padding's gradient is dropped).
  void (*zeropadding2d_backward)(T* dx, const T* dy, const Pad2dShape& s);
  // Transposed convolution (Keras's Conv2DTranspose), described by the forward convolution
  // whose data gradient it is: x[N,P,Q,K] (that convolution's output shape), w[R,S,C,K]
  // (Keras's (kh, kw, filters, in_channels)), b[C] (may be null) -> y[N,H,W,C] (=).
  void (*conv2d_transpose_forward)(T* y, const T* x, const T* w, const T* b,
                                   const Conv2dShape& s, Activation act);
  // dz = dy * act'(y); dw (+= or =) and db (+= or =, may be null) from dz and x; dx (=, may
  // be null) = conv2d_forward(dz, w). y is the forward output (unused for linear).
  void (*conv2d_transpose_backward)(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                                    const T* y, const Conv2dShape& s, Activation act,
                                    bool accumulate);
  // Layer normalization over the last axis of x/y [R,C] (R rows: every index but the last;
  // Keras's LayerNormalization(axis=-1)): per row, mean and biased variance over the C
  // features, y (=) = (x − mean)·inv_std·gamma + beta with inv_std = 1/sqrt(var + epsilon)
  // (gamma, beta may be null); mean[R], inv_std[R] (=) kept for backward.
  void (*layernorm_forward)(T* y, T* mean, T* inv_std, const T* x, const T* gamma,
                            const T* beta, int64_t R, int64_t C, double epsilon);
  // dx (=) through the row statistics; dgamma (+= or =) colsum(dy·xhat), dbeta (+= or =)
  // colsum(dy). dx, dgamma, dbeta may be null; gamma null means 1.
  void (*layernorm_backward)(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                             const T* gamma, const T* mean, const T* inv_std, int64_t R,
                             int64_t C, bool accumulate);
  // Embedding lookup (Keras's Embedding): y[n,E] (=) rows ids[n] of the table W[V,E]. Every
  // id is in [0, V) (the bindings check it before the kernel runs).
  void (*embedding_forward)(T* y, const int64_t* ids, const T* W, int64_t n, int64_t V,
                            int64_t E);
  // dW[V,E] (+= or =) the scatter-add of the rows of dy[n,E] by id (no one-hot), each row of
  // dW summing its ids in order, whatever the thread count.
  void (*embedding_backward)(T* dW, const T* dy, const int64_t* ids, int64_t n, int64_t V,
                             int64_t E, bool accumulate);
  // GRU (Keras 3, reset_after=True) over a sequence, LstmShape's sizes, G = 3U gate columns in
  // Keras's order z, r, h~: kernel W[D,G], recurrent kernel R[U,G], bias b[2,G] (input bias
  // over recurrent bias; may be null). H[N,L,U] (=) every h_t; Z[N,L,4U] (=) per step
  // [z, r, h~, h_{t-1} R_h + b_rec_h], kept for backward. h0[N,U] may be null (zeros).
  void (*gru_forward)(T* H, T* Z, const T* x, const T* W, const T* R, const T* b, const T* h0,
                      const LstmShape& s);
  // Backward through time from dH[N,L,U] (null: none) plus dhL[N,U] (the last h's; null:
  // none), given the forward's H and Z. dW, dR, db[2,G] (+= or =, db may be null); dx (=) and
  // dh0 (=) may be null.
  void (*gru_backward)(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL,
                       const T* x, const T* W, const T* R, const T* h0, const T* H, const T* Z,
                       const LstmShape& s, bool accumulate);
  // SimpleRNN (Keras's, activation tanh) over a sequence, LstmShape's sizes: h_t =
  // tanh(x_t W + h_{t-1} R + b), kernel W[D,U], recurrent kernel R[U,U], bias b[U] (may be
  // null). H[N,L,U] (=) every h_t; h0[N,U] may be null (zeros).
  void (*simple_rnn_forward)(T* H, const T* x, const T* W, const T* R, const T* b,
                             const T* h0, const LstmShape& s);
  // Backward through time from dH[N,L,U] and dhL[N,U] (either null: none), given the
  // forward's H. dW, dR, db (+= or =, db may be null); dx (=) and dh0 (=) may be null.
  void (*simple_rnn_backward)(T* dx, T* dW, T* dR, T* db, T* dh0, const T* dH, const T* dhL,
                              const T* x, const T* W, const T* R, const T* h0, const T* H,
                              const LstmShape& s, bool accumulate);
};

// The paths conv2d_forward and conv2d_backward take for s on this ISA (the choice they make
// themselves; the tiles differ per ISA); need_dx: dx is asked for (else dx is none). Not
// kernels, so apart from KernelTable (csrc/ref has no paths): the tests read them through
// dlfast._core.conv2d_paths.
template <typename T>
struct ConvPathTable {
  ConvForwardPath (*forward)(const Conv2dShape& s);
  ConvBackwardPaths (*backward)(const Conv2dShape& s, bool need_dx);
};

// Every entry of KernelTable by name. dispatch.cpp fills the table from this list, field by
// name (so two entries cannot be swapped), and a static_assert there fails the build when the
// struct has an entry the list lacks. Each name is also in dlfast._core.KERNELS (the tests
// check that every kernel has its reference in csrc/ref).
#define DLFAST_KERNELS(X)                                                                       \
  X(gemm) X(dense_forward) X(dense_backward) X(activation_forward) X(activation_backward)      \
  X(loss_forward_backward) X(sgd_update) X(adam_update) X(adamax_update) X(adadelta_update)    \
  X(sgdg2_probe) X(sgdg2_dots) X(sgdg2_step) X(conv2d_forward) X(conv2d_backward)             \
  X(maxpool2d_forward) X(maxpool2d_backward) X(avgpool2d_forward) X(avgpool2d_backward)       \
  X(lstm_forward) X(lstm_backward) X(batchnorm_forward) X(batchnorm_backward)                 \
  X(regularizer_penalty) X(rmsprop_update) X(nadam_update) X(upsampling2d_forward)            \
  X(upsampling2d_backward) X(zeropadding2d_forward) X(zeropadding2d_backward)                 \
  X(conv2d_transpose_forward) X(conv2d_transpose_backward) X(layernorm_forward)             \
  X(layernorm_backward) X(embedding_forward) X(embedding_backward) X(gru_forward)             \
  X(gru_backward) X(simple_rnn_forward) X(simple_rnn_backward)

template <typename T>
const KernelTable<T>& kernels();
template <typename T>
const ConvPathTable<T>& conv_paths();

// The instruction set whose kernels are in use ("avx512", "avx2" or "generic"),
// and the best one this CPU supports.
const char* cpu_capability();
const char* cpu_capability_supported();
// Select a path by name; returns false (and changes nothing) if the CPU cannot run it.
bool set_cpu_capability(const char* name);

}  // namespace dlfast
