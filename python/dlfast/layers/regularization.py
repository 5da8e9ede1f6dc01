"""Dropout: inverted dropout with Keras's semantics."""

import numpy as np

from .. import _random
from .base import Layer


class Dropout(Layer):
    """Keras's Dropout: in training, each input unit is zeroed with probability ``rate`` and
    the kept ones are scaled by ``1 / (1 - rate)`` (inverted dropout, so inference is the
    identity); ``backward`` reuses the forward's mask. ``noise_shape`` (batch axis included,
    None entries taken from the input) shares one mask value along the axes where it is 1,
    e.g. ``(None, 1, 1, C)`` drops whole channels of an NHWC map.

    The mask is drawn from dlfast's generator (so ``dlfast.manual_seed`` makes it
    repeatable) or, with ``seed``, from the layer's own generator ``rng``, as Keras's
    seeded layers. Done in NumPy: one uniform draw, one comparison and scaling into the
    draw's buffer, one multiply (no C++ kernel).
    """

    def __init__(self, rate, noise_shape=None, seed=None, input_shape=None, dtype=None,
                 name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
                or not 0.0 <= rate < 1.0:
            raise ValueError(f"{self.name}: rate must be a number in [0, 1) (the fraction of "
                             f"units to drop), got {rate!r}")
        self.rate = float(rate)
        if noise_shape is not None:
            try:
                noise_shape = tuple(None if s is None else int(s) for s in noise_shape)
            except (TypeError, ValueError):
                raise TypeError(f"{self.name}: noise_shape must be a tuple of ints or None, "
                                f"got {noise_shape!r}") from None
        self.noise_shape = noise_shape
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"{self.name}: seed must be a non-negative int or None, got "
                             f"{seed!r}")
        self.seed = None if seed is None else int(seed)
        self.rng = None if seed is None else np.random.default_rng(self.seed)
        self._mask = None
        self._shape = None

    def _mask_shape(self, shape):
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != len(shape):
            raise ValueError(f"{self.name}: noise_shape {self.noise_shape} must have the input's "
                             f"rank {len(shape)} (batch axis included), input shape {shape}")
        out = tuple(n if s is None else s for s, n in zip(self.noise_shape, shape))
        if any(s not in (1, n) for s, n in zip(out, shape)):
            raise ValueError(f"{self.name}: noise_shape {self.noise_shape} does not broadcast to "
                             f"the input shape {shape} (each entry must be None, 1 or the "
                             f"input's size)")
        return out

    def call_forward(self, x, training):
        self._shape = x.shape
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        generator = self.rng if self.rng is not None else _random.generator()
        mask = generator.random(self._mask_shape(x.shape), dtype=self.dtype)
        # mask <- (u >= rate) / (1 - rate), in the draw's own buffer
        np.multiply(mask >= self.rate, self.dtype.type(1.0 / (1.0 - self.rate)), out=mask)
        self._mask = mask
        return x * mask

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._shape is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        if dy.shape != self._shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {self._shape}, got "
                             f"{dy.shape}")
        return dy if self._mask is None else dy * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}
