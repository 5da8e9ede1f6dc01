"""Bidirectional: a recurrent layer run over the sequence in both directions (Keras 3)."""

import numpy as np

from .. import registry
from .base import Layer

MERGE_MODES = ("concat", "sum", "mul", "ave")


def _copy(layer, name):
    """A fresh, unbuilt layer of ``layer``'s class and config, named ``name``."""
    return type(layer).from_config({**layer.get_config(), "name": name})


def _reversed(a):
    """``a`` with its time axis (axis 1) reversed, C-contiguous (the kernels' layout)."""
    return np.ascontiguousarray(a[:, ::-1])


class Bidirectional(Layer):
    """``layer`` over the sequence forwards and a copy of it over the sequence backwards, the
    two outputs merged (Keras 3's Bidirectional). As in Keras, both directions are fresh
    copies of ``layer``'s config, named ``forward_<name>`` and ``backward_<name>``; the
    weights are the forward layer's, then the backward layer's, each in the wrapped layer's
    own layout. With ``return_sequences`` the backward outputs are put back in time order
    before merging, so step t of the output has seen x[:t+1] forwards and x[t:] backwards;
    without it, the backward half is its state after reading the whole sequence reversed.

    ``merge_mode``: 'concat' (the default: forward then backward along the last axis), 'sum',
    'mul' or 'ave'. Keras's ``merge_mode=None`` (a list of two outputs) is not supported, nor
    a wrapped layer with ``return_state``.
    """

    def __init__(self, layer, merge_mode="concat", input_shape=None, dtype=None, name=None):
        if not isinstance(layer, Layer) or not hasattr(layer, "return_sequences"):
            raise TypeError(f"Bidirectional: expected a recurrent dlfast layer (LSTM), got "
                            f"{type(layer).__name__}")
        if getattr(layer, "return_state", False):
            raise ValueError(f"Bidirectional: the wrapped layer '{layer.name}' has "
                             f"return_state=True, which Bidirectional does not support yet")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {MERGE_MODES}, got "
                             f"{merge_mode!r}")
        super().__init__(input_shape=input_shape, dtype=dtype or layer.dtype, name=name)
        self.layer_config = {"class_name": type(layer).__name__, "config": layer.get_config()}
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.forward_layer = _copy(layer, "forward_" + layer.name)
        self.backward_layer = _copy(layer, "backward_" + layer.name)
        self._cache = None

    @property
    def directions(self):
        return (self.forward_layer, self.backward_layer)

    # --- shapes and weights -----------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        f = tuple(self.forward_layer.compute_output_shape(input_shape))
        b = tuple(self.backward_layer.compute_output_shape(input_shape))
        if self.merge_mode == "concat":
            return f[:-1] + (f[-1] + b[-1],)
        return f

    def build_weights(self, input_shape):
        for layer in self.directions:
            layer.dtype = self.dtype
            layer.build(input_shape)
            self.weights.extend(layer.weights)
            self.grads.extend(layer.grads)
            self.weight_names.extend(f"{layer.name}/{n}" for n in layer.weight_names)
            self.weight_trainable.extend(layer.weight_trainable)

    def _pack_parameters(self):
        self._packed = None  # each direction packed its own when it was built

    def optimizer_arrays(self):
        if not self.trainable:
            return [], []
        grads, weights = [], []
        for layer in self.directions:
            g, w = layer.optimizer_arrays()
            grads += g
            weights += w
        return grads, weights

    def _shape_matches(self, shape):  # any number of time steps, as the wrapped layer
        return self.forward_layer._shape_matches(shape)

    # --- forward / backward -------------------------------------------------------------------
    def call_forward(self, x, training):
        yf = self.forward_layer.call_forward(x, training)
        yb = self.backward_layer.call_forward(_reversed(x), training)
        if self.return_sequences:
            yb = _reversed(yb)
        self._cache = (yf, yb)
        mode = self.merge_mode
        if mode == "concat":
            return np.concatenate([yf, yb], axis=-1)
        if mode == "sum":
            return yf + yb
        if mode == "ave":
            return (yf + yb) * self.dtype.type(0.5)
        return yf * yb

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        yf, yb = self._cache
        mode = self.merge_mode
        expected = yf.shape[:-1] + ((yf.shape[-1] + yb.shape[-1],) if mode == "concat"
                                    else yf.shape[-1:])
        if dy.shape != expected:
            raise ValueError(f"{self.name}: dy must have the output's shape {expected}, got "
                             f"{dy.shape}")
        if mode == "concat":
            dyf, dyb = dy[..., :yf.shape[-1]], dy[..., yf.shape[-1]:]
        elif mode == "sum":
            dyf = dyb = dy
        elif mode == "ave":
            dyf = dyb = dy * self.dtype.type(0.5)
        else:
            dyf, dyb = dy * yb, dy * yf
        if self.return_sequences:
            dyb = dyb[:, ::-1]
        dxf = self.forward_layer.call_backward(np.ascontiguousarray(dyf), need_dx, accumulate)
        dxb = self.backward_layer.call_backward(np.ascontiguousarray(dyb), need_dx, accumulate)
        return None if dxf is None else dxf + dxb[:, ::-1]

    def get_config(self):
        return {**super().get_config(), "layer": self.layer_config,
                "merge_mode": self.merge_mode}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        entry = config.pop("layer")
        classes = registry.classes()
        if not isinstance(entry, dict) or entry.get("class_name") not in classes:
            raise ValueError(f"Bidirectional: 'layer' must name a dlfast layer, got {entry!r}")
        layer = classes[entry["class_name"]].from_config(entry["config"])
        return cls(layer, **config)
