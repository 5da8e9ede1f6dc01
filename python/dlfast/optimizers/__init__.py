"""Optimizers with Keras's names, defaults and formulas; each step is one fused C++ call over
all the parameters it is given (a model gives one flat buffer per dtype)."""

import numpy as np

from .. import _core


class Optimizer:
    """Base class. ``apply(grads, weights)`` updates the weights in place (parallel lists).
    ``learning_rate`` may be a number or a callable of the step count (a schedule)."""

    def __init__(self, learning_rate, name):
        if not callable(learning_rate):
            learning_rate = float(learning_rate)
            if not np.isfinite(learning_rate) or learning_rate < 0:
                raise ValueError(f"{name}: learning_rate must be a finite number >= 0, got "
                                 f"{learning_rate}")
        self.learning_rate = learning_rate
        self.name = name
        self.iterations = 0
        self._slots = {}

    def current_learning_rate(self):
        lr = self.learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    def apply(self, grads, weights):
        """One optimizer step: update each array of ``weights`` from the matching ``grads``."""
        grads, weights = list(grads), list(weights)
        if len(grads) != len(weights):
            raise ValueError(f"{self.name}.apply: got {len(grads)} grads for {len(weights)} "
                             f"weights; the lists must be parallel")
        self._apply(grads, weights)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """Keras's spelling: an iterable of (gradient, variable) pairs."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [w for _, w in pairs])

    def slot(self, weight, name):
        """The optimizer state array `name` kept beside `weight` (zeros when first asked)."""
        key = (id(weight), name)
        entry = self._slots.get(key)
        if entry is None or entry[0] is not weight:
            entry = (weight, np.zeros_like(weight))
            self._slots[key] = entry
        return entry[1]

    def get_state(self, weights):
        """The state kept for ``weights`` (the arrays this optimizer updates, in order) as
        named arrays: "iterations" (the step count) and "<position>/<slot name>" for each slot
        array beside a weight, e.g. "0/momentum". Keyed by position so that set_state can put
        it on other arrays of the same shapes (a reloaded model's)."""
        position = {id(w): i for i, w in enumerate(weights)}
        state = {"iterations": np.array(self.iterations, np.int64)}
        for (key, name), (weight, value) in self._slots.items():
            i = position.get(key)
            if i is not None and weights[i] is weight:
                state[f"{i}/{name}"] = value.copy()
        return state

    def set_state(self, weights, state):
        """Put back what get_state returned, onto ``weights`` (arrays of the same shapes in
        the same order). Checks every entry before changing anything."""
        weights, state = list(weights), dict(state)
        iterations = np.asarray(state.pop("iterations", -1))
        if iterations.shape != () or iterations.dtype.kind not in "iu" or iterations < 0:
            raise ValueError(f"{self.name}.set_state: expected 'iterations', a count >= 0, got "
                             f"{iterations!r}")
        slots = []
        for key, value in state.items():
            position, _, name = key.partition("/")
            if not position.isdigit() or not name or int(position) >= len(weights):
                raise ValueError(f"{self.name}.set_state: unexpected entry '{key}' for "
                                 f"{len(weights)} weights (expected '<position>/<slot name>')")
            weight, value = weights[int(position)], np.asarray(value)
            if value.shape != weight.shape or value.dtype.kind != "f":
                raise ValueError(f"{self.name}.set_state: '{key}' is a {value.dtype} array of "
                                 f"shape {value.shape}, weight {position} has shape "
                                 f"{weight.shape}")
            slots.append((weight, name, value))
        for weight, name, value in slots:
            self.slot(weight, name)[...] = value
        self.iterations = int(iterations)

    def _apply(self, grads, weights):
        raise NotImplementedError

    def get_config(self):
        lr = self.learning_rate
        return {"name": self.name, "learning_rate": lr if not callable(lr) else repr(lr)}


class SGD(Optimizer):
    """Keras SGD: ``v = momentum*v - lr*g; w += v`` (Nesterov: ``w += momentum*v - lr*g``);
    without momentum ``w -= lr*g``. ``weight_decay`` is decoupled as in Keras 3:
    ``w -= lr*weight_decay*w`` before the step."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 name="SGD"):
        super().__init__(learning_rate, name)
        momentum = float(momentum)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        if weight_decay is not None and (not np.isfinite(weight_decay) or weight_decay < 0):
            raise ValueError(f"SGD: weight_decay must be a number >= 0 or None, got {weight_decay}")
        self.momentum = momentum
        self.nesterov = bool(nesterov)
        self.weight_decay = weight_decay

    def _apply(self, grads, weights):
        velocities = [self.slot(w, "momentum") for w in weights] if self.momentum else None
        _core.sgd_update(weights, grads, velocities, self.current_learning_rate(), self.momentum,
                         self.nesterov, float(self.weight_decay or 0.0))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


_BY_NAME = {"sgd": SGD}


def get(spec):
    """An optimizer from a name (Keras defaults) or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    try:
        return _BY_NAME[spec.lower()]()
    except (KeyError, AttributeError):
        raise ValueError(f"unknown optimizer {spec!r}; expected a dlfast.optimizers.Optimizer "
                         f"or one of {sorted(_BY_NAME)}") from None


__all__ = ["Optimizer", "SGD", "get"]
