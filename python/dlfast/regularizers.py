"""Weight regularizers with Keras's names, defaults and formulas: ``L1(l1=0.01)``,
``L2(l2=0.01)``, ``L1L2(l1=0.0, l2=0.0)``. As in Keras the penalty ``l1*sum|w| + l2*sum(w**2)``
is added to the loss a model reports; its gradient ``l1*sign(w) + 2*l2*w`` goes into the
weight's gradient. Both come from one C++ pass over the weight (``accumulate_gradient``)."""

import math

import numpy as np

from . import _arrays, _core
from ._config import FromConfig

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize"]


def _coefficient(value, name):
    # Keras's validate_float_arg: a finite number >= 0.
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float, "
                         f"got {name}={value!r}")
    return float(value)


class Regularizer(FromConfig):
    """A penalty ``l1*sum|w| + l2*sum(w**2)`` on a weight (the base of L1, L2 and L1L2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _coefficient(l1, "l1")
        self.l2 = _coefficient(l2, "l2")

    def __call__(self, x):
        """The penalty of weight ``x`` (a float)."""
        x = np.asarray(x)
        dtype = x.dtype if x.dtype in _arrays.FLOATS else np.float64  # ints etc. as Keras casts
        return _core.regularizer_penalty(_arrays.to_array(x, dtype, f"{self!r}: x"), self.l1,
                                          self.l2)

    def accumulate_gradient(self, weight, grad):
        """Adds the penalty's gradient into ``grad`` (in place) and returns the penalty, in
        one pass over ``weight``."""
        return _core.regularizer_penalty(weight, self.l1, self.l2, grad)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|x|)``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x**2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``."""

    def __init__(self, l1=0.0, l2=0.0):
        super().__init__(l1=0.0 if l1 is None else l1, l2=0.0 if l2 is None else l2)


# Keras's identifiers: class names and their snake-case aliases.
_BY_NAME = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": L1L2}


def get(identifier):
    """A regularizer from None, an instance, a name ('l1', 'l2', 'l1_l2' or the class names;
    Keras's defaults) or a ``{'class_name': ..., 'config': {...}}`` dict."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown regularizer {identifier!r}; expected one of "
                             f"{sorted(_BY_NAME)}, an instance or None")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"}:
        cls = _BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"unknown regularizer class {identifier['class_name']!r}; "
                             f"expected one of {sorted(_BY_NAME)}")
        return cls.from_config(identifier["config"])
    raise TypeError(f"a regularizer must be None, a name, a dict config or a "
                    f"dlfast.regularizers instance (its gradient is computed in C++), got "
                    f"{type(identifier).__name__}: {identifier!r}")


def serialize(regularizer):
    """The ``{'class_name', 'config'}`` dict of a regularizer (None for None)."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}

