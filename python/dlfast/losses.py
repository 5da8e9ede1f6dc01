"""Losses with Keras's names, formulas and reduction (mean over the batch).

Each loss object is callable as ``loss(y_true, y_pred) -> float`` and has
``value_and_grad(y_true, y_pred) -> (float, d loss / d y_pred)``, one C++ call for both.
When a model ends in softmax (or sigmoid) and its loss is a cross-entropy, the model fuses
the two: it feeds the logits with ``from_logits=True`` (stable for logits of any size)."""

import math

from . import ops


class Loss:
    """Base of the losses: ``loss(y_true, y_pred)`` is the mean loss (a float) and
    ``value_and_grad`` gives it with its gradient; ``from_logits`` (the cross-entropies)
    reads y_pred as logits. ``kernel_name`` is the kernel's name in ``dlfast.ops.LOSSES``."""
    kernel_name = None
    #: the activation this loss fuses with, when the model's last layer applies it
    fuses_with = None
    #: the kernel's one number besides the arrays: Huber's delta (the other losses ignore it)
    kernel_param = 1.0

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred):
        return self.value_and_grad(y_true, y_pred, want_grad=False)[0]

    def value_and_grad(self, y_true, y_pred, want_grad=True, from_logits=None):
        """(mean loss, d loss / d y_pred) in one C++ call (the gradient is None without
        ``want_grad``); ``from_logits`` overrides the loss's own setting."""
        logits = self.from_logits if from_logits is None else from_logits
        return ops.loss_value_and_grad(self.kernel_name, y_true, y_pred, logits, want_grad,
                                       self.kernel_param)

    def get_config(self):
        return {"name": self.kernel_name, "from_logits": self.from_logits}

    def __repr__(self):
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class MeanSquaredError(Loss):
    """Keras's mean_squared_error: ``mean((y_true - y_pred)**2)`` over the last axis, then
    the batch ('mse')."""
    kernel_name = "mse"

    def __init__(self):
        super().__init__(False)

    def get_config(self):
        return {"name": self.kernel_name}

    def __repr__(self):
        return "MeanSquaredError()"


class BinaryCrossentropy(Loss):
    """Keras's binary_crossentropy on probabilities (clipped to [1e-7, 1 - 1e-7]) or, with
    ``from_logits``, on logits; fused with a final sigmoid by the models."""
    kernel_name = "binary_crossentropy"
    fuses_with = "sigmoid"


class CategoricalCrossentropy(Loss):
    """Keras's categorical_crossentropy: one-hot (or soft) targets (batch, classes) against
    probabilities or, with ``from_logits``, logits; fused with a final softmax by the models."""
    kernel_name = "categorical_crossentropy"
    fuses_with = "softmax"


class SparseCategoricalCrossentropy(Loss):
    """Keras's sparse_categorical_crossentropy: integer class labels (batch,) against
    (batch, classes) probabilities or, with ``from_logits``, logits; fused with a final
    softmax by the models."""
    kernel_name = "sparse_categorical_crossentropy"
    fuses_with = "softmax"


class MeanAbsoluteError(Loss):
    """Keras's mean_absolute_error: ``mean(|y_true - y_pred|)`` over the last axis, then the
    batch. Its gradient at y_pred == y_true is 0 (sign(0))."""
    kernel_name = "mae"

    def __init__(self):
        super().__init__(False)

    def get_config(self):
        return {"name": self.kernel_name}

    def __repr__(self):
        return "MeanAbsoluteError()"


class Huber(Loss):
    """Keras's Huber loss: with e = y_pred - y_true, ``e^2 / 2`` where ``|e| <= delta``, else
    ``delta |e| - delta^2 / 2``; mean over the last axis, then the batch."""
    kernel_name = "huber"

    def __init__(self, delta=1.0):
        super().__init__(False)
        try:
            delta = float(delta)
        except (TypeError, ValueError):
            raise ValueError(f"Huber: delta must be a number, got {delta!r}") from None
        if not (math.isfinite(delta) and delta > 0):
            raise ValueError(f"Huber: delta must be a finite number > 0, got {delta!r}")
        self.delta = self.kernel_param = delta

    def get_config(self):
        return {"name": self.kernel_name, "delta": self.delta}

    def __repr__(self):
        return f"Huber(delta={self.delta})"


class KLDivergence(Loss):
    """Keras's kl_divergence: y_true and y_pred clipped to [1e-7, 1], then
    ``sum(y_true * log(y_true / y_pred))`` over the last axis; mean over the rest (the batch).
    Its gradient is zero where y_pred is clipped."""
    kernel_name = "kl_divergence"

    def __init__(self):
        super().__init__(False)

    def get_config(self):
        return {"name": self.kernel_name}

    def __repr__(self):
        return "KLDivergence()"


_ALIASES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "kl_divergence": KLDivergence, "kld": KLDivergence,
}


def get(spec):
    """A Loss from a name or an instance."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, type) and issubclass(spec, Loss):
        return spec()
    try:
        return _ALIASES[spec]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {spec!r}; expected a dlfast.losses.Loss or one of "
                         f"{sorted(_ALIASES)}") from None


def mean_squared_error(y_true, y_pred):
    """The mean loss (a float), as ``MeanSquaredError``."""
    return MeanSquaredError()(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """The mean loss (a float), as ``BinaryCrossentropy``."""
    return BinaryCrossentropy(from_logits)(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """The mean loss (a float), as ``CategoricalCrossentropy``."""
    return CategoricalCrossentropy(from_logits)(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """The mean loss (a float), as ``SparseCategoricalCrossentropy``."""
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """The mean loss (a float), as ``MeanAbsoluteError``."""
    return MeanAbsoluteError()(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """The mean loss (a float), as ``Huber``."""
    return Huber(delta)(y_true, y_pred)


def kl_divergence(y_true, y_pred):
    """The mean loss (a float), as ``KLDivergence``."""
    return KLDivergence()(y_true, y_pred)
