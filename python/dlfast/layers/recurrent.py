"""LSTM over (batch, time, features) sequences, with Keras's weights and gate order."""

import numpy as np

from .. import initializers
from .base import Layer, positive_int, to_array
from .symbolic import as_symbolic


class LSTM(Layer):
    """The course's LSTM with forget gate (Gers, Schmidhuber & Cummins 2000), Keras's layout:
    kernel (features, 4*units), recurrent_kernel (units, 4*units), bias (4*units,), gates
    i, f, c~, o; h0 = c0 = 0 unless ``initial_state=[h0, c0]`` is given to ``forward``.

    Output: the last h (batch, units), or every h (batch, time, units) with return_sequences;
    with return_state, the list ``[output, h, c]``, and ``backward`` then takes the matching
    list ``[d_output, dh, dc]`` (None entries count as zeros). ``backward`` returns dx, or
    ``[dx, dh0, dc0]`` when the forward was given an initial state.

    The whole time loop, forward and backward, is one C++ call (csrc/cpu/lstm.cpp). Sequences
    of any length run through a built layer; only the feature count is fixed.
    """

    #: Keras keeps an LSTM's weights in its cell: the name of that object in Keras's files
    keras_cell = "lstm_cell"

    def __init__(self, units, return_sequences=False, return_state=False, unit_forget_bias=True,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 input_shape=None, dtype=None, name=None):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.units = positive_int(units, f"{self.name}: units")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._cache = None

    # --- shapes and weights -------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self.name}: LSTM needs inputs (batch, time, features), got "
                             f"input shape (batch, {', '.join(map(str, input_shape))})")
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def build_weights(self, input_shape):
        u = self.units
        if input_shape[-1] is None:
            raise ValueError(f"{self.name}: the feature count (last axis) must be known")
        self.add_weight("kernel", (input_shape[-1], 4 * u), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (u, 4 * u), self.recurrent_initializer)
        if self.use_bias:
            init = self.bias_initializer
            if self.unit_forget_bias:  # Keras: the forget gate's bias starts at 1
                base = init

                def init(shape, dtype):
                    b = np.array(base((4 * u,), dtype), dtype=dtype)
                    b[u:2 * u] = 1
                    return b
            self.add_weight("bias", (4 * u,), init)

    def _shape_matches(self, shape):  # any number of time steps, the built feature count
        return len(shape) == 2 and shape[1] == self.input_shape[1]

    # --- forward ------------------------------------------------------------------------------
    def forward(self, x, training=False, initial_state=None):
        """The layer's output for x (batch, time, features), from ``initial_state=[h0, c0]``
        (each (batch, units)) or zeros; see the class docstring for what it returns."""
        x = self.check_input(x)
        return self.call_forward(x, training, initial_state)

    def __call__(self, x, training=False, initial_state=None):
        if initial_state is None:
            return super().__call__(x, training)  # data, or a call recorded on an Input
        if as_symbolic(x) is not None:
            raise ValueError(f"{self.name}: initial_state cannot be given in a functional "
                             f"model's graph (a layer there takes one input)")
        return self.forward(x, training=training, initial_state=initial_state)

    @property
    def multiple_outputs(self):  # [output, h, c]: not a model's layer (see Layer)
        return self.return_state

    def _initial_state(self, initial_state, n):
        if initial_state is None:
            return None, None
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
            raise ValueError(f"{self.name}: initial_state must be a list [h0, c0], got "
                             f"{type(initial_state).__name__}"
                             + (f" of length {len(initial_state)}"
                                if isinstance(initial_state, (list, tuple)) else ""))
        states = []
        for what, s in zip(("h0", "c0"), initial_state):
            s = to_array(s, self.dtype, self.name, f"initial_state {what}")
            if s.shape != (n, self.units):
                raise ValueError(f"{self.name}: initial_state {what} must have shape (batch, "
                                 f"units) = {(n, self.units)}, got {s.shape}")
            states.append(s)
        return states

    def call_forward(self, x, training, initial_state=None):
        h0, c0 = self._initial_state(initial_state, x.shape[0])
        w, kernels = self.arrays[0], self.backend
        H, C, Z = kernels.lstm_forward(x, w[0], w[1], w[2] if self.use_bias else None, h0, c0)
        self._cache = (x, h0, c0, H, C, Z)
        out = H if self.return_sequences else kernels.last_step(H, "h")
        if self.return_state:
            return [out, kernels.last_step(H, "h"), kernels.last_step(C, "c")]
        return out

    # --- backward -----------------------------------------------------------------------------
    def backward(self, dy):
        """Backward through time of the last forward: adds the weight gradients into
        ``self.grads``; returns dx, or ``[dx, dh0, dc0]`` after a forward with an initial
        state."""
        if not self.built or self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        if isinstance(dy, (list, tuple)):
            dy = type(dy)(g if g is None or i > 2 else
                          to_array(g, self.dtype, self.name, ("dy", "dh", "dc")[i])
                          for i, g in enumerate(dy))
        else:
            dy = to_array(dy, self.dtype, self.name, "dy")
        return self.call_backward(dy)

    def _grad(self, g, shape, what):
        if g is not None and g.shape != shape:
            raise ValueError(f"{self.name}: {what} must have shape {shape}, got {g.shape}")
        return g

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x, h0, c0, H, C, Z = self._cache
        n, steps, u = H.shape
        out_shape = H.shape if self.return_sequences else (n, u)
        if self.return_state:
            if not isinstance(dy, (list, tuple)) or len(dy) != 3:
                raise ValueError(f"{self.name}: with return_state, backward expects the list "
                                 f"[d_output, dh, dc], got {type(dy).__name__}")
            d_out, dh, dc = dy
        else:
            if isinstance(dy, (list, tuple)):
                raise ValueError(f"{self.name}: backward expects one array dy (the layer was "
                                 f"built with return_state=False), got a "
                                 f"{type(dy).__name__}")
            d_out, dh, dc = dy, None, None
        d_out = self._grad(d_out, out_shape, "dy")
        dh = self._grad(dh, (n, u), "dh")
        dc = self._grad(dc, (n, u), "dc")
        dH = d_out if self.return_sequences else None
        if not self.return_sequences and d_out is not None:
            dh = d_out if dh is None else d_out + dh
        w, g = self.arrays
        dx, dh0, dc0 = self.backend.lstm_backward(dH, dh, dc, x, w[0], w[1], h0, c0, H, C, Z,
                                                  g[0], g[1], g[2] if self.use_bias else None,
                                                  need_dx, h0 is not None, accumulate)
        return dx if h0 is None else [dx, dh0, dc0]

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "unit_forget_bias": self.unit_forget_bias, "use_bias": self.use_bias,
                **{f"{w}_initializer": initializers.serialize(getattr(self, f"{w}_initializer"))
                   for w in ("kernel", "recurrent", "bias")}}
