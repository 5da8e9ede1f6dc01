"""LayerNormalization and Embedding (Keras 3's names, defaults and weights)."""

import numpy as np

from .. import initializers
from .base import Layer, positive_int
from .normalization import _number


class LayerNormalization(Layer):
    """Keras's LayerNormalization over the last axis: each sample's features normalised to
    zero mean and unit variance, ``y = (x - mean) / sqrt(var + epsilon) * gamma + beta``
    (biased variance, per sample, the same in training and inference). Weights, in Keras's
    order: gamma, beta (when ``scale``/``center``), each (features,). Forward and backward are
    one C++ call each (csrc/cpu/layernorm.cpp)."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", input_shape=None,
                 dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{self.name}: axis must be an int (-1, the last axis), got "
                            f"{axis!r}")
        self.axis = int(axis)
        self.epsilon = _number(epsilon, "epsilon", self.name)
        if not self.epsilon > 0.0:
            raise ValueError(f"{self.name}: epsilon must be > 0, got {epsilon!r}")
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self._cache = None

    def compute_output_shape(self, input_shape):
        rank = len(input_shape) + 1
        if not input_shape:
            raise ValueError(f"{self.name}: LayerNormalization needs inputs (batch, ..., "
                             f"features), got input shape (batch,)")
        if self.axis not in (-1, rank - 1):
            raise ValueError(f"{self.name}: only the last axis can be normalized (axis=-1 or "
                             f"{rank - 1} for inputs of rank {rank}), got axis={self.axis}")
        return tuple(input_shape)

    def build_weights(self, input_shape):
        if self.scale:
            self.add_weight("gamma", input_shape[-1:], self.gamma_initializer)
        if self.center:
            self.add_weight("beta", input_shape[-1:], self.beta_initializer)

    def _shape_matches(self, shape):  # any leading lengths (a sequence's time steps)
        return len(shape) == len(self.input_shape) and shape[-1] == self.input_shape[-1]

    def _affine(self, arrays):
        gamma = arrays[0] if self.scale else None
        beta = arrays[int(self.scale)] if self.center else None
        return gamma, beta

    def call_forward(self, x, training):
        gamma, beta = self._affine(self.arrays[0])
        y, mean, inv_std = self.backend.layernorm_forward(x, gamma, beta, self.epsilon)
        self._cache = (x, mean, inv_std)
        return y

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x, mean, inv_std = self._cache
        if dy.shape != x.shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {x.shape}, got "
                             f"{dy.shape}")
        w, g = self.arrays
        dgamma, dbeta = self._affine(g)
        return self.backend.layernorm_backward(dy, x, self._affine(w)[0], mean, inv_std,
                                               dgamma, dbeta, need_dx, accumulate)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer)}


class Embedding(Layer):
    """Keras's Embedding (its default initializer, uniform on [-0.05, 0.05]): integer ids (batch, ...) -> their rows of ``embeddings``
    (input_dim, output_dim), shape (batch, ..., output_dim). Float inputs holding whole numbers
    are read as ids (a model casts its input to its dtype); ids outside [0, input_dim) raise
    ValueError. Backward adds dy's rows into the table's gradient by id in C++ (a
    deterministic scatter-add, no one-hot) and returns None: ids have no gradient, so an
    Embedding is a model's first layer. Keras's ``mask_zero=True`` needs masks carried to the
    next layers, which dlfast does not have: it is refused rather than ignored."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="random_uniform",
                 mask_zero=False, input_shape=None, dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.input_dim = positive_int(input_dim, f"{self.name}: input_dim")
        self.output_dim = positive_int(output_dim, f"{self.name}: output_dim")
        if mask_zero:
            raise ValueError(f"{self.name}: mask_zero=True is not supported yet (dlfast does not "
                             f"carry masks to the next layers, so they would read the padding)")
        self.mask_zero = False
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self._cache = None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def build_weights(self, input_shape):
        self.add_weight("embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer)

    def _shape_matches(self, shape):  # any sequence length
        return len(shape) == len(self.input_shape)

    def check_input(self, x, what="input"):
        ids = np.asarray(x)
        if ids.dtype.kind in "iu":  # ids as they are: no cast through float
            if not self.built:
                self.build(ids.shape[1:])
            if not self._shape_matches(ids.shape[1:]):
                raise ValueError(f"{self.name}: expected ids of shape (batch, "
                                 f"{', '.join(map(str, self.input_shape))}), got {ids.shape}")
            return ids
        return super().check_input(x, what)

    def _ids(self, x):
        if x.dtype.kind in "iu":
            return np.ascontiguousarray(x, np.int64)
        if x.dtype.kind != "f" or not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise ValueError(f"{self.name}: expected integer ids, got values that are not "
                             f"whole numbers (dtype {x.dtype})")
        return x.astype(np.int64)

    def call_forward(self, x, training):
        ids = self._ids(x)
        self._cache = ids
        return self.backend.embedding_forward(ids, self.arrays[0][0])

    def call_backward(self, dy, need_dx=True, accumulate=True):
        ids = self._cache
        if ids is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        if dy.shape != ids.shape + (self.output_dim,):
            raise ValueError(f"{self.name}: dy must have the output's shape "
                             f"{ids.shape + (self.output_dim,)}, got {dy.shape}")
        self.backend.embedding_backward(dy, ids, self.arrays[1][0], accumulate)
        return None

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim, "mask_zero": self.mask_zero,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer)}
