"""BatchNormalization over the last axis (Dense outputs (N, U), NHWC conv outputs (N, H, W, C))."""

import numpy as np

from .. import initializers
from .base import Layer


class BatchNormalization(Layer):
    """Keras's BatchNormalization on the channel (last) axis.

    Training (``forward(x, training=True)``): ``y = (x - mean) / sqrt(var + epsilon) * gamma +
    beta`` with the batch's mean and biased variance, and the moving statistics move toward
    them: ``moving = moving * momentum + batch * (1 - momentum)``. Inference: the moving
    statistics instead. Weights, in Keras's order: gamma, beta (when ``scale``/``center``),
    moving_mean, moving_variance; the last two are not trainable (counted by count_params,
    never updated by an optimizer, their grads stay zero). As in Keras, a layer with
    ``trainable = False`` runs in inference mode even when called with training=True.
    Forward and backward are one C++ call each (double-accumulated per-channel sums).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 input_shape=None, dtype=None, name=None, trainable=True):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name, trainable=trainable)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{self.name}: axis must be an int (the channel axis, -1), got "
                            f"{axis!r}")
        self.axis = int(axis)
        self.momentum = _number(momentum, "momentum", self.name)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"{self.name}: momentum must be in [0, 1], got {momentum!r}")
        self.epsilon = _number(epsilon, "epsilon", self.name)
        if not self.epsilon > 0.0:
            raise ValueError(f"{self.name}: epsilon must be > 0, got {epsilon!r}")
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self._cache = None

    def compute_output_shape(self, input_shape):
        rank = len(input_shape) + 1  # with the batch axis
        if not input_shape:
            raise ValueError(f"{self.name}: BatchNormalization needs inputs (batch, ..., "
                             f"channels), got input shape (batch,)")
        if self.axis not in (-1, rank - 1):
            raise ValueError(f"{self.name}: only the last axis can be normalized (axis=-1 or "
                             f"{rank - 1} for inputs of rank {rank}), got axis={self.axis}")
        return tuple(input_shape)

    def build_weights(self, input_shape):
        channels = (input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", channels, self.gamma_initializer)
        if self.center:
            self.add_weight("beta", channels, self.beta_initializer)
        self._moving = len(self.weights)  # index of moving_mean; moving_variance follows
        self.add_weight("moving_mean", channels, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", channels, self.moving_variance_initializer,
                        trainable=False)

    def _affine(self, weights):
        """(gamma, beta) of `weights` (either may be None)."""
        gamma = weights[0] if self.scale else None
        beta = weights[int(self.scale)] if self.center else None
        return gamma, beta

    def call_forward(self, x, training):
        training = bool(training) and self.trainable
        w = self.arrays[0]
        gamma, beta = self._affine(w)
        y, mean, inv_std = self.backend.batchnorm_forward(
            x, gamma, beta, w[self._moving], w[self._moving + 1],
            self.momentum, self.epsilon, training)
        self._cache = (x, mean, inv_std, training)
        return y

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x, mean, inv_std, training = self._cache
        if dy.shape != x.shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {x.shape}, got "
                             f"{dy.shape}")
        w, g = self.arrays
        gamma, _ = self._affine(w)
        dgamma, dbeta = self._affine(g)
        return self.backend.batchnorm_backward(dy, x, gamma, mean, inv_std, training, dgamma,
                                               dbeta, need_dx, accumulate)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **{f"{w}_initializer": initializers.serialize(getattr(self, f"{w}_initializer"))
                   for w in ("beta", "gamma", "moving_mean", "moving_variance")}}


def _number(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {what} must be a number, got {value!r}")
    return float(value)
