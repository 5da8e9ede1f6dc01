"""What every dlfast.ops wrapper shares: the kernel codes of activations and losses (from
the C++ lists in csrc/common/dispatch.h), argument checks that name what came, and the
sliding-window arguments (pair, padding_name, conv_output_length). Re-exported by
``dlfast.ops``; a leaf beside it, so the op modules import it and not one another."""

import numpy as np

from . import _core
from ._arrays import to_array

#: name -> kernel code of every activation and loss: the C++ lists in csrc/common/dispatch.h
#: (DLFAST_ACTIVATIONS, DLFAST_LOSSES), the one place they are written
ACTIVATIONS = dict(_core.ACTIVATIONS)
LOSSES = dict(_core.LOSSES)
#: the codes of linear (no activation, e.g. a head whose softmax the loss fuses) and of
#: leaky_relu, and leaky_relu's slope as an activation name ('leaky_relu'): Keras's
#: ``keras.activations.leaky_relu`` default (the LeakyReLU layer's default is 0.3)
LINEAR = ACTIVATIONS["linear"]
LEAKY_RELU = ACTIVATIONS["leaky_relu"]
LEAKY_RELU_SLOPE = 0.2


def activation_code(name, fn="activation"):
    """The kernel code of an activation name (None means 'linear')."""
    if name is None:
        return LINEAR
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"{fn}: unknown activation {name!r}; expected one of "
                         f"{sorted(ACTIVATIONS)}") from None


def as_float_array(x, fn, name, dtype=None):
    """x as a C-contiguous float32/float64 array (a copy only if it is not one already);
    with ``dtype``, numeric input is cast to it."""
    return to_array(x, dtype, f"{fn}: argument '{name}'")


def split_activation(code):
    """(code fused into the Dense/Conv2D kernel, code of the element-wise pass after it):
    leaky_relu is not fused (the kernels fuse relu into the GEMM's store and run the others
    on the output in place; leaky_relu needs its slope, which they do not take), so it runs
    as a separate vectorised pass (activation_forward) after the linear kernel."""
    return (LINEAR, code) if code == LEAKY_RELU else (code, LINEAR)


def _same_dtype(fn, ref, **arrays):
    out = []
    for name, a in arrays.items():
        out.append(None if a is None else as_float_array(a, fn, name, ref.dtype))
    return out


# --- matmul -----------------------------------------------------------------------------


def pair(value, what, fn, minimum=1, expected="an int or a pair of ints"):
    """An int or a pair of ints as a pair of ints >= ``minimum`` (Keras's kernel_size, strides:
    positive; output_padding: >= 0). ``expected`` says what the error message asks for."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        a, b = (int(v) for v in value)
        if any(isinstance(v, bool) or int(v) != v for v in value):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {what} must be {expected}, got {value!r}") from None
    if a < minimum or b < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{fn}: {what} must be {bound}, got {value!r}")
    return a, b


def padding_name(padding, fn):
    p = padding.lower() if isinstance(padding, str) else padding
    if p not in ("valid", "same"):
        raise ValueError(f"{fn}: padding must be 'valid' or 'same', got {padding!r}")
    return p


def conv_output_length(n, k, stride, dilation, padding):
    """Output length along one axis, TensorFlow's arithmetic: 'valid' ceil((n - (k-1)d) / s),
    'same' ceil(n / s); None when a 'valid' window does not fit (_core.window_axis, the one
    place it is written)."""
    axis = _core.window_axis(n, k, stride, dilation, padding)
    return None if axis is None else axis[0]
