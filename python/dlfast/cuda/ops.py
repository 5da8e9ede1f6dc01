"""The CUDA kernels on device arrays, named and called like ``dlfast.ops``: each op takes
``dlfast.cuda.Array`` inputs (NumPy inputs are copied to the device first, as float32) and
returns new device arrays. Everything is float32 and runs in order on one CUDA stream; only
reading a result back (``to_numpy``, a loss value) waits for the GPU."""

import numpy as np

from .. import _core
from . import _device
from ..ops import ACTIVATIONS, LOSSES, pair, padding_name
from ..ops import activation_code as _cpu_activation_code

__all__ = ["matmul", "dense_forward", "dense_backward", "activation_forward",
           "activation_backward", "loss_value_and_grad", "sgd_update", "adam_update",
           "conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward", "global_avgpool2d_forward",
           "global_avgpool2d_backward", "lstm_forward", "lstm_backward", "conv_geometry",
           "pool_geometry"]


#: the activations the CUDA kernels have (csrc/cuda: apply_activation and
#: activation_backward_kernel); any other is refused by name, so an activation added to the
#: CPU kernels is never silently linear on the GPU
DEVICE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
DEVICE_ACTIVATION_CODES = frozenset(ACTIVATIONS[n] for n in DEVICE_ACTIVATIONS)


def activation_code(name, fn="activation"):
    """The kernel code of an activation name, as dlfast.ops's; NotImplementedError for one
    the CUDA kernels do not have (leaky_relu today)."""
    code = _cpu_activation_code(name, fn)
    if code not in DEVICE_ACTIVATION_CODES:
        raise NotImplementedError(f"{fn}: the activation {name} has no CUDA implementation "
                                  f"yet; use dlfast.ops on the CPU")
    return code


def _ext(fn):
    return _device.require(fn)


def device(x, dtype=np.float32):
    """x as a device array: a dlfast.cuda.Array passes through, anything else is copied."""
    ext = _ext("ops")
    if isinstance(x, ext.Array):
        return x
    return ext.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=dtype)))


def _opt(x):
    return None if x is None else device(x)


def _empty(shape):
    return _ext("ops").empty(tuple(int(d) for d in shape), "float32")


def _zeros(shape):
    return _ext("ops").zeros(tuple(int(d) for d in shape), "float32")


# --- GEMM, dense, activations -----------------------------------------------------------

def matmul(a, b, trans_a=False, trans_b=False, bias=None, activation="linear"):
    """``activation(op(a) @ op(b) + bias)`` on the GPU's tiled GEMM."""
    a, b = device(a), device(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul: expected 2-D a and b, got shapes {a.shape} and {b.shape}")
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    c = _empty((m, n))
    _ext("matmul").gemm(c, a, b, _opt(bias), bool(trans_a), bool(trans_b), False,
                        activation_code(activation, "matmul"))
    return c


def dense_forward(x, kernel, bias=None, activation="linear"):
    """``activation(x @ kernel + bias)`` on the GPU, as dlfast.ops.dense_forward."""
    x, kernel = device(x), device(kernel)
    if x.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"dense_forward: expected x (N, D) and kernel (D, U), got {x.shape} "
                         f"and {kernel.shape}")
    y = _empty((x.shape[0], kernel.shape[1]))
    _ext("dense_forward").dense_forward(y, x, kernel, _opt(bias),
                                        activation_code(activation, "dense_forward"))
    return y


def dense_backward(dy, x, kernel, bias=None, activation="linear", y=None):
    """``(dx, dkernel, dbias)`` as dlfast.ops.dense_backward; y recomputed when needed."""
    fn = "dense_backward"
    dy, x, kernel = device(dy), device(x), device(kernel)
    code = activation_code(activation, fn)
    if y is None and code != 0:
        y = dense_forward(x, kernel, bias, activation)
    dx = _empty(x.shape)
    dkernel = _zeros(kernel.shape)
    dbias = None if bias is None else _zeros((kernel.shape[1],))
    _ext(fn).dense_backward(dx, dkernel, dbias, dy, x, kernel, _opt(y), code, True)
    return dx, dkernel, dbias


def activation_forward(x, activation):
    """``activation(x)`` element-wise on the GPU (softmax over the last axis)."""
    x = device(x)
    y = _empty(x.shape)
    _ext("activation_forward").activation_forward(
        y, x, activation_code(activation, "activation_forward"))
    return y


def activation_backward(dy, y, activation):
    """``dx = dy * activation'(.)`` from the forward output y, on the GPU."""
    dy, y = device(dy), device(y)
    dx = _empty(dy.shape)
    _ext("activation_backward").activation_backward(
        dx, dy, y, activation_code(activation, "activation_backward"))
    return dx


# --- losses and optimizer updates --------------------------------------------------------

# The losses the CUDA kernels compute (the first four codes of ops.LOSSES).
DEVICE_LOSSES = ("mse", "binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy")


def loss_value_and_grad(loss, y_true, y_pred, from_logits=False, want_grad=True):
    """(mean loss as a float, gradient as a device array or None), like the CPU op. Sparse
    labels are int64 (a NumPy array is converted); targets float32."""
    if loss in LOSSES and loss not in DEVICE_LOSSES:
        raise NotImplementedError(f"loss {loss!r} has no CUDA implementation yet; on the GPU: "
                                  f"{', '.join(DEVICE_LOSSES)}")
    ext = _ext(loss)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    y_pred = device(y_pred)
    if y_pred.ndim != 2:
        raise ValueError(f"{loss}: 'y_pred' must be (batch, classes), got shape {y_pred.shape}")
    labels = target = None
    if loss == "sparse_categorical_crossentropy":
        if isinstance(y_true, ext.Array):
            labels = y_true
        else:
            from ..ops import labels_array
            labels = device(labels_array(y_true, loss, y_pred.shape[0]), np.int64)
    else:
        target = device(y_true)
        if target.shape != y_pred.shape and target.size == y_pred.size:
            target = target.reshape(y_pred.shape)
    value = ext.zeros((1,), "float64")
    grad = _empty(y_pred.shape) if want_grad else None
    ext.loss(value, grad, y_pred, target, labels, LOSSES[loss], bool(from_logits), 1.0, False)
    return float(value.to_numpy()[0]), grad


def sgd_update(weights, grads, velocities=None, learning_rate=0.01, momentum=0.0,
               nesterov=False, weight_decay=0.0):
    """Keras SGD over parallel lists of device arrays, in place (see dlfast.ops.sgd_update)."""
    ext = _ext("sgd_update")
    velocities = [None] * len(weights) if velocities is None else list(velocities)
    if not len(weights) == len(grads) == len(velocities):
        raise ValueError("sgd_update: weights, grads and velocities must be parallel lists")
    for w, g, v in zip(weights, grads, velocities):
        ext.sgd_update(w, v, g, float(learning_rate), float(momentum), bool(nesterov),
                       float(weight_decay or 0.0))


def adam_update(w, m, v, g, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, t=1,
                weight_decay=0.0):
    """One Keras Adam step (t counts from 1) on device arrays, in place; weight_decay is
    decoupled (w -= learning_rate*weight_decay*w first), as dlfast.optimizers.Adam."""
    _ext("adam_update").adam_update(w, m, v, g, float(learning_rate), float(beta_1),
                                    float(beta_2), float(epsilon), int(t),
                                    float(weight_decay or 0.0))


# --- convolution and pooling -------------------------------------------------------------

def conv_geometry(in_hw, kernel_hw, strides, padding, dilation, fn):
    """((P, Q), (stride_h, stride_w, dil_h, dil_w, pad_top, pad_left)), TensorFlow's
    arithmetic, from the CPU binding's _core.window_axis (the one place it is written)."""
    out, pads = [], []
    for n, k, s, d in zip(in_hw, kernel_hw, strides, dilation):
        axis = _core.window_axis(n, k, s, d, padding)
        if axis is None:
            raise ValueError(f"{fn}: window {tuple(kernel_hw)} (dilation {tuple(dilation)}) is "
                             f"larger than the input {tuple(in_hw)} with padding 'valid'")
        out.append(axis[0])
        pads.append(axis[1])
    return tuple(out), (strides[0], strides[1], dilation[0], dilation[1], pads[0], pads[1])


def _conv_args(fn, x, kernel, strides, padding, dilation_rate):
    if x.ndim != 4 or kernel.ndim != 4:
        raise ValueError(f"{fn}: expected x (N, H, W, C) and kernel (R, S, C, K), got "
                         f"{x.shape} and {kernel.shape}")
    strides, dilation = pair(strides, "strides", fn), pair(dilation_rate, "dilation_rate", fn)
    return conv_geometry(x.shape[1:3], kernel.shape[:2], strides, padding_name(padding, fn),
                         dilation, fn)


def conv2d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                   activation="linear"):
    """The implicit-GEMM convolution, as dlfast.ops.conv2d_forward (NHWC, HWIO)."""
    fn = "conv2d_forward"
    x, kernel = device(x), device(kernel)
    out_hw, geometry = _conv_args(fn, x, kernel, strides, padding, dilation_rate)
    y = _empty((x.shape[0],) + out_hw + (kernel.shape[3],))
    _ext(fn).conv2d_forward(y, x, kernel, _opt(bias), out_hw, geometry,
                            activation_code(activation, fn))
    return y


def conv2d_backward(dy, x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                    activation="linear", y=None):
    """``(dx, dkernel, dbias)`` as dlfast.ops.conv2d_backward; y recomputed when needed."""
    fn = "conv2d_backward"
    dy, x, kernel = device(dy), device(x), device(kernel)
    _, geometry = _conv_args(fn, x, kernel, strides, padding, dilation_rate)
    code = activation_code(activation, fn)
    if y is None and code != 0:
        y = conv2d_forward(x, kernel, bias, strides, padding, dilation_rate, activation)
    dx, dkernel = _empty(x.shape), _zeros(kernel.shape)
    dbias = None if bias is None else _zeros((kernel.shape[3],))
    _ext(fn).conv2d_backward(dx, dkernel, dbias, dy, x, kernel, _opt(y), geometry, code, True)
    return dx, dkernel, dbias


def pool_geometry(in_hw, pool_size, strides, padding, fn):
    """((P, Q), geometry) of a pool, as conv_geometry with dilation 1."""
    pool = pair(pool_size, "pool_size", fn)
    strides = pool if strides is None else pair(strides, "strides", fn)
    out_hw, geometry = conv_geometry(in_hw, pool, strides, padding_name(padding, fn), (1, 1), fn)
    return pool, out_hw, geometry


def _pool_forward(fn, x, pool_size, strides, padding, is_max):
    x = device(x)
    if x.ndim != 4:
        raise ValueError(f"{fn}: argument 'x' must be 4-D (N, H, W, C), got shape {x.shape}")
    pool, out_hw, geometry = pool_geometry(x.shape[1:3], pool_size, strides, padding, fn)
    y = _empty((x.shape[0],) + out_hw + (x.shape[3],))
    _ext(fn).pool2d_forward(y, x, pool, geometry, is_max)
    return y


def _pool_backward(fn, dy, x_shape, x, pool_size, strides, padding, is_max):
    dy = device(dy)
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: argument 'x' must be 4-D (N, H, W, C), got shape {x_shape}")
    pool, _, geometry = pool_geometry(x_shape[1:3], pool_size, strides, padding, fn)
    dx = _empty(x_shape)
    _ext(fn).pool2d_backward(dx, dy, x, pool, geometry, is_max)
    return dx


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Max over each window, as dlfast.ops.maxpool2d_forward."""
    return _pool_forward("maxpool2d_forward", x, pool_size, strides, padding, True)


def maxpool2d_backward(dy, x, pool_size=2, strides=None, padding="valid"):
    """dx: each dy to its window's maximum, as dlfast.ops.maxpool2d_backward."""
    x = device(x)
    return _pool_backward("maxpool2d_backward", dy, tuple(x.shape), x, pool_size, strides,
                          padding, True)


def avgpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Mean over each window (padding not counted), as dlfast.ops.avgpool2d_forward."""
    return _pool_forward("avgpool2d_forward", x, pool_size, strides, padding, False)


def avgpool2d_backward(dy, x, pool_size=2, strides=None, padding="valid"):
    """x gives the input shape only (an array or a shape tuple)."""
    shape = tuple(x) if isinstance(x, tuple) else tuple(np.shape(x) if isinstance(x, np.ndarray)
                                                        else x.shape)
    return _pool_backward("avgpool2d_backward", dy, shape, None, pool_size, strides, padding,
                          False)


def global_avgpool2d_forward(x):
    """Mean over H and W: (N, H, W, C) -> (N, C)."""
    x = device(x)
    if x.ndim != 4:
        raise ValueError(f"global_avgpool2d_forward: argument 'x' must be 4-D (N, H, W, C), got "
                         f"shape {x.shape}")
    n, h, w, c = x.shape
    return avgpool2d_forward(x, (h, w)).reshape(n, c)


def global_avgpool2d_backward(dy, x):
    """dx (N, H, W, C) = dy (N, C) / (H * W) at every position; x gives the shape."""
    dy = device(dy)
    shape = tuple(np.shape(x) if isinstance(x, np.ndarray) else x.shape)
    n, h, w, c = shape
    return avgpool2d_backward(dy.reshape(n, 1, 1, c), shape, (h, w))


# --- LSTM --------------------------------------------------------------------------------

def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, return_gates=False):
    """``(h, c)`` of every step, each (N, L, U), as dlfast.ops.lstm_forward; with
    return_gates also Z (N, L, 4U), the activated gates backward needs."""
    x, kernel, recurrent_kernel = device(x), device(kernel), device(recurrent_kernel)
    if x.ndim != 3 or recurrent_kernel.ndim != 2:
        raise ValueError(f"lstm_forward: expected x (N, L, D) and recurrent_kernel (U, 4U), got "
                         f"{x.shape} and {recurrent_kernel.shape}")
    n, steps, u = x.shape[0], x.shape[1], recurrent_kernel.shape[0]
    H, C, Z = _empty((n, steps, u)), _empty((n, steps, u)), _empty((n, steps, 4 * u))
    _ext("lstm_forward").lstm_forward(H, C, Z, x, kernel, recurrent_kernel, _opt(bias), _opt(h0),
                                      _opt(c0))
    return (H, C, Z) if return_gates else (H, C)


def lstm_backward(dh, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, dh_last=None,
                  dc_last=None):
    """``(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)`` as dlfast.ops.lstm_backward (the
    forward is recomputed)."""
    x, kernel, recurrent_kernel = device(x), device(kernel), device(recurrent_kernel)
    h0, c0 = _opt(h0), _opt(c0)
    H, C, Z = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, return_gates=True)
    dx, dk, dr = _empty(x.shape), _zeros(kernel.shape), _zeros(recurrent_kernel.shape)
    db = None if bias is None else _zeros((kernel.shape[1],))
    state = (x.shape[0], recurrent_kernel.shape[0])  # dh0, dc0 even for zero states, as the CPU op
    dh0, dc0 = _empty(state), _empty(state)
    _ext("lstm_backward").lstm_backward(dx, dk, dr, db, dh0, dc0, _opt(dh), _opt(dh_last),
                                        _opt(dc_last), x, kernel, recurrent_kernel, h0, c0, H, C,
                                        Z, True)
    return dx, dk, dr, db, dh0, dc0
