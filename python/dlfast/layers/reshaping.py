"""Reshaping layers: UpSampling2D and ZeroPadding2D on NHWC input (C++ kernels), Reshape."""

import numpy as np

from ..ops import padding_pairs, pair
from .base import Layer

# Keras's UpSampling2D interpolations; only 'nearest' has a kernel here
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")


def _channels_last(data_format, owner):
    """Keras's data_format argument: None or 'channels_last' (NHWC, the only layout here)."""
    if data_format is None or (isinstance(data_format, str)
                               and data_format.lower() == "channels_last"):
        return "channels_last"
    if isinstance(data_format, str) and data_format.lower() == "channels_first":
        raise NotImplementedError(f"{owner}: data_format='channels_first' is not implemented; "
                                  f"dlfast's images are channels_last (batch, height, width, "
                                  f"channels)")
    raise ValueError(f"{owner}: data_format must be None or 'channels_last', got "
                     f"{data_format!r}")


def _image_shape(layer, input_shape):
    if len(input_shape) != 3:
        raise ValueError(f"{layer.name}: {type(layer).__name__} needs inputs (batch, height, "
                         f"width, channels), got input shape (batch, "
                         f"{', '.join(map(str, input_shape))})")
    return input_shape


class _Image2D(Layer):
    """A weightless NHWC layer whose backward needs only the forward's batch size."""

    def call_forward(self, x, training):
        self._batch = x.shape[0]
        return self.forward_kernel(x)

    def call_backward(self, dy, need_dx=True, accumulate=True):
        batch = getattr(self, "_batch", None)
        if batch is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        expected = (batch,) + self.output_shape
        if dy.shape != expected:
            raise ValueError(f"{self.name}: dy must have the output's shape {expected}, got "
                             f"{dy.shape}")
        return self.backward_kernel(dy) if need_dx else None


class UpSampling2D(_Image2D):
    """Nearest-neighbour upsampling (Keras's UpSampling2D): (batch, H, W, C) ->
    (batch, H*sh, W*sw, C), each cell repeated over an sh x sw block; size an int or a pair
    (sh, sw). Backward sums dy over each block. Only interpolation='nearest' is implemented."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", input_shape=None,
                 dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.size = pair(size, "size", self.name)
        self.data_format = _channels_last(data_format, self.name)
        if not isinstance(interpolation, str) or interpolation.lower() not in _INTERPOLATIONS:
            raise ValueError(f"{self.name}: interpolation must be one of "
                             f"{', '.join(repr(i) for i in _INTERPOLATIONS)}, got "
                             f"{interpolation!r}")
        self.interpolation = interpolation.lower()
        if self.interpolation != "nearest":
            raise NotImplementedError(f"{self.name}: UpSampling2D(interpolation="
                                      f"{interpolation!r}) is not implemented; only "
                                      f"interpolation='nearest' is")

    def compute_output_shape(self, input_shape):
        h, w, c = _image_shape(self, input_shape)
        return (None if h is None else h * self.size[0], None if w is None else w * self.size[1],
                c)

    def forward_kernel(self, x):
        return self.backend.upsampling2d_forward(x, self.size)

    def backward_kernel(self, dy):
        return self.backend.upsampling2d_backward(dy, self.size)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format,
                "interpolation": self.interpolation}


class ZeroPadding2D(_Image2D):
    """Zeros around the image (Keras's ZeroPadding2D): padding an int p (p rows and columns on
    every side), a pair (h, w) (h above and below, w left and right) or
    ((top, bottom), (left, right)). Backward keeps dy's interior."""

    def __init__(self, padding=(1, 1), data_format=None, input_shape=None, dtype=None,
                 name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.padding = padding_pairs(padding, self.name)
        self.data_format = _channels_last(data_format, self.name)

    def compute_output_shape(self, input_shape):
        h, w, c = _image_shape(self, input_shape)
        (top, bottom), (left, right) = self.padding
        return (None if h is None else h + top + bottom,
                None if w is None else w + left + right, c)

    def forward_kernel(self, x):
        return self.backend.zeropadding2d_forward(x, self.padding)

    def backward_kernel(self, dy):
        return self.backend.zeropadding2d_backward(dy, self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class Reshape(Layer):
    """(batch, ...) -> (batch, *target_shape) in row-major order (Keras's Reshape);
    target_shape excludes the batch axis and may hold one -1, the size that makes the element
    counts match. Forward returns a view of its input (as Flatten; the layer caches only the
    input's shape, so nothing it keeps can be changed through the view); backward returns dy
    reshaped to the input's shape, C-contiguous."""

    def __init__(self, target_shape, input_shape=None, dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        if isinstance(target_shape, (int, np.integer)) and not isinstance(target_shape, bool):
            target_shape = (target_shape,)
        if not isinstance(target_shape, (tuple, list)) or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or (d < 1 and d != -1)
                for d in target_shape):
            raise ValueError(f"{self.name}: target_shape must be a tuple of positive ints (one "
                             f"of them may be -1), got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)
        if self.target_shape.count(-1) > 1:
            raise ValueError(f"{self.name}: target_shape may hold at most one -1 (unknown "
                             f"size), got {self.target_shape}")
        self._in_shape = None

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        known = [d for d in self.target_shape if d != -1]
        target = int(np.prod(known, dtype=np.int64))
        if None in input_shape:  # an unknown input size: the -1 stays unknown
            return tuple(None if d == -1 else d for d in self.target_shape)
        total = int(np.prod(input_shape, dtype=np.int64))
        if -1 in self.target_shape:
            if total % target:
                raise ValueError(f"{self.name}: cannot reshape input of shape (batch, "
                                 f"{', '.join(map(str, input_shape))}) ({total} values per "
                                 f"sample) to target_shape {self.target_shape}: {total} is not "
                                 f"a multiple of {target}")
            return tuple(total // target if d == -1 else d for d in self.target_shape)
        if total != target:
            raise ValueError(f"{self.name}: cannot reshape input of shape (batch, "
                             f"{', '.join(map(str, input_shape))}) ({total} values per sample) "
                             f"to target_shape {self.target_shape} ({target} values per sample)")
        return self.target_shape

    def call_forward(self, x, training):
        shape = self.output_shape if None not in self.output_shape else self.target_shape
        y = x.reshape((x.shape[0],) + tuple(shape))
        self._in_shape, self._out_shape = x.shape, y.shape
        return y

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._in_shape is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        if dy.shape != self._out_shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {self._out_shape}, "
                             f"got {dy.shape}")
        return np.ascontiguousarray(dy.reshape(self._in_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}
