"""The device twin of each layer that model.to('cuda') runs (see cuda/training.py): the same
call_forward / call_backward as the host layer, on device arrays, through the CUDA kernels,
into buffers cached per batch size (no allocation per step after the first)."""

import numpy as np

from ..layers.conv import Conv2D
from ..layers.core import Activation, Dense, Flatten
from ..layers.merge import Add
from ..layers.pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from ..layers.recurrent import LSTM
from ..ops import LEAKY_RELU
from . import _device, ops as device_ops


def rows(a):
    """A device array viewed as (batch, everything else); device reshapes take no -1."""
    return a if a.ndim == 2 else a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64)))


def cuda_ext():
    return _device.ext


class Buffers:
    """Device arrays of one layer, cached by (name, shape): allocated on first use, reused."""

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype="float32"):
        key = (name, tuple(shape), dtype)
        a = self._arrays.get(key)
        if a is None:
            a = self._arrays[key] = cuda_ext().empty(tuple(shape), dtype)
        return a


class _DeviceLayer:
    multiple_inputs = False  # as Layer: whether call_forward takes a list

    def __init__(self, layer, weights, grads):
        self.layer, self.w, self.g = layer, weights, grads
        self.buf = Buffers()


class _Dense(_DeviceLayer):
    def call_forward(self, x, training, act=None):
        layer = self.layer
        act = layer._act if act is None else act
        shape = x.shape
        x2 = x if x.ndim == 2 else x.reshape(x.size // shape[-1], shape[-1])
        y = self.buf.get("y", (x2.shape[0], layer.units))
        cuda_ext().dense_forward(y, x2, self.w[0], self.w[1] if layer.use_bias else None, act)
        self.cache = (x2, y, act, shape)
        return y if x.ndim == 2 else y.reshape(*shape[:-1], layer.units)

    def call_backward(self, dy, need_dx, accumulate):
        x2, y, act, shape = self.cache
        dy2 = dy if dy.ndim == 2 else dy.reshape(dy.size // self.layer.units, self.layer.units)
        dx = self.buf.get("dx", x2.shape) if need_dx else None
        cuda_ext().dense_backward(dx, self.g[0], self.g[1] if self.layer.use_bias else None, dy2, x2,
                              self.w[0], y, act, accumulate)
        return None if dx is None else dx.reshape(*shape)


class _Activation(_DeviceLayer):
    def call_forward(self, x, training, act=None):
        act = self.layer._act if act is None else act
        y = x
        if act:
            y = self.buf.get("y", x.shape)
            cuda_ext().activation_forward(y, x, act)
        self.cache = (y, act)
        return y

    def call_backward(self, dy, need_dx, accumulate):
        y, act = self.cache
        if not act or not need_dx:
            return dy
        dx = self.buf.get("dx", dy.shape)
        cuda_ext().activation_backward(dx, dy, y, act)
        return dx


class _Flatten(_DeviceLayer):
    def call_forward(self, x, training):
        self.shape = x.shape
        return rows(x)

    def call_backward(self, dy, need_dx, accumulate):
        return dy.reshape(*self.shape)


class _Conv2D(_DeviceLayer):
    def call_forward(self, x, training, act=None):
        layer = self.layer
        act = layer._act if act is None else act
        out_hw, self.geometry = device_ops.conv_geometry(
            x.shape[1:3], layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate,
            layer.name)
        y = self.buf.get("y", (x.shape[0],) + out_hw + (layer.filters,))
        cuda_ext().conv2d_forward(y, x, self.w[0], self.w[1] if layer.use_bias else None, out_hw,
                              self.geometry, act)
        self.cache = (x, y, act)
        return y

    def call_backward(self, dy, need_dx, accumulate):
        x, y, act = self.cache
        dx = self.buf.get("dx", x.shape) if need_dx else None
        cuda_ext().conv2d_backward(dx, self.g[0], self.g[1] if self.layer.use_bias else None, dy, x,
                               self.w[0], y, self.geometry, act, accumulate)
        return dx


class _Pooling(_DeviceLayer):
    def call_forward(self, x, training):
        layer = self.layer
        if isinstance(layer, GlobalAveragePooling2D):
            pool, strides, padding, self.is_max = x.shape[1:3], None, "valid", False
        else:
            pool, strides, padding = layer.pool_size, layer.strides, layer.padding
            self.is_max = isinstance(layer, MaxPooling2D)
        self.pool, out_hw, self.geometry = device_ops.pool_geometry(x.shape[1:3], pool, strides,
                                                                    padding, layer.name)
        y = self.buf.get("y", (x.shape[0],) + out_hw + (x.shape[3],))
        cuda_ext().pool2d_forward(y, x, self.pool, self.geometry, self.is_max)
        self.x = x
        if isinstance(layer, GlobalAveragePooling2D):
            return y.reshape(x.shape[0], x.shape[3])
        return y

    def call_backward(self, dy, need_dx, accumulate):
        if not need_dx:
            return None
        x = self.x
        if isinstance(self.layer, GlobalAveragePooling2D):
            dy = dy.reshape(x.shape[0], 1, 1, x.shape[3])
        dx = self.buf.get("dx", x.shape)
        cuda_ext().pool2d_backward(dx, dy, x if self.is_max else None, self.pool, self.geometry,
                               self.is_max)
        return dx


class _LSTM(_DeviceLayer):
    def call_forward(self, x, training):
        layer = self.layer
        n, steps, u = x.shape[0], x.shape[1], layer.units
        H = self.buf.get("H", (n, steps, u))
        C = self.buf.get("C", (n, steps, u))
        Z = self.buf.get("Z", (n, steps, 4 * u))
        cuda_ext().lstm_forward(H, C, Z, x, self.w[0], self.w[1],
                            self.w[2] if layer.use_bias else None, None, None)
        self.cache = (x, H, C, Z)
        if layer.return_sequences:
            return H
        last = self.buf.get("last", (n, u))
        cuda_ext().copy_strided(last, H, (steps - 1) * u, steps * u)
        return last

    def call_backward(self, dy, need_dx, accumulate):
        x, H, C, Z = self.cache
        seq = self.layer.return_sequences
        dx = self.buf.get("dx", x.shape) if need_dx else None
        cuda_ext().lstm_backward(dx, self.g[0], self.g[1], self.g[2] if self.layer.use_bias else None,
                             None, None, dy if seq else None, None if seq else dy, None, x,
                             self.w[0], self.w[1], None, None, H, C, Z, accumulate)
        return dx


class _Add(_DeviceLayer):
    multiple_inputs = True

    def call_forward(self, xs, training):
        self.n = len(xs)
        if self.n == 1:
            return xs[0]
        y = self.buf.get("y", xs[0].shape)
        cuda_ext().add(y, xs[0], xs[1])
        for x in xs[2:]:
            cuda_ext().add(y, y, x)
        return y

    def call_backward(self, dy, need_dx, accumulate):
        return [dy] * self.n  # the same array to each input, as Add on the CPU


def device_twin(layer, weights, grads):
    if getattr(layer, "_act", None) == LEAKY_RELU:  # Dense, Conv2D, Activation, LeakyReLU
        raise NotImplementedError(f"model.to('cuda'): layer '{layer.name}' "
                                  f"({type(layer).__name__}) uses the activation leaky_relu, "
                                  f"which has no CUDA implementation yet; keep the model on "
                                  f"the CPU")
    if isinstance(layer, Add):
        return _Add(layer, weights, grads)
    if isinstance(layer, Dense):
        return _Dense(layer, weights, grads)
    if isinstance(layer, Activation):  # ReLU too
        return _Activation(layer, weights, grads)
    if isinstance(layer, Flatten):
        return _Flatten(layer, weights, grads)
    if isinstance(layer, Conv2D):
        return _Conv2D(layer, weights, grads)
    if isinstance(layer, (MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D)):
        return _Pooling(layer, weights, grads)
    if isinstance(layer, LSTM) and not layer.return_state:
        return _LSTM(layer, weights, grads)
    raise NotImplementedError(f"model.to('cuda'): layer '{layer.name}' "
                              f"({type(layer).__name__}"
                              f"{' with return_state' if isinstance(layer, LSTM) else ''}) has no "
                              f"CUDA implementation yet; supported: Dense, Activation, ReLU, "
                              f"Flatten, Conv2D, MaxPooling2D, AveragePooling2D, "
                              f"GlobalAveragePooling2D, LSTM, Add")
