"""Merge layers, called on a list of inputs: Add (the join of a residual block)."""

import numpy as np

from .base import Layer, normalize_shape, to_array


class Add(Layer):
    """The element-wise sum of a list of same-shape inputs (no broadcasting); backward hands
    dy to every input, since d(x1 + x2 + ...)/dxi = 1. In a functional model:
    ``z = Add()([x, y])``; on data: ``Add()([a, b])``."""

    multiple_inputs = True

    def __init__(self, dtype=None, name=None, input_shape=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self._cache = None

    def normalize_input_shape(self, input_shape):
        if (not isinstance(input_shape, (list, tuple)) or not input_shape
                or not all(isinstance(s, (list, tuple)) for s in input_shape)):
            raise ValueError(f"{self.name}: Add takes a list of inputs, so build() a list of "
                             f"their shapes, got {input_shape!r}")
        return [normalize_shape(s) for s in input_shape]

    def compute_output_shape(self, input_shape):
        shapes = self.normalize_input_shape(input_shape)
        for shape in shapes[1:]:
            if shape != shapes[0]:
                raise ValueError(f"{self.name}: Add needs inputs of one shape, got "
                                 f"{' and '.join(str(s) for s in shapes)}")
        return shapes[0]

    def check_input(self, x, what="input"):
        if not isinstance(x, (list, tuple)) or not x:
            raise ValueError(f"{self.name}: Add takes a non-empty list of arrays, got "
                             f"{type(x).__name__}")
        xs = [to_array(v, self.dtype, self.name, f"{what} {i}") for i, v in enumerate(x)]
        if any(v.ndim < 1 for v in xs):
            raise ValueError(f"{self.name}: each input must have a batch axis, got shapes "
                             f"{[v.shape for v in xs]}")
        shapes = [v.shape[1:] for v in xs]
        self.build(shapes)  # builds on first use, else checks the shapes
        if len({v.shape[0] for v in xs}) > 1:
            raise ValueError(f"{self.name}: inputs have different batch sizes "
                             f"{[v.shape[0] for v in xs]}")
        return xs

    def call_forward(self, xs, training):
        y = np.add(xs[0], xs[1]) if len(xs) > 1 else xs[0].copy()
        for x in xs[2:]:
            np.add(y, x, out=y)
        self._cache = (len(xs), y.shape)
        return y

    def call_backward(self, dy, need_dx=True, accumulate=True):
        """[dy, dy, ...], one per input: the same array, which the caller must not modify."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        n, shape = self._cache
        if dy.shape != shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {shape}, got "
                             f"{dy.shape}")
        return [dy] * n
