"""dlfast.ops on images (NHWC input, HWIO kernels, Keras/TensorFlow conventions): conv2d,
max/average/global pooling, upsampling, zero padding, transposed conv2d. Re-exported by
``dlfast.ops`` (import them from there)."""

import numpy as np

from . import _core
from ._ops_common import (LEAKY_RELU_SLOPE, _same_dtype, activation_code, as_float_array,
                          conv_output_length, pair, padding_name, split_activation)

__all__ = []

__all__ += ["conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
            "avgpool2d_forward", "avgpool2d_backward", "global_avgpool2d_forward",
            "global_avgpool2d_backward", "pair", "conv_output_length"]


def conv2d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                   activation="linear"):
    """y = activation(conv2d(x, kernel) + bias); x (N, H, W, C), kernel (R, S, C, K),
    bias (K,) -> y (N, P, Q, K)."""
    fn = "conv2d_forward"
    x = as_float_array(x, fn, "x")
    kernel, bias = _same_dtype(fn, x, kernel=kernel, bias=bias)
    fused, post = split_activation(activation_code(activation, fn))
    y = _core.conv2d_forward(x, kernel, bias, pair(strides, "strides", fn),
                             padding_name(padding, fn), pair(dilation_rate, "dilation_rate", fn),
                             fused)
    return _core.activation_forward(y, post, LEAKY_RELU_SLOPE) if post else y


def conv2d_backward(dy, x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                    activation="linear", y=None):
    """Gradients of ``conv2d_forward``: returns ``(dx, dkernel, dbias)`` (dbias None
    without a bias). ``y`` is the forward output; it is recomputed when needed and not given."""
    fn = "conv2d_backward"
    dy = as_float_array(dy, fn, "dy")
    x, kernel, bias, y = _same_dtype(fn, dy, x=x, kernel=kernel, bias=bias, y=y)
    code, post = split_activation(activation_code(activation, fn))
    strides, dilation = pair(strides, "strides", fn), pair(dilation_rate, "dilation_rate", fn)
    padding = padding_name(padding, fn)
    if y is None and (code or post):
        y = conv2d_forward(x, kernel, bias, strides, padding, dilation, activation)
    if post:
        dy = _core.activation_backward(dy, y, post, LEAKY_RELU_SLOPE)
    dkernel = np.zeros_like(kernel)
    dbias = None if bias is None else np.zeros_like(bias)
    dx = _core.conv2d_backward(dy, x, kernel, y, strides, padding, dilation, code, dkernel, dbias,
                               True, True)
    return dx, dkernel, dbias


def _pool_args(fn, pool_size, strides, padding):
    pool = pair(pool_size, "pool_size", fn)
    return pool, pool if strides is None else pair(strides, "strides", fn), padding_name(padding, fn)


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Max over each pool window of x (N, H, W, C); 'same' pads with -inf."""
    fn = "maxpool2d_forward"
    return _core.maxpool2d_forward(as_float_array(x, fn, "x"), *_pool_args(fn, pool_size, strides,
                                                                          padding))


def maxpool2d_backward(dy, x, pool_size=2, strides=None, padding="valid"):
    """dx: each dy goes to the first maximum of its window (recomputed from x)."""
    fn = "maxpool2d_backward"
    dy = as_float_array(dy, fn, "dy")
    (x,) = _same_dtype(fn, dy, x=x)
    return _core.maxpool2d_backward(dy, x, *_pool_args(fn, pool_size, strides, padding))


def avgpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Mean over each pool window of x (N, H, W, C); cells in the padding are not counted."""
    fn = "avgpool2d_forward"
    return _core.avgpool2d_forward(as_float_array(x, fn, "x"), *_pool_args(fn, pool_size, strides,
                                                                          padding))


def avgpool2d_backward(dy, x, pool_size=2, strides=None, padding="valid"):
    """dx: each dy spread evenly over the input cells of its window. x gives the input shape."""
    fn = "avgpool2d_backward"
    dy = as_float_array(dy, fn, "dy")
    x = as_float_array(x, fn, "x", dy.dtype)  # only its shape is read, but it is checked
    if x.ndim != 4:
        raise ValueError(f"{fn}: argument 'x' must be 4-D (N, H, W, C), got shape {x.shape}")
    return _core.avgpool2d_backward(dy, tuple(int(d) for d in x.shape),
                                    *_pool_args(fn, pool_size, strides, padding))


def global_avgpool2d_forward(x):
    """Mean over H and W: x (N, H, W, C) -> (N, C)."""
    fn = "global_avgpool2d_forward"
    x = as_float_array(x, fn, "x")
    if x.ndim != 4:
        raise ValueError(f"{fn}: argument 'x' must be 4-D (N, H, W, C), got shape {x.shape}")
    n, h, w, c = x.shape
    return _core.avgpool2d_forward(x, (h, w), (h, w), "valid").reshape(n, c)


def global_avgpool2d_backward(dy, x):
    """dx (N, H, W, C) = dy (N, C) / (H * W) at every position."""
    fn = "global_avgpool2d_backward"
    dy = as_float_array(dy, fn, "dy")
    x = as_float_array(x, fn, "x", dy.dtype)  # only its shape is read, but it is checked
    if x.ndim != 4 or dy.shape != (x.shape[0], x.shape[3]):
        raise ValueError(f"{fn}: expected x (N, H, W, C) and dy (N, C), got x {x.shape} and "
                         f"dy {dy.shape}")
    n, h, w, c = x.shape
    return _core.avgpool2d_backward(dy.reshape(n, 1, 1, c), (n, h, w, c), (h, w), (h, w), "valid")


# --- upsampling and zero padding (NHWC; Keras's UpSampling2D and ZeroPadding2D) ----------

__all__ += ["upsampling2d_forward", "upsampling2d_backward", "zeropadding2d_forward",
            "zeropadding2d_backward", "padding_pairs"]


def padding_pairs(padding, fn):
    """ZeroPadding2D's padding as Keras reads it: an int p (p on every side), a pair
    (h, w) (h above and below, w left and right) or a pair of pairs
    ((top, bottom), (left, right)); ints >= 0. Returns ((top, bottom), (left, right))."""
    def whole(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    form = ("padding must be an int, a pair of ints (height, width) or a pair of pairs "
            "((top, bottom), (left, right)) of non-negative ints, got")
    if whole(padding):
        pairs = ((padding, padding), (padding, padding))
    elif isinstance(padding, (tuple, list)) and len(padding) == 2 and all(map(whole, padding)):
        pairs = ((padding[0], padding[0]), (padding[1], padding[1]))
    elif (isinstance(padding, (tuple, list)) and len(padding) == 2
          and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(map(whole, p))
                  for p in padding)):
        pairs = (tuple(padding[0]), tuple(padding[1]))
    else:
        raise ValueError(f"{fn}: {form} {padding!r}")
    pairs = tuple(tuple(int(v) for v in p) for p in pairs)
    if min(min(p) for p in pairs) < 0:
        raise ValueError(f"{fn}: {form} {padding!r}")
    return pairs


def upsampling2d_forward(x, size=2):
    """Nearest-neighbour upsampling: x (N, H, W, C) -> (N, H*sh, W*sw, C), each cell repeated
    over an sh x sw block; size an int or a pair (sh, sw)."""
    fn = "upsampling2d_forward"
    return _core.upsampling2d_forward(as_float_array(x, fn, "x"), pair(size, "size", fn))


def upsampling2d_backward(dy, size=2):
    """dx (N, H, W, C): the sum of dy (N, H*sh, W*sw, C) over each sh x sw block."""
    fn = "upsampling2d_backward"
    return _core.upsampling2d_backward(as_float_array(dy, fn, "dy"), pair(size, "size", fn))


def zeropadding2d_forward(x, padding=1):
    """x (N, H, W, C) framed by zeros: (N, top + H + bottom, left + W + right, C); padding as
    Keras's ZeroPadding2D takes it (see ``padding_pairs``)."""
    fn = "zeropadding2d_forward"
    return _core.zeropadding2d_forward(as_float_array(x, fn, "x"), padding_pairs(padding, fn))


def zeropadding2d_backward(dy, padding=1):
    """dx (N, H, W, C): the interior of dy (N, top + H + bottom, left + W + right, C)."""
    fn = "zeropadding2d_backward"
    return _core.zeropadding2d_backward(as_float_array(dy, fn, "dy"), padding_pairs(padding, fn))

# --- transposed convolution (NHWC input, kernel (kh, kw, filters, in_channels), as Keras) ---

__all__ += ["conv2d_transpose_forward", "conv2d_transpose_backward",
            "conv_transpose_output_length"]


def output_padding_pair(value, fn):
    """None, or an int or a pair of ints >= 0 as a pair (Keras's output_padding)."""
    if value is None:
        return None
    return pair(value, "output_padding", fn, 0, "None, an int or a pair of ints")


def conv_transpose_output_length(n, k, stride, dilation, padding, output_padding=None):
    """Output length along one axis, Keras 3's arithmetic (span = (k-1)d + 1): 'valid'
    (n-1)s + max(span, s), 'same' n*s; with output_padding op, (n-1)s + span + op and
    (n-1)s + span % 2 + op."""
    span = (k - 1) * dilation + 1
    if padding == "same":
        length = n * stride if output_padding is None else (n - 1) * stride + span % 2 + output_padding
    else:
        length = (n - 1) * stride + (max(span, stride) if output_padding is None
                                     else span + output_padding)
    return max(length, 0)


def _transpose_args(fn, strides, padding, output_padding, dilation_rate):
    return (pair(strides, "strides", fn), padding_name(padding, fn),
            output_padding_pair(output_padding, fn), pair(dilation_rate, "dilation_rate", fn))


def conv2d_transpose_forward(x, kernel, bias=None, strides=1, padding="valid",
                             output_padding=None, dilation_rate=1, activation="linear"):
    """y = activation(conv2d_transpose(x, kernel) + bias), Keras's Conv2DTranspose: x (N, h, w,
    Cin), kernel (kh, kw, F, Cin), bias (F,) -> y (N, H, W, F), H and W by Keras 3's formula
    (``conv_transpose_output_length``). It is the data gradient of conv2d_forward on an
    input of y's shape, with TensorFlow's 'same' padding."""
    fn = "conv2d_transpose_forward"
    x = as_float_array(x, fn, "x")
    kernel, bias = _same_dtype(fn, x, kernel=kernel, bias=bias)
    return _core.conv2d_transpose_forward(
        x, kernel, bias, *_transpose_args(fn, strides, padding, output_padding, dilation_rate),
        activation_code(activation, fn))


def conv2d_transpose_backward(dy, x, kernel, bias=None, strides=1, padding="valid",
                              output_padding=None, dilation_rate=1, activation="linear",
                              y=None):
    """Gradients of ``conv2d_transpose_forward``: returns ``(dx, dkernel, dbias)`` (dbias
    None without a bias). ``y`` is the forward output; it is recomputed when needed and not
    given."""
    fn = "conv2d_transpose_backward"
    dy = as_float_array(dy, fn, "dy")
    x, kernel, bias, y = _same_dtype(fn, dy, x=x, kernel=kernel, bias=bias, y=y)
    code = activation_code(activation, fn)
    args = _transpose_args(fn, strides, padding, output_padding, dilation_rate)
    if y is None and code != 0:
        y = _core.conv2d_transpose_forward(x, kernel, bias, *args, code)
    dkernel = np.zeros_like(kernel)
    dbias = None if bias is None else np.zeros_like(bias)
    dx = _core.conv2d_transpose_backward(dy, x, kernel, y, *args, code, dkernel, dbias, True,
                                         True)
    return dx, dkernel, dbias
