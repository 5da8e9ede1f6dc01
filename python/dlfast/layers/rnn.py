"""GRU and SimpleRNN over (batch, time, features) sequences, Keras 3's layouts; each whole time
loop, forward and backward, is one C++ call (csrc/cpu/gru.cpp, csrc/cpu/simple_rnn.cpp)."""

from .. import initializers
from .base import Layer, positive_int, to_array
from .symbolic import as_symbolic


class _OneStateRNN(Layer):
    """What GRU and SimpleRNN share: one state h; the output is the last h (batch, units), or
    every h (batch, time, units) with return_sequences; with return_state the list
    ``[output, h]``, and ``backward`` then takes ``[d_output, dh]`` (None counts as zeros).
    ``forward(x, initial_state=h0)`` (or ``[h0]``) starts from h0 (batch, units) instead of
    zeros, and ``backward`` then returns ``[dx, dh0]``."""

    kind = ""  # the kernels' prefix: gru, simple_rnn

    def __init__(self, units, return_sequences, return_state, use_bias, kernel_initializer,
                 recurrent_initializer, bias_initializer, input_shape, dtype, name):
        super().__init__(input_shape=input_shape, dtype=dtype, name=name)
        self.units = positive_int(units, f"{self.name}: units")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._cache = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self.name}: {type(self).__name__} needs inputs (batch, time, "
                             f"features), got input shape (batch, "
                             f"{', '.join(map(str, input_shape))})")
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def build_weights(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"{self.name}: the feature count (last axis) must be known")
        gates = self.gates * self.units
        self.add_weight("kernel", (input_shape[-1], gates), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (self.units, gates), self.recurrent_initializer)
        if self.use_bias:
            self.add_weight("bias", self.bias_shape(), self.bias_initializer)

    def _shape_matches(self, shape):  # any number of time steps, the built feature count
        return len(shape) == 2 and shape[1] == self.input_shape[1]

    @property
    def multiple_outputs(self):  # [output, h]: not a model's layer (see Layer)
        return self.return_state

    # --- forward ------------------------------------------------------------------------------
    def forward(self, x, training=False, initial_state=None):
        """The layer's output for x (batch, time, features), from ``initial_state`` (h0 or
        [h0], (batch, units)) or zeros."""
        return self.call_forward(self.check_input(x), training, initial_state)

    def __call__(self, x, training=False, initial_state=None):
        if initial_state is None:
            return super().__call__(x, training)  # data, or a call recorded on an Input
        if as_symbolic(x) is not None:
            raise ValueError(f"{self.name}: initial_state cannot be given in a functional "
                             f"model's graph (a layer there takes one input)")
        return self.forward(x, training=training, initial_state=initial_state)

    def _h0(self, initial_state, n):
        if initial_state is None:
            return None
        if isinstance(initial_state, (list, tuple)):
            if len(initial_state) != 1:
                raise ValueError(f"{self.name}: initial_state must be h0 or [h0], got a list of "
                                 f"{len(initial_state)}")
            initial_state = initial_state[0]
        h0 = to_array(initial_state, self.dtype, self.name, "initial_state h0")
        if h0.shape != (n, self.units):
            raise ValueError(f"{self.name}: initial_state h0 must have shape (batch, units) = "
                             f"{(n, self.units)}, got {h0.shape}")
        return h0

    def call_forward(self, x, training, initial_state=None):
        h0 = self._h0(initial_state, x.shape[0])
        w, kernels = self.arrays[0], self.backend
        out = getattr(kernels, f"{self.kind}_forward")(
            x, w[0], w[1], w[2] if self.use_bias else None, h0)
        H, saved = (out[0], list(out[1:])) if isinstance(out, tuple) else (out, [])
        self._cache = (x, h0, H, saved)
        out = H if self.return_sequences else kernels.last_step(H, "h")
        return [out, kernels.last_step(H, "h")] if self.return_state else out

    # --- backward -----------------------------------------------------------------------------
    def backward(self, dy):
        """Backward through time of the last forward: adds the weight gradients into
        ``self.grads``; returns dx, or ``[dx, dh0]`` after a forward with an initial state."""
        if not self.built or self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        if isinstance(dy, (list, tuple)):
            dy = type(dy)(g if g is None or i > 1 else
                          to_array(g, self.dtype, self.name, ("dy", "dh")[i])
                          for i, g in enumerate(dy))
        else:
            dy = to_array(dy, self.dtype, self.name, "dy")
        return self.call_backward(dy)

    def _checked(self, g, shape, what):
        if g is not None and g.shape != shape:
            raise ValueError(f"{self.name}: {what} must have shape {shape}, got {g.shape}")
        return g

    def call_backward(self, dy, need_dx=True, accumulate=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x, h0, H, saved = self._cache
        n, _, u = H.shape
        if self.return_state:
            if not isinstance(dy, (list, tuple)) or len(dy) != 2:
                raise ValueError(f"{self.name}: with return_state, backward expects the list "
                                 f"[d_output, dh], got {type(dy).__name__}")
            d_out, dh = dy
        else:
            if isinstance(dy, (list, tuple)):
                raise ValueError(f"{self.name}: backward expects one array dy (the layer was "
                                 f"built with return_state=False), got a {type(dy).__name__}")
            d_out, dh = dy, None
        d_out = self._checked(d_out, H.shape if self.return_sequences else (n, u), "dy")
        dh = self._checked(dh, (n, u), "dh")
        dH = d_out if self.return_sequences else None
        if not self.return_sequences and d_out is not None:
            dh = d_out if dh is None else d_out + dh
        w, g = self.arrays
        dx, dh0 = getattr(self.backend, f"{self.kind}_backward")(
            dH, dh, x, w[0], w[1], h0, H, *saved, g[0], g[1], g[2] if self.use_bias else None,
            need_dx, h0 is not None, accumulate)
        return dx if h0 is None else [dx, dh0]

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "use_bias": self.use_bias,
                **{f"{w}_initializer": initializers.serialize(getattr(self, f"{w}_initializer"))
                   for w in ("kernel", "recurrent", "bias")}}


class GRU(_OneStateRNN):
    """Keras 3's GRU with ``reset_after=True`` (its default; the only form here): kernel
    (features, 3*units), recurrent_kernel (units, 3*units), bias (2, 3*units) (the input
    bias, then the recurrent bias), gate columns z, r, h~:
    ``z, r = sigmoid(x W_z + b_z + h R_z + c_z), sigmoid(...)``,
    ``h~ = tanh(x W_h + b_h + r * (h R_h + c_h))``, ``h = z * h_prev + (1 - z) * h~``.
    See ``_OneStateRNN`` for outputs, states and backward."""

    kind, gates, keras_cell = "gru", 3, "gru_cell"

    def __init__(self, units, reset_after=True, return_sequences=False, return_state=False,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 input_shape=None, dtype=None, name=None):
        if reset_after is not True:
            raise ValueError(f"GRU: only reset_after=True (Keras 3's default) is supported, got "
                             f"reset_after={reset_after!r}")
        super().__init__(units, return_sequences, return_state, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, input_shape, dtype, name)
        self.reset_after = True

    def bias_shape(self):
        return (2, 3 * self.units)

    def get_config(self):
        return {**super().get_config(), "reset_after": True}


class SimpleRNN(_OneStateRNN):
    """Keras's SimpleRNN with activation tanh: ``h = tanh(x kernel + h_prev recurrent_kernel
    + bias)``; kernel (features, units), recurrent_kernel (units, units), bias (units,). See
    ``_OneStateRNN`` for outputs, states and backward."""

    kind, gates, keras_cell = "simple_rnn", 1, "simple_rnn_cell"

    def __init__(self, units, activation="tanh", return_sequences=False, return_state=False,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 input_shape=None, dtype=None, name=None):
        if activation != "tanh":
            raise ValueError(f"SimpleRNN: only activation='tanh' (Keras's default) is "
                             f"supported, got {activation!r}")
        super().__init__(units, return_sequences, return_state, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, input_shape, dtype, name)
        self.activation = "tanh"

    def bias_shape(self):
        return (self.units,)

    def get_config(self):
        return {**super().get_config(), "activation": "tanh"}
