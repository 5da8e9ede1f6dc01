"""Pooling layers on NHWC input: MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D."""

from ..ops import conv_output_length, pair, padding_name
from .base import Layer


class _Pooling2D(Layer):
    forward_kernel = backward_kernel = None
    kind = ""

    def __init__(self, pool_size=2, strides=None, padding="valid", input_shape=None, dtype=None,
                 name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.pool_size = pair(pool_size, "pool_size", self.name)
        self.strides = self.pool_size if strides is None else pair(strides, "strides", self.name)
        self.padding = padding_name(padding, self.name)
        self._cache = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: {type(self).__name__} needs inputs (batch, height, "
                             f"width, channels), got input shape (batch, "
                             f"{', '.join(map(str, input_shape))})")
        out = []
        for n, k, s in zip(input_shape[:2], self.pool_size, self.strides):
            length = conv_output_length(n, k, s, 1, self.padding)
            if length is None:
                raise ValueError(f"{self.name}: pool_size {self.pool_size} is larger than the "
                                 f"input {tuple(input_shape[:2])} with padding 'valid'")
            out.append(length)
        return (out[0], out[1], input_shape[2])

    def call_forward(self, x, training):
        self._cache = x
        return self.forward_pool(x)

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        expected = (self._cache.shape[0],) + self.output_shape
        if dy.shape != expected:
            raise ValueError(f"{self.name}: dy must have the output's shape {expected}, got "
                             f"{dy.shape}")
        return self.backward_pool(dy, self._cache)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """Max over each window ('same' pads with -inf); backward routes dy to each window's first
    maximum."""

    def forward_pool(self, x):
        return self.backend.maxpool2d_forward(x, self.pool_size, self.strides, self.padding)

    def backward_pool(self, dy, x):
        return self.backend.maxpool2d_backward(dy, x, self.pool_size, self.strides, self.padding)


class AveragePooling2D(_Pooling2D):
    """Mean over each window; cells in the padding are not counted (TensorFlow)."""

    def forward_pool(self, x):
        return self.backend.avgpool2d_forward(x, self.pool_size, self.strides, self.padding)

    def backward_pool(self, dy, x):
        return self.backend.avgpool2d_backward(dy, x.shape, self.pool_size, self.strides,
                                               self.padding)


class GlobalAveragePooling2D(Layer):
    """Mean over height and width: (batch, H, W, C) -> (batch, C)."""

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: GlobalAveragePooling2D needs inputs (batch, height, "
                             f"width, channels), got input shape (batch, "
                             f"{', '.join(map(str, input_shape))})")
        return (input_shape[2],)

    def call_forward(self, x, training):
        n, h, w, c = x.shape
        self._in_shape = x.shape
        return self.backend.avgpool2d_forward(x, (h, w), (h, w), "valid").reshape(n, c)

    def call_backward(self, dy, need_dx=True, accumulate=True):
        n, h, w, c = self._in_shape
        if dy.shape != (n, c):
            raise ValueError(f"{self.name}: dy must have the output's shape {(n, c)}, got "
                             f"{dy.shape}")
        return self.backend.avgpool2d_backward(dy.reshape(n, 1, 1, c), self._in_shape, (h, w),
                                               (h, w), "valid")
