"""Conv2D on NHWC input with an HWIO kernel (Keras layouts)."""

from ..ops import (conv_output_length, conv_transpose_output_length, output_padding_pair, pair,
                   padding_name, split_activation)
from .base import positive_int
from .core import KernelLayer


class Conv2D(KernelLayer):
    """``y = activation(conv2d(x, kernel) + bias)``; x (batch, H, W, C), kernel
    (kh, kw, C, filters), bias (filters,). Padding 'valid' or 'same' with TensorFlow's exact
    arithmetic at any stride; the kernel picks im2col+GEMM or a plain GEMM (1x1) per shape."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, input_shape=None,
                 dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.filters = positive_int(filters, f"{self.name}: filters")
        self.kernel_size = pair(kernel_size, "kernel_size", self.name)
        self.strides = pair(strides, "strides", self.name)
        self.padding = padding_name(padding, self.name)
        self.dilation_rate = pair(dilation_rate, "dilation_rate", self.name)
        self.init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer,
                               kernel_regularizer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: Conv2D needs inputs (batch, height, width, channels), "
                             f"got input shape (batch, {', '.join(map(str, input_shape))})")
        out = []
        for n, k, s, d in zip(input_shape[:2], self.kernel_size, self.strides, self.dilation_rate):
            length = conv_output_length(n, k, s, d, self.padding)
            if length is None:
                raise ValueError(f"{self.name}: kernel {self.kernel_size} with dilation "
                                 f"{self.dilation_rate} is larger than the input "
                                 f"{tuple(input_shape[:2])} with padding 'valid'")
            out.append(length)
        return (out[0], out[1], self.filters)

    def build_weights(self, input_shape):
        self.add_kernel_and_bias(self.kernel_size + (input_shape[-1], self.filters))

    def call_forward(self, x, training, act=None):
        act = self._act if act is None else act
        fused, post = split_activation(act)  # leaky_relu: a separate pass after the kernel
        w = self.arrays[0]
        y = self.backend.conv2d_forward(x, w[0], w[1] if self.use_bias else None, self.strides,
                                        self.padding, self.dilation_rate, fused)
        y = self.post_activation(y, post)
        self._cache = (x, y, act)
        return y

    def call_backward(self, dy, need_dx=True, accumulate=True):
        dy, x, y, fused = self.cached_backward_inputs(dy)
        w, g = self.arrays
        return self.backend.conv2d_backward(dy, x, w[0], y, self.strides, self.padding,
                                            self.dilation_rate, fused, g[0],
                                            g[1] if self.use_bias else None, need_dx, accumulate)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate}


class Conv2DTranspose(KernelLayer):
    """``y = activation(conv2d_transpose(x, kernel) + bias)`` (Keras's Conv2DTranspose); x
    (batch, H, W, C), kernel (kh, kw, filters, C), bias (filters,). The output size is Keras 3's
    (``dlfast.ops.conv_transpose_output_length``); 'same' places the output as TensorFlow's
    conv2d_transpose does (the data gradient of a Conv2D with 'same' padding and these
    strides). As in Keras, output_padding must be less than the strides, and strides > 1 do not
    go with dilation_rate > 1."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, input_shape=None, dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.filters = positive_int(filters, f"{self.name}: filters")
        self.kernel_size = pair(kernel_size, "kernel_size", self.name)
        self.strides = pair(strides, "strides", self.name)
        self.padding = padding_name(padding, self.name)
        self.output_padding = output_padding_pair(output_padding, self.name)
        self.dilation_rate = pair(dilation_rate, "dilation_rate", self.name)
        if self.output_padding is not None and any(
                o >= s for o, s in zip(self.output_padding, self.strides)):
            raise ValueError(f"{self.name}: output_padding must be less than the strides along "
                             f"each axis, got output_padding={self.output_padding} and "
                             f"strides={self.strides}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{self.name}: strides > 1 are not supported together with "
                             f"dilation_rate > 1 (as in Keras), got strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer,
                               kernel_regularizer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: Conv2DTranspose needs inputs (batch, height, width, "
                             f"channels), got input shape (batch, {', '.join(map(str, input_shape))})")
        pads = (None, None) if self.output_padding is None else self.output_padding
        out = [None if n is None else conv_transpose_output_length(n, k, s, d, self.padding, o)
               for n, k, s, d, o in zip(input_shape[:2], self.kernel_size, self.strides,
                                        self.dilation_rate, pads)]
        return (out[0], out[1], self.filters)

    def build_weights(self, input_shape):
        self.add_kernel_and_bias(self.kernel_size + (self.filters, input_shape[-1]))

    def add_kernel_and_bias(self, kernel_shape):
        # the bias has one entry per filter: kernel_shape[-2] here (Keras's (kh, kw, F, C))
        self.add_weight("kernel", kernel_shape, self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)

    def call_forward(self, x, training, act=None):
        act = self._act if act is None else act
        fused, post = split_activation(act)  # leaky_relu: a separate pass after the kernel
        w = self.arrays[0]
        y = self.backend.conv2d_transpose_forward(x, w[0], w[1] if self.use_bias else None,
                                                  self.strides, self.padding,
                                                  self.output_padding, self.dilation_rate, fused)
        y = self.post_activation(y, post)
        self._cache = (x, y, act)
        return y

    def call_backward(self, dy, need_dx=True, accumulate=True):
        dy, x, y, fused = self.cached_backward_inputs(dy)
        w, g = self.arrays
        return self.backend.conv2d_transpose_backward(dy, x, w[0], y, self.strides,
                                                      self.padding, self.output_padding,
                                                      self.dilation_rate, fused, g[0],
                                                      g[1] if self.use_bias else None, need_dx,
                                                      accumulate)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "output_padding": self.output_padding,
                "dilation_rate": self.dilation_rate}
