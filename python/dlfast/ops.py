"""Kernels on NumPy arrays: thin typed wrappers over the C++ extension ``dlfast._core``.

Every op is a ``<op>_forward`` / ``<op>_backward`` pair. Inputs may be any float32/float64
array (a strided view is copied to a contiguous one first: inputs are only read); anything
else raises TypeError/ValueError naming the argument, what was expected and what came.
Outputs are new arrays; nothing is written into the caller's inputs.
"""

import numpy as np

from . import _arrays, _core

__all__ = [
    "matmul", "matmul_forward", "matmul_backward",
    "dense_forward", "dense_backward",
    "activation_forward", "activation_backward",
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "softmax_forward", "softmax_backward",
    "mse_forward", "mse_backward",
    "binary_crossentropy_forward", "binary_crossentropy_backward",
    "categorical_crossentropy_forward", "categorical_crossentropy_backward",
    "sparse_categorical_crossentropy_forward", "sparse_categorical_crossentropy_backward",
    "sgd_update",
    "lstm_forward", "lstm_backward", "lstm_cell_forward", "lstm_cell_backward",
]

from ._ops_common import (ACTIVATIONS, LEAKY_RELU, LEAKY_RELU_SLOPE, LINEAR, LOSSES,  # noqa: F401
                          _same_dtype, activation_code, as_float_array, conv_output_length, pair,
                          padding_name, split_activation)
from . import _ops_spatial
from ._ops_spatial import *  # noqa: F401,F403  (conv, pooling, resampling: see _ops_spatial)
from ._ops_spatial import output_padding_pair  # noqa: F401  (used by dlfast.layers.conv)
from . import _ops_sequence
from ._ops_sequence import *  # noqa: F401,F403  (layer norm, embedding, GRU: see _ops_sequence)


def matmul(a, b, trans_a=False, trans_b=False):
    """``op(a) @ op(b)`` for 2-D arrays, op(x) = x.T when trans_x; the packed GEMM."""
    a = as_float_array(a, "matmul", "a")
    b = as_float_array(b, "matmul", "b")
    return _core.gemm(a, b, trans_a, trans_b)


matmul_forward = matmul


def matmul_backward(dy, a, b):
    """Gradients of ``y = a @ b``: returns ``(da, db) = (dy @ b.T, a.T @ dy)``."""
    dy = as_float_array(dy, "matmul_backward", "dy")
    a, b = _same_dtype("matmul_backward", dy, a=a, b=b)
    return _core.gemm(dy, b, False, True), _core.gemm(a, dy, True, False)


# --- dense ------------------------------------------------------------------------------

def dense_forward(x, kernel, bias=None, activation="linear"):
    """``y = activation(x @ kernel + bias)``; x (N, D), kernel (D, U), bias (U,)."""
    x = as_float_array(x, "dense_forward", "x")
    kernel, bias = _same_dtype("dense_forward", x, kernel=kernel, bias=bias)
    fused, post = split_activation(activation_code(activation, "dense_forward"))
    y = _core.dense_forward(x, kernel, bias, fused)
    return _core.activation_forward(y, post, LEAKY_RELU_SLOPE) if post else y


def dense_backward(dy, x, kernel, bias=None, activation="linear", y=None):
    """Gradients of ``dense_forward``: returns ``(dx, dkernel, dbias)`` (dbias is None
    without a bias). ``y`` is the forward output; it is recomputed when not given."""
    fn = "dense_backward"
    dy = as_float_array(dy, fn, "dy")
    x, kernel, bias, y = _same_dtype(fn, dy, x=x, kernel=kernel, bias=bias, y=y)
    code, post = split_activation(activation_code(activation, fn))
    if y is None and (code or post):
        y = dense_forward(x, kernel, bias, activation)
    if post:
        dy = _core.activation_backward(dy, y, post, LEAKY_RELU_SLOPE)
    dkernel = np.zeros_like(kernel)
    dbias = None if bias is None else np.zeros_like(bias)
    dx = _core.dense_backward(dy, x, kernel, y, code, dkernel, dbias, True)
    return dx, dkernel, dbias


# --- activations ------------------------------------------------------------------------

def activation_forward(x, activation, negative_slope=LEAKY_RELU_SLOPE):
    """``activation(x)`` element-wise (softmax over the last axis); ``negative_slope`` is
    leaky_relu's (x > 0 ? x : negative_slope * x; finite, >= 0), unused by the others."""
    x = as_float_array(x, "activation_forward", "x")
    return _core.activation_forward(x, activation_code(activation, "activation_forward"),
                                    float(negative_slope))


def activation_backward(dy, y, activation, negative_slope=LEAKY_RELU_SLOPE):
    """``dx = dy * activation'(.)`` from the forward *output* y (softmax: its Jacobian;
    leaky_relu: dy * (y > 0 ? 1 : negative_slope))."""
    dy = as_float_array(dy, "activation_backward", "dy")
    (y,) = _same_dtype("activation_backward", dy, y=y)
    return _core.activation_backward(dy, y, activation_code(activation, "activation_backward"),
                                     float(negative_slope))


def _activation_pair(name):
    def forward(x):
        return activation_forward(x, name)

    def backward(dy, y):
        return activation_backward(dy, y, name)

    forward.__name__, backward.__name__ = f"{name}_forward", f"{name}_backward"
    forward.__doc__ = f"{name}(x), element-wise" + (" (over the last axis)" if name == "softmax" else "")
    backward.__doc__ = f"Gradient of {name}_forward given dy and the forward output y."
    return forward, backward


relu_forward, relu_backward = _activation_pair("relu")
sigmoid_forward, sigmoid_backward = _activation_pair("sigmoid")
tanh_forward, tanh_backward = _activation_pair("tanh")
softmax_forward, softmax_backward = _activation_pair("softmax")

__all__ += ["leaky_relu_forward", "leaky_relu_backward"]


def leaky_relu_forward(x, negative_slope=LEAKY_RELU_SLOPE):
    """``x > 0 ? x : negative_slope * x`` element-wise (Keras's leaky_relu; NaN stays NaN)."""
    return activation_forward(x, "leaky_relu", negative_slope)


def leaky_relu_backward(dy, y, negative_slope=LEAKY_RELU_SLOPE):
    """Gradient of leaky_relu_forward given dy and the forward output y:
    ``dy * (y > 0 ? 1 : negative_slope)``."""
    return activation_backward(dy, y, "leaky_relu", negative_slope)


# --- losses -----------------------------------------------------------------------------

def labels_array(y_true, fn, n):
    """Sparse class labels as a contiguous int64 vector of length n."""
    y = np.asarray(_arrays.from_dlpack(y_true, f"{fn}: labels"))
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(np.isfinite(y))):
        raise TypeError(f"{fn}: sparse labels must be integers, got dtype {y.dtype}")
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{fn}: expected {n} class labels (shape ({n},)), got shape {y.shape}")
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        raise ValueError(f"{fn}: sparse labels must be whole numbers")
    return np.ascontiguousarray(y, dtype=np.int64)


def matching_target_shape(fn, true_shape, pred_shape, what="y_true"):
    """Keras's rule for a loss's target: y_true must have y_pred's shape, except that a
    trailing axis of 1 on either one is dropped ((N,) labels against an (N, 1) output, and
    back). Returns the shape y_true is read as (y_pred's); anything else is a ValueError naming
    both shapes (never a reshape that pairs other elements)."""
    true_shape, pred_shape = tuple(true_shape), tuple(pred_shape)
    if (true_shape == pred_shape
            or (len(true_shape) == len(pred_shape) + 1 and true_shape == pred_shape + (1,))
            or (len(pred_shape) == len(true_shape) + 1 and pred_shape == true_shape + (1,))):
        return pred_shape
    raise ValueError(f"{fn}: '{what}' must have the shape of 'y_pred' {pred_shape}, got "
                     f"{true_shape} (Keras's rule: equal shapes, or a trailing axis of 1 more "
                     f"or less)")


def loss_value_and_grad(loss, y_true, y_pred, from_logits=False, want_grad=True, delta=1.0):
    """(mean loss, d loss / d y_pred) of a named loss, in one kernel call (delta: Huber's).
    An empty y_pred is a ValueError: the mean over no values is undefined (NumPy: NaN)."""
    fn = loss
    y_pred = as_float_array(y_pred, fn, "y_pred")
    if y_pred.ndim == 0:
        raise ValueError(f"{fn}: 'y_pred' must have a batch axis, got a scalar")
    if y_pred.size == 0:
        raise ValueError(f"{fn}: 'y_pred' is empty (shape {y_pred.shape}): the mean loss over "
                         f"no values is undefined")
    if loss == "sparse_categorical_crossentropy":
        if y_pred.ndim != 2:
            raise ValueError(f"{fn}: 'y_pred' must be (batch, classes), got shape {y_pred.shape}")
        target = labels_array(y_true, fn, y_pred.shape[0])
    else:
        target = as_float_array(y_true, fn, "y_true", y_pred.dtype)
        target = target.reshape(matching_target_shape(fn, target.shape, y_pred.shape))
    return _core.loss(LOSSES[loss], target, y_pred, from_logits, want_grad, float(delta))


def _loss_pair(name, has_logits):
    if has_logits:
        def forward(y_true, y_pred, from_logits=False):
            return loss_value_and_grad(name, y_true, y_pred, from_logits, False)[0]

        def backward(y_true, y_pred, from_logits=False):
            return loss_value_and_grad(name, y_true, y_pred, from_logits, True)[1]
    else:
        def forward(y_true, y_pred):
            return loss_value_and_grad(name, y_true, y_pred, False, False)[0]

        def backward(y_true, y_pred):
            return loss_value_and_grad(name, y_true, y_pred, False, True)[1]
    forward.__name__, backward.__name__ = f"{name}_forward", f"{name}_backward"
    forward.__doc__ = f"Mean {name} over the batch (Keras's reduction)."
    backward.__doc__ = f"Gradient of {name}_forward with respect to y_pred (logits when from_logits)."
    return forward, backward


mse_forward, mse_backward = _loss_pair("mse", False)
binary_crossentropy_forward, binary_crossentropy_backward = _loss_pair("binary_crossentropy", True)
categorical_crossentropy_forward, categorical_crossentropy_backward = _loss_pair(
    "categorical_crossentropy", True)
sparse_categorical_crossentropy_forward, sparse_categorical_crossentropy_backward = _loss_pair(
    "sparse_categorical_crossentropy", True)

__all__ += ["mae_forward", "mae_backward", "huber_forward", "huber_backward",
            "kl_divergence_forward", "kl_divergence_backward"]
mae_forward, mae_backward = _loss_pair("mae", False)
kl_divergence_forward, kl_divergence_backward = _loss_pair("kl_divergence", False)


def huber_forward(y_true, y_pred, delta=1.0):
    """Mean Huber loss (threshold delta) over the last axis and the batch (Keras's reduction)."""
    return loss_value_and_grad("huber", y_true, y_pred, False, False, delta)[0]


def huber_backward(y_true, y_pred, delta=1.0):
    """Gradient of huber_forward with respect to y_pred."""
    return loss_value_and_grad("huber", y_true, y_pred, False, True, delta)[1]


# --- optimizer updates ------------------------------------------------------------------

def sgd_update(weights, grads, velocities=None, learning_rate=0.01, momentum=0.0,
               nesterov=False, weight_decay=0.0):
    """Keras SGD step over parallel lists of arrays, in place (one C++ call). The weights and
    velocities must be writable C-contiguous float arrays: they are updated where they are."""
    _core.sgd_update(list(weights), list(grads), None if velocities is None else list(velocities),
                     float(learning_rate), float(momentum), bool(nesterov),
                     float(weight_decay or 0.0))


__all__ += ["adam_update", "adamax_update", "adadelta_update"]


def adam_update(weights, grads, momentums, velocities, learning_rate=0.001, beta_1=0.9,
                beta_2=0.999, epsilon=1e-7, weight_decay=0.0, step=1):
    """Keras Adam step (amsgrad=False) over parallel lists, in place (one C++ call); ``step``
    is the 1-based count of this update (the bias correction's t)."""
    _core.adam_update(list(weights), list(grads), list(momentums), list(velocities),
                      float(learning_rate), float(beta_1), float(beta_2), float(epsilon),
                      float(weight_decay or 0.0), int(step))


def adamax_update(weights, grads, momentums, norms, learning_rate=0.001, beta_1=0.9,
                  beta_2=0.999, epsilon=1e-7, weight_decay=0.0, step=1):
    """Keras Adamax step over parallel lists, in place (one C++ call); ``step`` is 1-based."""
    _core.adamax_update(list(weights), list(grads), list(momentums), list(norms),
                        float(learning_rate), float(beta_1), float(beta_2), float(epsilon),
                        float(weight_decay or 0.0), int(step))


def adadelta_update(weights, grads, accumulated_grads, accumulated_delta_vars,
                    learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=0.0):
    """Keras Adadelta step over parallel lists, in place (one C++ call)."""
    _core.adadelta_update(list(weights), list(grads), list(accumulated_grads),
                          list(accumulated_delta_vars), float(learning_rate), float(rho),
                          float(epsilon), float(weight_decay or 0.0))


__all__ += ["rmsprop_update", "nadam_update"]


def rmsprop_update(weights, grads, velocities, momentums=None, average_gradients=None,
                   learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                   weight_decay=0.0):
    """Keras RMSprop step over parallel lists, in place (one C++ call); ``momentums`` are used
    when momentum != 0 and ``average_gradients`` when centered."""
    _core.rmsprop_update(list(weights), list(grads), list(velocities),
                         None if momentums is None else list(momentums),
                         None if average_gradients is None else list(average_gradients),
                         float(learning_rate), float(rho), float(momentum), float(epsilon),
                         bool(centered), float(weight_decay or 0.0))


def nadam_update(weights, grads, momentums, velocities, learning_rate=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, weight_decay=0.0, *, step, u_product):
    """Keras Nadam step over parallel lists, in place (one C++ call); ``step`` is the 1-based
    count of this update and ``u_product`` the momentum-cache product u_1...u_step (Keras's
    ``_u_product`` once this step has multiplied its u in), u_s = beta_1 (1 - 0.5 * 0.96^s)."""
    _core.nadam_update(list(weights), list(grads), list(momentums), list(velocities),
                       float(learning_rate), float(beta_1), float(beta_2), float(epsilon),
                       float(weight_decay or 0.0), int(step), float(u_product))


# --- LSTM -------------------------------------------------------------------------------

def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None):
    """Every step of an LSTM (Keras layout, gates i, f, c~, o): x (N, L, D), kernel (D, 4U),
    recurrent_kernel (U, 4U), bias (4U,), h0 and c0 (N, U) or None (zeros).
    Returns ``(h, c)``: the hidden and cell states of every step, each (N, L, U)."""
    fn = "lstm_forward"
    x = as_float_array(x, fn, "x")
    kernel, recurrent_kernel, bias, h0, c0 = _same_dtype(
        fn, x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0, c0=c0)
    h, c, _ = _core.lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0)
    return h, c


def lstm_backward(dh, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, dh_last=None,
                  dc_last=None):
    """Gradients of ``lstm_forward`` given ``dh`` (N, L, U), the gradient of every step's
    h (None: zeros), plus optional gradients of the last h and c (N, U). Returns ``(dx,
    dkernel, drecurrent_kernel, dbias, dh0, dc0)`` (dbias None without a bias). The forward is
    recomputed (a layer keeps it instead: dlfast.layers.LSTM)."""
    fn = "lstm_backward"
    x = as_float_array(x, fn, "x")
    dh, kernel, recurrent_kernel, bias, h0, c0, dh_last, dc_last = _same_dtype(
        fn, x, dh=dh, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0, c0=c0,
        dh_last=dh_last, dc_last=dc_last)
    H, C, Z = _core.lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0)
    dkernel, drecurrent = np.zeros_like(kernel), np.zeros_like(recurrent_kernel)
    dbias = None if bias is None else np.zeros_like(bias)
    dx, dh0, dc0 = _core.lstm_backward(dh, dh_last, dc_last, x, kernel, recurrent_kernel, h0, c0,
                                       H, C, Z, dkernel, drecurrent, dbias, True, True, False)
    return dx, dkernel, drecurrent, dbias, dh0, dc0


def _step_input(x, fn):
    x = as_float_array(x, fn, "x")
    if x.ndim != 2:
        raise ValueError(f"{fn}: 'x' must be one step (batch, features), got shape {x.shape}")
    return x[:, None, :]


def lstm_cell_forward(x, h, c, kernel, recurrent_kernel, bias=None):
    """One LSTM step: x (N, D), the previous h and c (N, U) -> ``(h_new, c_new)``. The same
    fused kernel as ``lstm_forward``, with one time step."""
    fn = "lstm_cell_forward"
    h_all, c_all = lstm_forward(_step_input(x, fn), kernel, recurrent_kernel, bias, h, c)
    return h_all[:, 0], c_all[:, 0]


def lstm_cell_backward(dh_new, dc_new, x, h, c, kernel, recurrent_kernel, bias=None):
    """Gradients of ``lstm_cell_forward`` from those of h_new and c_new (either may be
    None): returns ``(dx, dh, dc, dkernel, drecurrent_kernel, dbias)``."""
    fn = "lstm_cell_backward"
    x3 = _step_input(x, fn)
    dx, dk, dr, db, dh, dc = lstm_backward(None, x3, kernel, recurrent_kernel, bias, h, c,
                                           dh_new, dc_new)
    return dx[:, 0], dh, dc, dk, dr, db


__all__ += _ops_spatial.__all__
__all__ += _ops_sequence.__all__
