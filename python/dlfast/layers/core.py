"""Core layers: Input, Dense, Activation, ReLU, LeakyReLU, Flatten."""

import math

import numpy as np

from .. import initializers, regularizers
from ..ops import LEAKY_RELU_SLOPE, LINEAR, activation_code, split_activation
from .base import Layer, normalize_shape, positive_int
from .symbolic import SymbolicTensor


class Input(Layer):
    """The shape (without the batch axis) and dtype of a model's input. In a Sequential model
    it only declares the input; it has no weights and does nothing to the data. In a
    functional model it is where the graph starts: ``y = Dense(3)(Input((4,)))`` (calling a
    layer on an Input calls it on ``input.output``, the symbolic tensor it stands for)."""

    def __init__(self, shape, dtype=None, name=None):
        super().__init__(dtype=dtype, name=name)
        self.dtype_given = dtype is not None  # else the model's dtype wins
        self.shape = normalize_shape(shape, "Input shape")
        self.build(self.shape)
        self.output = SymbolicTensor(self.shape, self.dtype, self, [])

    def call_forward(self, x, training):
        return x

    def call_backward(self, dy, need_dx=True, accumulate=True):
        return dy

    def get_config(self):
        # dtype None when not given, so that a Sequential model's dtype still wins when rebuilt
        return {**super().get_config(), "shape": self.shape,
                "dtype": self.dtype.name if self.dtype_given else None}


class KernelLayer(Layer):
    """What Dense and Conv2D share: a kernel, an optional bias, an activation fused into the
    kernel call (by code), and the forward cache. leaky_relu is the exception: the kernels do
    not take its slope, so it runs as a separate vectorised pass after the linear kernel
    (``post_activation`` / ``post_activation_grad``)."""

    def post_activation(self, y, post):
        """y after the activation the kernel did not fuse (leaky_relu, slope 0.2 as
        keras.activations.leaky_relu; code 0: none)."""
        return self.backend.activation_forward(y, post, LEAKY_RELU_SLOPE) if post else y

    def post_activation_grad(self, dy, y, post):
        return self.backend.activation_backward(dy, y, post, LEAKY_RELU_SLOPE) if post else dy

    def cached_backward_inputs(self, dy):
        """(dz for the kernel, x, y, fused activation code) of the last forward, cached as
        (x, y, act) by the convolution layers: dy checked against y, and the unfused
        activation's gradient (leaky_relu) applied."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x, y, act = self._cache
        if dy.shape != y.shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {y.shape}, got "
                             f"{dy.shape}")
        fused, post = split_activation(act)
        return self.post_activation_grad(dy, y, post), x, y, fused

    def init_kernel_layer(self, activation, use_bias, kernel_initializer, bias_initializer,
                          kernel_regularizer):
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.activation = activation or "linear"
        self._act = activation_code(self.activation, self.name)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._cache = None

    @property
    def kernel(self):
        return self.weights[0]

    @property
    def bias(self):
        return self.weights[1] if self.use_bias else None

    def regularization_loss(self):
        r = self.kernel_regularizer
        return 0.0 if r is None or not self.built else r(self.weights[0])

    def add_regularization_grads(self):
        r = self.kernel_regularizer
        if r is None or not self.built:
            return 0.0
        return r.accumulate_gradient(self.weights[0], self.grads[0])

    def add_kernel_and_bias(self, kernel_shape):
        self.add_weight("kernel", kernel_shape, self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (kernel_shape[-1],), self.bias_initializer)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer)}


class Dense(KernelLayer):
    """``y = activation(x @ kernel + bias)`` on the last axis; kernel (in, units), bias (units,).

    Bias and ReLU are fused into the GEMM's store (leaky_relu is a separate pass after it);
    backward is one C++ call that adds the kernel and bias gradients and returns dx."""

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, input_shape=None, dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.units = positive_int(units, f"{self.name}: units")
        self.init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer,
                               kernel_regularizer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{self.name}: Dense needs inputs (batch, ..., features), got "
                             f"input shape (batch,) with no feature axis")
        return tuple(input_shape[:-1]) + (self.units,)

    def build_weights(self, input_shape):
        self.add_kernel_and_bias((input_shape[-1], self.units))

    def call_forward(self, x, training, act=None):
        act = self._act if act is None else act
        x2 = x if x.ndim == 2 else x.reshape(math.prod(x.shape[:-1]), x.shape[-1])
        w = self.arrays[0]
        fused, post = split_activation(act)
        y = self.post_activation(self.backend.dense_forward(
            x2, w[0], w[1] if self.use_bias else None, fused), post)
        self._cache = (x2, y, act, x.shape)
        return y if x.ndim == 2 else y.reshape(*x.shape[:-1], self.units)

    def forward_logits(self, x, training=False):
        """Forward without the activation (the model fuses softmax/sigmoid into the loss)."""
        return self.call_forward(self.check_input(x), training, act=LINEAR)

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x2, y, act, in_shape = self._cache
        dy2 = dy if dy.ndim == 2 or dy.shape[-1] != self.units else dy.reshape(
            math.prod(dy.shape[:-1]), self.units)
        if dy2.shape != y.shape:
            raise ValueError(f"{self.name}: dy must have the output's shape "
                             f"{in_shape[:-1] + (self.units,)}, got {dy.shape}")
        w, g = self.arrays
        fused, post = split_activation(act)
        dy2 = self.post_activation_grad(dy2, y, post)
        dx = self.backend.dense_backward(dy2, x2, w[0], y, fused, g[0],
                                         g[1] if self.use_bias else None, need_dx, accumulate)
        if dx is None or len(in_shape) == 2:
            return dx
        return dx.reshape(*in_shape)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class Activation(Layer):
    """An element-wise activation by name: 'linear', 'relu', 'sigmoid', 'tanh', 'softmax'
    (softmax over the last axis), 'leaky_relu' (slope 0.2, as keras.activations.leaky_relu)."""

    def __init__(self, activation, input_shape=None, dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.activation = activation or "linear"
        self._act = activation_code(self.activation, self.name)
        self._slope = LEAKY_RELU_SLOPE  # leaky_relu's; LeakyReLU sets its own
        self._cache = None

    def call_forward(self, x, training, act=None):
        act = self._act if act is None else act
        y = self.backend.activation_forward(x, act, self._slope) if act else x
        self._cache = (y, act)
        return y

    def forward_logits(self, x, training=False):
        return self.call_forward(self.check_input(x), training, act=LINEAR)

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        y, act = self._cache
        if dy.shape != y.shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {y.shape}, got "
                             f"{dy.shape}")
        return self.backend.activation_backward(dy, y, act, self._slope) if act else dy

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class ReLU(Activation):
    """max(x, 0)."""

    def __init__(self, input_shape=None, dtype=None, name=None):
        super().__init__("relu", input_shape=input_shape, dtype=dtype, name=name)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


class LeakyReLU(Activation):
    """``x > 0 ? x : negative_slope * x`` (Keras's LeakyReLU: the layer's default slope is
    0.3, the activation name 'leaky_relu' has 0.2). The slope must be >= 0, as Keras
    requires; NaN passes through as NaN."""

    def __init__(self, negative_slope=0.3, input_shape=None, dtype=None, name=None):
        super().__init__("leaky_relu", input_shape=input_shape, dtype=dtype, name=name)
        if (isinstance(negative_slope, bool)
                or not isinstance(negative_slope, (int, float, np.number))
                or not math.isfinite(negative_slope) or negative_slope < 0):
            raise ValueError(f"{self.name}: negative_slope must be a finite number >= 0 (as "
                             f"Keras requires), got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self._slope = self.negative_slope

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return {**config, "negative_slope": self.negative_slope}


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1*d2*...), in row-major order as Keras."""

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def call_forward(self, x, training):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def call_backward(self, dy, need_dx=True, accumulate=True):
        return dy.reshape(*self._in_shape)
