"""Merge layers, called on a list of inputs: Add (the join of a residual block) and
Concatenate."""

import numpy as np

from .base import Layer, normalize_shape, to_array


class _Merge(Layer):
    """What the merge layers share: a list of inputs (``multiple_inputs``), built from the list
    of their shapes, and the checks of a list of arrays."""

    multiple_inputs = True

    def __init__(self, dtype=None, name=None, input_shape=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self._cache = None

    def normalize_input_shape(self, input_shape):
        if (not isinstance(input_shape, (list, tuple)) or not input_shape
                or not all(isinstance(s, (list, tuple)) for s in input_shape)):
            raise ValueError(f"{self.name}: {type(self).__name__} takes a list of inputs, so "
                             f"build() a list of their shapes, got {input_shape!r}")
        return [normalize_shape(s) for s in input_shape]

    def check_input(self, x, what="input"):
        kind = type(self).__name__
        if not isinstance(x, (list, tuple)) or not x:
            raise ValueError(f"{self.name}: {kind} takes a non-empty list of arrays, got "
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


class Add(_Merge):
    """The element-wise sum of a list of same-shape inputs (no broadcasting); backward hands
    dy to every input, since d(x1 + x2 + ...)/dxi = 1. In a functional model:
    ``z = Add()([x, y])``; on data: ``Add()([a, b])``."""

    def compute_output_shape(self, input_shape):
        shapes = self.normalize_input_shape(input_shape)
        for shape in shapes[1:]:
            if shape != shapes[0]:
                raise ValueError(f"{self.name}: Add needs inputs of one shape, got "
                                 f"{' and '.join(str(s) for s in shapes)}")
        return shapes[0]

    def call_forward(self, xs, training):
        add = self.backend.add
        y = add(xs[0], xs[1], "y") if len(xs) > 1 else self.backend.copy(xs[0], "y")
        for x in xs[2:]:
            y = add(y, x, "y")
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


class Concatenate(_Merge):
    """The inputs joined along ``axis`` (Keras's Concatenate; the batch axis counts, so -1 is
    the last axis and 0, the batch, is refused): shapes must match on every other axis.
    Backward splits dy along the axis, one C-contiguous piece per input. In a functional
    model: ``z = Concatenate()([a, b, c])``; on data: ``Concatenate(axis=1)([u, v])``."""

    def __init__(self, axis=-1, dtype=None, name=None, input_shape=None):
        super().__init__(dtype=dtype, name=name, input_shape=input_shape)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{self.name}: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def _input_axis(self, rank):
        """The axis in an input's shape without the batch axis (0-based), for inputs of
        `rank` dimensions after the batch."""
        full = rank + 1
        axis = self.axis + full if self.axis < 0 else self.axis
        if axis == 0:
            raise ValueError(f"{self.name}: Concatenate(axis={self.axis}) is the batch axis of "
                             f"inputs of rank {full} (batch included); join along an axis "
                             f"from 1 to {full - 1} (or -1 to -{full - 1})")
        if not 0 < axis < full:
            raise ValueError(f"{self.name}: Concatenate(axis={self.axis}) is out of range for "
                             f"inputs of rank {full} (batch included); expected an axis from "
                             f"1 to {full - 1} or -1 to -{full - 1}")
        return axis - 1

    def compute_output_shape(self, input_shape):
        shapes = self.normalize_input_shape(input_shape)
        shown = " and ".join("(batch, " + ", ".join(map(str, s)) + ")" for s in shapes)
        if len({len(s) for s in shapes}) > 1:
            raise ValueError(f"{self.name}: Concatenate needs inputs of one rank, got {shown}")
        if not shapes[0]:
            raise ValueError(f"{self.name}: Concatenate needs inputs with an axis after the "
                             f"batch, got {shown}")
        a = self._input_axis(len(shapes[0]))
        for s in shapes[1:]:
            if any(d != e for k, (d, e) in enumerate(zip(s, shapes[0])) if k != a):
                raise ValueError(f"{self.name}: Concatenate(axis={self.axis}) needs inputs of "
                                 f"matching shapes except on the concatenation axis, got "
                                 f"{shown}")
        sizes = [s[a] for s in shapes]
        joined = None if None in sizes else sum(sizes)
        return shapes[0][:a] + (joined,) + shapes[0][a + 1:]

    def call_forward(self, xs, training):
        axis = self._input_axis(xs[0].ndim - 1) + 1
        sizes = [x.shape[axis] for x in xs]
        y = np.concatenate(xs, axis=axis)
        self._cache = (axis, sizes, y.shape)
        return y

    def call_backward(self, dy, need_dx=True, accumulate=True):
        """[dx1, dx2, ...]: the pieces of dy along the axis, each a new C-contiguous array."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        axis, sizes, shape = self._cache
        if dy.shape != shape:
            raise ValueError(f"{self.name}: dy must have the output's shape {shape}, got "
                             f"{dy.shape}")
        pieces = np.split(dy, np.cumsum(sizes)[:-1], axis=axis)
        return [np.ascontiguousarray(p) for p in pieces]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
