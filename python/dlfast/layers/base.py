"""The Layer base class: weights, gradients, build, forward/backward, input checks."""

import functools
import inspect
import re

import numpy as np

from .. import _arrays
from ..backend import cpu as cpu_backend
from .symbolic import SymbolicTensor, as_symbolic

_name_counts = {}
_ALIGN = 16  # elements: each packed weight starts on a 64-byte boundary of its buffer (float32)
_trainable_version = 0  # bumped whenever any layer's trainable flag is set (see Layer.trainable)


def trainable_version():
    """A number that changes whenever any layer's ``trainable`` is set: models cache the list
    of arrays their optimizer updates and rebuild it when this moves."""
    return _trainable_version


def _auto_name(cls_name):
    # Keras's snake case: Dense -> dense, Conv2D -> conv2d, MaxPooling2D -> max_pooling2d
    base = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls_name)
    base = re.sub(r"([a-z])([A-Z])", r"\1_\2", base).lower()
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def normalize_shape(shape, what="input_shape"):
    """A shape as a tuple of positive ints (None allowed for unknown sizes)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(None if s is None else int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a tuple of ints, got {shape!r}") from None
    if any(s is not None and s <= 0 for s in shape):
        raise ValueError(f"{what} must hold positive sizes, got {shape}")
    return shape


def positive_int(value, what):
    """value as an int, checked: a positive int (numpy ints too; a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


class Layer:
    """Base of every layer (and of models: a model is a layer).

    Subclasses implement ``build_weights(input_shape)`` (create weights through
    ``add_weight``), ``compute_output_shape``, ``call_forward(x, training)`` and
    ``call_backward(dy)``. ``forward`` / ``backward`` add the input checks and casts.
    ``backward`` ADDS weight gradients into ``self.grads`` and returns the input gradient.
    ``call_forward`` / ``call_backward`` compute through ``self.backend`` on ``self.arrays``
    (the device's after ``model.to('cuda')``: see dlfast.backend).

    Calling a layer on an ``Input`` (or on a symbolic tensor) records the call for a
    functional model instead of computing. ``get_config()`` returns the constructor's keyword
    arguments (plus name and dtype) as JSON-able values, and ``cls.from_config(config)``
    rebuilds the layer from them: that is how a saved model is rebuilt.
    """

    #: True for layers called on a list of inputs (Add)
    multiple_inputs = False
    #: True for layers whose forward returns a list of outputs (LSTM with return_state): a
    #: model (Sequential or functional) passes one array from layer to layer, so it refuses
    #: them; they run only on arrays, in a hand-written loop
    multiple_outputs = False
    #: the kernels call_forward / call_backward run (dlfast.backend.cpu, or a layer's own
    #: dlfast.backend.cuda.Kernels after model.to('cuda'))
    backend = cpu_backend

    def __init_subclass__(cls, **kwargs):
        """Every layer takes Keras's base-layer keyword ``trainable=`` (``Dense(4,
        trainable=False)``) without each constructor listing it: a constructor that neither
        names it nor takes ``**kwargs`` is wrapped to accept it and set it once built."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        params = inspect.signature(init).parameters.values()
        if any(p.name == "trainable" or p.kind is p.VAR_KEYWORD for p in params):
            return

        @functools.wraps(init)
        def __init__(self, *args, trainable=True, **kwargs):
            init(self, *args, **kwargs)
            if not trainable:
                self.trainable = False

        cls.__init__ = __init__

    def __init__(self, input_shape=None, dtype=None, name=None, trainable=True):
        self.name = name or _auto_name(type(self).__name__)
        self.dtype = np.dtype(dtype or "float32")
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"{self.name}: dtype must be float32 or float64, got {self.dtype}")
        self.trainable = trainable
        self.built = False
        weights, grads = [], []
        self.weights, self.grads = weights, grads
        # The (weights, grads) lists the kernels run on (dlfast.backend): the host lists
        # themselves, until model.to('cuda') gives the device's.
        self.arrays = (weights, grads)
        self.weight_names = []
        self.weight_trainable = []  # per weight: False for state such as moving statistics
        self.input_shape = None  # without the batch axis
        self.output_shape = None
        self._declared_input_shape = None if input_shape is None else normalize_shape(input_shape)

    @property
    def trainable(self):
        """Whether an optimizer step updates this layer's weights. It may be set at any time
        and is honoured at the next step of every model holding the layer (Keras 3); setting
        it on a model sets it on all the model's layers."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        global _trainable_version
        self._trainable = bool(value)
        _trainable_version += 1

    # --- building ---------------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis excluded). Idempotent;
        a different shape after building is an error."""
        input_shape = self.normalize_input_shape(input_shape)
        if self.built:
            if input_shape != self.input_shape:
                raise ValueError(f"{self.name}: already built for input shape "
                                 f"{self.input_shape}, got {input_shape}")
            return
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        self.input_shape = input_shape
        self.build_weights(input_shape)
        self._pack_parameters()
        self.built = True

    def normalize_input_shape(self, input_shape):
        return normalize_shape(input_shape)

    def build_weights(self, input_shape):
        pass

    def add_weight(self, name, shape, initializer, trainable=True):
        """A new weight (and its zero gradient); ``trainable=False`` marks state that the
        optimizer never touches (its gradient stays zero), e.g. moving statistics."""
        w = np.ascontiguousarray(initializer(tuple(shape), self.dtype), dtype=self.dtype)
        if w.shape != tuple(shape):
            raise ValueError(f"{self.name}: initializer for '{name}' returned shape {w.shape}, "
                             f"expected {tuple(shape)}")
        self.weights.append(w)
        self.grads.append(np.zeros_like(w))
        self.weight_names.append(name)
        self.weight_trainable.append(bool(trainable))
        return len(self.weights) - 1

    def _pack_parameters(self):
        """Move the trainable weights (and their gradients) into one buffer each, aligned,
        leaving views in ``self.weights`` / ``self.grads``: an optimizer step then takes one
        array per layer. The buffers are where the weights live from now on, never moved: a
        layer held by several models is one set of arrays, and an optimizer's state kept
        beside a buffer outlives the layer being frozen and unfrozen."""
        entries = [i for i, t in enumerate(self.weight_trainable) if t]
        self._packed = None
        if not entries:
            return
        sizes = [self.weights[i].size for i in entries]
        offsets = np.cumsum([0] + [-(-n // _ALIGN) * _ALIGN for n in sizes]).tolist()
        flat_w = np.zeros(offsets[-1], self.dtype)
        flat_g = np.zeros(offsets[-1], self.dtype)
        for i, off, n in zip(entries, offsets, sizes):
            shape = self.weights[i].shape
            w_view, g_view = (flat[off:off + n].reshape(shape) for flat in (flat_w, flat_g))
            w_view[...], g_view[...] = self.weights[i], self.grads[i]
            self.weights[i], self.grads[i] = w_view, g_view
        self._packed = (flat_w, flat_g, dict(zip(entries, offsets)))

    def optimizer_arrays(self):
        """(grads, weights): the arrays an optimizer step updates for this layer (its packed
        buffers, or its trainable weights one by one when it was built without packing);
        empty when the layer is frozen."""
        if not self.trainable:
            return [], []
        packed = getattr(self, "_packed", None)
        if packed is not None:
            return [packed[1]], [packed[0]]
        pairs = [(g, w) for w, g, t in zip(self.weights, self.grads, self.weight_trainable) if t]
        return [g for g, _ in pairs], [w for _, w in pairs]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # --- running ----------------------------------------------------------------------------
    def __call__(self, x, training=False):
        symbolic = as_symbolic(x)
        if symbolic is not None:
            return self.call_symbolic(symbolic)
        return self.forward(x, training=training)

    def call_symbolic(self, inputs):
        """Record this layer's call on symbolic tensors: build it for their shapes and dtype
        (a functional model runs in its input's dtype) and return the symbolic output."""
        if self.multiple_outputs:
            raise ValueError(self._one_output_message("a functional model"))
        many = isinstance(inputs, list)
        if many != self.multiple_inputs:
            raise ValueError(f"{self.name}: {type(self).__name__} takes "
                             + ("a list of inputs" if self.multiple_inputs else "one input")
                             + (f", got a list of {len(inputs)}" if many else ", got one"))
        tensors = inputs if many else [inputs]
        dtypes = {t.dtype for t in tensors}
        if len(dtypes) > 1:
            raise TypeError(f"{self.name}: inputs of different dtypes "
                            f"{sorted(d.name for d in dtypes)}")
        dtype = dtypes.pop()
        if not self.built:
            self.dtype = dtype
        elif self.dtype != dtype:
            raise TypeError(f"{self.name}: the layer is built for {self.dtype.name}, called on a "
                            f"{dtype.name} tensor")
        self.build([t.shape[1:] for t in tensors] if many else inputs.shape[1:])
        return SymbolicTensor(self.output_shape, self.dtype, self, tensors)

    def _one_output_message(self, where):
        return (f"{self.name}: this {type(self).__name__} gives a list of outputs, and a layer "
                f"of {where} must give one; run it on arrays instead")

    def forward(self, x, training=False):
        """The layer's output for ``x`` (batch axis first); ``training`` switches Dropout
        and BatchNormalization to their training behaviour. Checks and casts ``x`` (and
        builds the layer on first use), then keeps what ``backward`` needs."""
        x = self.check_input(x)
        return self.call_forward(x, training)

    def backward(self, dy):
        """Backward of the last ``forward``: ADDS the weight gradients into ``self.grads``
        and returns the input gradient ``dx``."""
        if not self.built:
            raise RuntimeError(f"{self.name}: backward called before forward")
        return self.call_backward(self.check_grad(dy))

    def call_forward(self, x, training):
        raise NotImplementedError

    def call_backward(self, dy, need_dx=True, accumulate=True):
        """The input gradient (None when not need_dx); weight gradients are added into
        self.grads, or written over them when accumulate is False (a model's training step
        uses that instead of zeroing them first)."""
        raise NotImplementedError

    def check_input(self, x, what="input"):
        """x as a C-contiguous array of this layer's dtype with a batch axis and the built
        shape after it (builds the layer on first use)."""
        if type(x) is not np.ndarray or x.dtype != self.dtype or not x.flags.c_contiguous:
            x = to_array(x, self.dtype, self.name, what)
        if x.ndim < 1:
            raise ValueError(f"{self.name}: {what} must have a batch axis, got a scalar")
        if not self.built:
            self.build(x.shape[1:])
        elif x.shape[1:] != self.input_shape and not self._shape_matches(x.shape[1:]):
            raise ValueError(f"{self.name}: expected input of shape (batch, "
                             f"{', '.join(map(str, self.input_shape))}), got {x.shape}"
                             + self._shape_hint(x.shape))
        return x

    def _shape_matches(self, shape):
        return len(shape) == len(self.input_shape) and all(
            a is None or a == b for a, b in zip(self.input_shape, shape))

    def _shape_hint(self, shape):
        if len(shape) - 1 != len(self.input_shape):
            return (f": rank {len(shape)} where rank {len(self.input_shape) + 1} was "
                    f"expected")
        return ""

    def check_grad(self, dy):
        if type(dy) is not np.ndarray or dy.dtype != self.dtype or not dy.flags.c_contiguous:
            dy = to_array(dy, self.dtype, self.name, "dy")
        return dy

    # --- regularization (Keras adds the penalties to the loss) ------------------------------
    def regularization_loss(self):
        """The penalty of this layer's weight regularizers (0.0 without any): what a model
        adds to the loss it reports."""
        return 0.0

    def add_regularization_grads(self):
        """Adds the regularizers' gradients into ``self.grads`` and returns their penalty.
        ``backward`` never does it: a model's training step calls this after backward, and a
        hand-written loop should too (then add the returned penalty to its loss)."""
        return 0.0

    # --- weights ----------------------------------------------------------------------------
    def zero_grad(self):
        """Set every gradient in ``self.grads`` to zero (``backward`` adds into them)."""
        for g in self.grads:
            g.fill(0)

    def get_weights(self):
        """Copies of the weights, in Keras's order (e.g. Dense: kernel, bias)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Write ``weights`` (a list in ``get_weights`` order, same shapes) into the layer's
        arrays in place; checks them all before writing any."""
        weights = list(weights)
        if len(weights) != len(self.weights):
            raise ValueError(f"{self.name}: set_weights expected a list of {len(self.weights)} "
                             f"arrays {[w.shape for w in self.weights]}, got {len(weights)}")
        new = []
        for i, (w, v) in enumerate(zip(self.weights, weights)):
            v = np.asarray(v)
            if v.dtype.kind not in "biuf":
                raise TypeError(f"{self.name}: set_weights: weight {i} "
                                f"('{self.weight_names[i]}') must be numeric, got dtype {v.dtype}")
            if v.shape != w.shape:
                raise ValueError(f"{self.name}: set_weights: weight {i} "
                                 f"('{self.weight_names[i]}') expected shape {w.shape}, got "
                                 f"{v.shape}")
            new.append(v)
        for w, v in zip(self.weights, new):
            w[...] = v

    def count_params(self):
        """The number of weight values, non-trainable ones included (as Keras counts)."""
        return int(sum(w.size for w in self.weights))

    @property
    def trainable_weights(self):
        """The weights the optimizer updates (none when the layer is frozen), as Keras."""
        return [w for w, t in zip(self.weights, self.weight_trainable) if t and self.trainable]

    @property
    def non_trainable_weights(self):
        """The weights the optimizer leaves alone (moving statistics; all of a frozen layer)."""
        return [w for w, t in zip(self.weights, self.weight_trainable)
                if not (t and self.trainable)]

    def get_config(self):
        """The constructor's keyword arguments as JSON-able values (plus name and dtype):
        ``type(layer).from_config(layer.get_config())`` rebuilds the layer."""
        config = {"name": self.name, "dtype": self.dtype.name}
        if not self.trainable:
            config["trainable"] = False
        if self._declared_input_shape is not None:
            config["input_shape"] = self._declared_input_shape
        return config

    @classmethod
    def from_config(cls, config):
        """The layer that ``get_config`` describes (weights are set separately)."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def to_array(x, dtype, owner, what):
    """x as a C-contiguous numpy array of `dtype` (numbers are cast as Keras casts them)."""
    return _arrays.to_array(x, dtype, f"{owner}: {what}")
