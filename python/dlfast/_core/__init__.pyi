"""
dlfast C++ kernels (floor 1) behind pybind11 (floor 2).
"""
from __future__ import annotations
import collections.abc
import typing
from . import ref
__all__: list[str] = ['ACTIVATIONS', 'KERNELS', 'LOSSES', 'activation_backward', 'activation_forward', 'adadelta_update', 'adam_update', 'adamax_update', 'avgpool2d_backward', 'avgpool2d_forward', 'batchnorm_backward', 'batchnorm_forward', 'build_info', 'conv2d_backward', 'conv2d_forward', 'conv2d_path_names', 'conv2d_paths', 'conv2d_transpose_backward', 'conv2d_transpose_forward', 'cpu_capability', 'dense_backward', 'dense_forward', 'embedding_backward', 'embedding_forward', 'gemm', 'get_num_threads', 'gru_backward', 'gru_forward', 'layernorm_backward', 'layernorm_forward', 'loss', 'lstm_backward', 'lstm_forward', 'maxpool2d_backward', 'maxpool2d_forward', 'nadam_update', 'ref', 'reference_gemm', 'regularizer_penalty', 'rmsprop_update', 'set_cpu_capability', 'set_num_threads', 'sgd_update', 'sgdg2_dots', 'sgdg2_probe', 'sgdg2_step', 'simple_rnn_backward', 'simple_rnn_forward', 'upsampling2d_backward', 'upsampling2d_forward', 'window_axis', 'zeropadding2d_backward', 'zeropadding2d_forward']
def activation_backward(dy: typing.Any, y: typing.Any, activation: typing.SupportsInt | typing.SupportsIndex, negative_slope: typing.SupportsFloat | typing.SupportsIndex = 0.2) -> typing.Any:
    """
    dx = dy * act'(y), from the forward output y (leaky_relu: dy * (y > 0 ? 1 : negative_slope)).
    """
def activation_forward(x: typing.Any, activation: typing.SupportsInt | typing.SupportsIndex, negative_slope: typing.SupportsFloat | typing.SupportsIndex = 0.2) -> typing.Any:
    """
    y = act(x); activation is a code of ACTIVATIONS (softmax over the last axis; leaky_relu is x > 0 ? x : negative_slope * x, Keras's default slope 0.2).
    """
def adadelta_update(weights: list, grads: typing.Any, accumulated_grads: typing.Any, accumulated_delta_vars: typing.Any, learning_rate: typing.SupportsFloat | typing.SupportsIndex, rho: typing.SupportsFloat | typing.SupportsIndex, epsilon: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Keras Adadelta over parallel lists of arrays, in place.
    """
def adam_update(weights: list, grads: typing.Any, momentums: typing.Any, velocities: typing.Any, learning_rate: typing.SupportsFloat | typing.SupportsIndex, beta_1: typing.SupportsFloat | typing.SupportsIndex, beta_2: typing.SupportsFloat | typing.SupportsIndex, epsilon: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Keras Adam (amsgrad=False) over parallel lists of arrays, in place; step is 1-based.
    """
def adamax_update(weights: list, grads: typing.Any, momentums: typing.Any, norms: typing.Any, learning_rate: typing.SupportsFloat | typing.SupportsIndex, beta_1: typing.SupportsFloat | typing.SupportsIndex, beta_2: typing.SupportsFloat | typing.SupportsIndex, epsilon: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Keras Adamax over parallel lists of arrays, in place; step is 1-based.
    """
def avgpool2d_backward(dy: typing.Any, input_shape: typing.Any, pool: typing.Any, strides: typing.Any, padding: typing.Any) -> typing.Any:
    """
    dx (input_shape) = each dy / count spread over the input cells of its window.
    """
def avgpool2d_forward(x: typing.Any, pool: typing.Any, strides: typing.Any, padding: typing.Any) -> typing.Any:
    """
    y (N, P, Q, C) = mean over the input cells of each pool window (padding not counted).
    """
def batchnorm_backward(dy: typing.Any, x: typing.Any, gamma: typing.Any, mean: typing.Any, inv_std: typing.Any, training: bool, dgamma: typing.Any, dbeta: typing.Any, need_dx: bool = True, accumulate: bool = True) -> typing.Any:
    """
    Adds (or writes, accumulate=False) dgamma and dbeta (either may be None); returns dx (through the batch statistics when training), or None when need_dx is False.
    """
def batchnorm_forward(x: typing.Any, gamma: typing.Any, beta: typing.Any, moving_mean: typing.Any, moving_variance: typing.Any, momentum: typing.SupportsFloat | typing.SupportsIndex, epsilon: typing.SupportsFloat | typing.SupportsIndex, training: bool) -> typing.Any:
    """
    Batch normalization over x's last axis; returns (y, mean, inv_std). Training uses the batch statistics and updates moving_mean/moving_variance in place; inference uses them. gamma/beta may be None.
    """
def build_info() -> dict:
    ...
def conv2d_backward(dy: typing.Any, x: typing.Any, kernel: typing.Any, y: typing.Any, strides: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], padding: str, dilation: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], activation: typing.SupportsInt | typing.SupportsIndex, dkernel: typing.Any, dbias: typing.Any, need_dx: bool = True, accumulate: bool = True) -> typing.Any:
    """
    Adds the kernel and bias gradients into dkernel and dbias (or writes them when accumulate is False), with dz = dy * act'(y); returns dx (N, H, W, C), or None when need_dx is False.
    """
def conv2d_forward(x: typing.Any, kernel: typing.Any, bias: typing.Any, strides: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], padding: str, dilation: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], activation: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
    """
    y = act(conv2d(x, kernel) + bias): x (N, H, W, C), kernel (R, S, C, K), bias (K,) or None, strides and dilation (h, w), padding 'valid' or 'same' (TensorFlow's), activation a code of ACTIVATIONS but leaky_relu -> y (N, P, Q, K).
    """
def conv2d_path_names() -> dict:
    """
    Every name conv2d_paths can give, per key: {'forward', 'dx', 'dw'} -> tuple.
    """
def conv2d_paths(x_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], kernel_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], strides: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], padding: str, dilation: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], dtype: typing.Any, need_dx: bool = True) -> typing.Any:
    """
    The paths conv2d_forward and conv2d_backward take for these shapes on the active ISA, as the kernels choose them: a dict {'forward', 'dx', 'dw'} of path names (for tests).
    """
def conv2d_transpose_backward(dy: typing.Any, x: typing.Any, kernel: typing.Any, y: typing.Any, strides: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], padding: str, output_padding: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex] | None, dilation: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], activation: typing.SupportsInt | typing.SupportsIndex, dkernel: typing.Any, dbias: typing.Any, need_dx: bool = True, accumulate: bool = True) -> typing.Any:
    """
    Adds the kernel and bias gradients into dkernel and dbias (or writes them when accumulate is False), with dz = dy * act'(y); returns dx (N, h, w, Cin), or None when need_dx is False.
    """
def conv2d_transpose_forward(x: typing.Any, kernel: typing.Any, bias: typing.Any, strides: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], padding: str, output_padding: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex] | None, dilation: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex], activation: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
    """
    y = act(conv2d_transpose(x, kernel) + bias): x (N, h, w, Cin), kernel (kh, kw, F, Cin), bias (F,) or None, strides and dilation (h, w), padding 'valid' or 'same', output_padding (h, w) or None (Keras 3's output size), activation a code of ACTIVATIONS but leaky_relu -> y (N, H, W, F).
    """
def cpu_capability() -> str:
    """
    The kernel path in use: avx512, avx2 or generic.
    """
def dense_backward(dy: typing.Any, x: typing.Any, kernel: typing.Any, y: typing.Any, activation: typing.SupportsInt | typing.SupportsIndex, dkernel: typing.Any, dbias: typing.Any, need_dx: bool = True, accumulate: bool = True) -> typing.Any:
    """
    Adds x.T @ dz into dkernel and colsum(dz) into dbias (dz = dy * act'(y)), or writes them when accumulate is False; returns dx = dz @ kernel.T, or None when need_dx is False.
    """
def dense_forward(x: typing.Any, kernel: typing.Any, bias: typing.Any, activation: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
    """
    y = act(x @ kernel + bias); activation is a code of ACTIVATIONS but leaky_relu.
    """
def embedding_backward(dy: typing.Any, ids: typing.Any, dembeddings: typing.Any, accumulate: bool = True) -> None:
    """
    Scatter-adds the rows of dy (ids.shape + (output_dim,)) into dembeddings by id (accumulate=False: writes, rows no id names become 0). Deterministic.
    """
def embedding_forward(ids: typing.Any, embeddings: typing.Any) -> typing.Any:
    """
    Rows of embeddings (input_dim, output_dim) picked by the integer ids (any shape, each in [0, input_dim)): returns an array of shape ids.shape + (output_dim,).
    """
def gemm(a: typing.Any, b: typing.Any, trans_a: bool = False, trans_b: bool = False, bias: typing.Any = None, relu: bool = False, out: typing.Any = None, accumulate: bool = False) -> typing.Any:
    """
    C = op(a) @ op(b) (+ bias per row, then ReLU when relu=True), written into a new array or into `out` (accumulated into it when accumulate=True). op(x) is x.T when trans_x.
    """
def get_num_threads() -> int:
    ...
def gru_backward(dH: typing.Any, dh_last: typing.Any, x: typing.Any, kernel: typing.Any, recurrent_kernel: typing.Any, h0: typing.Any, H: typing.Any, Z: typing.Any, dkernel: typing.Any, drecurrent_kernel: typing.Any, dbias: typing.Any, need_dx: bool = True, need_dstate: bool = False, accumulate: bool = True) -> typing.Any:
    """
    Backward through time from dH (N, L, U) or None and dh_last (N, U) or None, given the forward's H and Z. Adds (or writes, accumulate=False) the weight gradients into dkernel, drecurrent_kernel, dbias (2, 3U) or None; returns (dx or None, dh0 or None).
    """
def gru_forward(x: typing.Any, kernel: typing.Any, recurrent_kernel: typing.Any, bias: typing.Any, h0: typing.Any) -> typing.Any:
    """
    Every step of a GRU (Keras 3, reset_after=True, gates z, r, h~): x (N, L, D), kernel (D, 3U), recurrent_kernel (U, 3U), bias (2, 3U) or None, h0 (N, U) or None (zeros) -> (H, Z): h_t of every step (N, L, U) and per step [z, r, h~, h R_h + b_rec_h] (N, L, 4U), kept for backward.
    """
def layernorm_backward(dy: typing.Any, x: typing.Any, gamma: typing.Any, mean: typing.Any, inv_std: typing.Any, dgamma: typing.Any, dbeta: typing.Any, need_dx: bool = True, accumulate: bool = True) -> typing.Any:
    """
    Adds (or writes, accumulate=False) dgamma and dbeta (either may be None); returns dx, or None when need_dx is False.
    """
def layernorm_forward(x: typing.Any, gamma: typing.Any, beta: typing.Any, epsilon: typing.SupportsFloat | typing.SupportsIndex = 0.001) -> typing.Any:
    """
    Layer normalization over x's last axis (Keras's LayerNormalization(axis=-1), epsilon 1e-3): gamma, beta (C,) or None; returns (y, mean, inv_std), the statistics of shape x.shape[:-1].
    """
def loss(kind: typing.SupportsInt | typing.SupportsIndex, y_true: typing.Any, y_pred: typing.Any, from_logits: bool = False, want_grad: bool = True, delta: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> tuple:
    """
    (mean loss, d loss / d y_pred or None); kind 0..6 = mse, binary, categorical, sparse categorical cross-entropy, mean absolute error, Huber (threshold delta), KL divergence.
    """
def lstm_backward(dH: typing.Any, dh_last: typing.Any, dc_last: typing.Any, x: typing.Any, kernel: typing.Any, recurrent_kernel: typing.Any, h0: typing.Any, c0: typing.Any, H: typing.Any, C: typing.Any, Z: typing.Any, dkernel: typing.Any, drecurrent_kernel: typing.Any, dbias: typing.Any, need_dx: bool = True, need_dstate: bool = False, accumulate: bool = True) -> typing.Any:
    """
    Backward through time from dH (N, L, U) or None, dh_last and dc_last (N, U) or None, given the forward's H, C, Z. Adds (or writes, accumulate=False) the weight gradients into dkernel, drecurrent_kernel, dbias; returns (dx or None, dh0 or None, dc0 or None).
    """
def lstm_forward(x: typing.Any, kernel: typing.Any, recurrent_kernel: typing.Any, bias: typing.Any, h0: typing.Any, c0: typing.Any) -> typing.Any:
    """
    Every step of an LSTM (Keras gate order i, f, c~, o): x (N, L, D), kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,) or None, h0 and c0 (N, U) or None (zeros) -> (H, C, Z): h_t and c_t of every step (N, L, U) and the activated gates (N, L, 4U).
    """
def maxpool2d_backward(dy: typing.Any, x: typing.Any, pool: typing.Any, strides: typing.Any, padding: typing.Any) -> typing.Any:
    """
    dx (N, H, W, C): each dy goes to the first maximum of its window (recomputed from x), summed where windows overlap.
    """
def maxpool2d_forward(x: typing.Any, pool: typing.Any, strides: typing.Any, padding: typing.Any) -> typing.Any:
    """
    y (N, P, Q, C) = max over each pool window of x (N, H, W, C); padding is 'valid' or 'same' (TensorFlow's arithmetic, padded with -inf).
    """
def nadam_update(weights: list, grads: typing.Any, momentums: typing.Any, velocities: typing.Any, learning_rate: typing.SupportsFloat | typing.SupportsIndex, beta_1: typing.SupportsFloat | typing.SupportsIndex, beta_2: typing.SupportsFloat | typing.SupportsIndex, epsilon: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex, u_product: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Keras Nadam over parallel lists of arrays, in place; step is 1-based, u_product the momentum-cache product u_1...u_step.
    """
def reference_gemm(a: typing.Any, b: typing.Any, trans_a: bool = False, trans_b: bool = False, bias: typing.Any = None, relu: bool = False, out: typing.Any = None, accumulate: bool = False) -> typing.Any:
    """
    The scalar reference (csrc/ref) of gemm, for tests.
    """
def regularizer_penalty(weight: typing.Any, l1: typing.SupportsFloat | typing.SupportsIndex, l2: typing.SupportsFloat | typing.SupportsIndex, grad: typing.Any = None) -> float:
    """
    Returns l1*sum|w| + l2*sum(w**2); when grad is given, also adds the penalty's gradient l1*sign(w) + 2*l2*w into it, in the same pass.
    """
def rmsprop_update(weights: list, grads: typing.Any, velocities: typing.Any, momentums: typing.Any, average_gradients: typing.Any, learning_rate: typing.SupportsFloat | typing.SupportsIndex, rho: typing.SupportsFloat | typing.SupportsIndex, momentum: typing.SupportsFloat | typing.SupportsIndex, epsilon: typing.SupportsFloat | typing.SupportsIndex, centered: bool, weight_decay: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Keras RMSprop over parallel lists of arrays, in place (momentums used when momentum != 0, average_gradients when centered; None otherwise).
    """
def set_cpu_capability(name: str) -> bool:
    """
    Select a kernel path the CPU supports; False if it cannot.
    """
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def sgd_update(weights: list, grads: typing.Any, velocities: typing.Any, learning_rate: typing.SupportsFloat | typing.SupportsIndex, momentum: typing.SupportsFloat | typing.SupportsIndex, nesterov: bool, weight_decay: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Keras SGD over parallel lists of arrays, in place (velocities used when momentum != 0).
    """
def sgdg2_dots(saved: list, grads: typing.Any) -> tuple:
    """
    SGD-G2: (<g - p, g>, |g - p|^2) in double, g the saved gradients, p the probe's.
    """
def sgdg2_probe(weights: list, grads: typing.Any, saved: typing.Any, step_size: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    SGD-G2 probe: saved = g; w -= h*g, over parallel lists.
    """
def sgdg2_step(weights: list, saved: typing.Any, h_probe: typing.SupportsFloat | typing.SupportsIndex, h_new: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    SGD-G2 step from the probe point: w = (w + h_probe*g)(1 - h_new*wd) - h_new*g.
    """
def simple_rnn_backward(dH: typing.Any, dh_last: typing.Any, x: typing.Any, kernel: typing.Any, recurrent_kernel: typing.Any, h0: typing.Any, H: typing.Any, dkernel: typing.Any, drecurrent_kernel: typing.Any, dbias: typing.Any, need_dx: bool = True, need_dstate: bool = False, accumulate: bool = True) -> typing.Any:
    """
    Backward through time from dH (N, L, U) or None and dh_last (N, U) or None, given the forward's H. Adds (or writes, accumulate=False) the weight gradients into dkernel, drecurrent_kernel, dbias (U,) or None; returns (dx or None, dh0 or None).
    """
def simple_rnn_forward(x: typing.Any, kernel: typing.Any, recurrent_kernel: typing.Any, bias: typing.Any, h0: typing.Any) -> typing.Any:
    """
    Every step of a SimpleRNN (Keras, activation tanh): x (N, L, D), kernel (D, U), recurrent_kernel (U, U), bias (U,) or None, h0 (N, U) or None (zeros) -> H, h_t of every step (N, L, U).
    """
def upsampling2d_backward(dy: typing.Any, size: typing.Any) -> typing.Any:
    """
    dx (N, H, W, C): the sum of dy (N, H*size_h, W*size_w, C) over each block.
    """
def upsampling2d_forward(x: typing.Any, size: typing.Any) -> typing.Any:
    """
    y (N, H*size_h, W*size_w, C): each cell of x (N, H, W, C) repeated over a size_h x size_w block (nearest neighbour); size is a pair (size_h, size_w).
    """
def window_axis(n: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, stride: typing.SupportsInt | typing.SupportsIndex, dilation: typing.SupportsInt | typing.SupportsIndex, padding: str) -> typing.Any:
    """
    (output length, padding before) of a sliding window along one axis, TensorFlow's arithmetic; None when a 'valid' window does not fit.
    """
def zeropadding2d_backward(dy: typing.Any, padding: typing.Any) -> typing.Any:
    """
    dx (N, H, W, C): the interior of dy (N, top + H + bottom, left + W + right, C).
    """
def zeropadding2d_forward(x: typing.Any, padding: typing.Any) -> typing.Any:
    """
    y (N, top + H + bottom, left + W + right, C): x (N, H, W, C) framed by zeros; padding is ((top, bottom), (left, right)).
    """
ACTIVATIONS: dict = {'linear': 0, 'relu': 1, 'sigmoid': 2, 'tanh': 3, 'softmax': 4, 'leaky_relu': 5}
KERNELS: tuple = ('gemm', 'dense_forward', 'dense_backward', 'activation_forward', 'activation_backward', 'loss_forward_backward', 'sgd_update', 'adam_update', 'adamax_update', 'adadelta_update', 'sgdg2_probe', 'sgdg2_dots', 'sgdg2_step', 'conv2d_forward', 'conv2d_backward', 'maxpool2d_forward', 'maxpool2d_backward', 'avgpool2d_forward', 'avgpool2d_backward', 'lstm_forward', 'lstm_backward', 'batchnorm_forward', 'batchnorm_backward', 'regularizer_penalty', 'rmsprop_update', 'nadam_update', 'upsampling2d_forward', 'upsampling2d_backward', 'zeropadding2d_forward', 'zeropadding2d_backward', 'conv2d_transpose_forward', 'conv2d_transpose_backward', 'layernorm_forward', 'layernorm_backward', 'embedding_forward', 'embedding_backward', 'gru_forward', 'gru_backward', 'simple_rnn_forward', 'simple_rnn_backward')
LOSSES: dict = {'mse': 0, 'binary_crossentropy': 1, 'categorical_crossentropy': 2, 'sparse_categorical_crossentropy': 3, 'mae': 4, 'huber': 5, 'kl_divergence': 6}
__version__: str = ''
