"""The optimizers' base class (state beside each weight, the step count, the learning rate or
its schedule, get_state / set_state) and the checks of their hyperparameters."""

import math

import numpy as np

from .. import _core
from . import schedules


def _hyper(value, what, owner, kind):
    """`value` as a float, checked: kind is ">= 0", "[0, 1]" or "[0, 1)"."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {what} must be a number, got {value!r}") from None
    ok = math.isfinite(value) and value >= 0 and (
        kind == ">= 0" or (value <= 1 if kind == "[0, 1]" else value < 1))
    if not ok:
        where = kind if kind == ">= 0" else f"in {kind}"
        raise ValueError(f"{owner}: {what} must be a finite number {where}, got {value!r}")
    return value


def _array_beside(store, weight, name):
    """The array `name` kept in `store` for `weight` (zeros of its shape and dtype when first
    asked, or when `weight` is a new array that reuses a freed one's id)."""
    key = (id(weight), name)
    entry = store.get(key)
    if entry is None or entry[0] is not weight:
        entry = (weight, np.zeros_like(weight))
        store[key] = entry
    return entry[1]


class Optimizer:
    """Base class. ``apply(grads, weights)`` updates the weights in place (parallel lists).
    ``learning_rate`` may be a number or a callable of the step count (a schedule)."""

    needs_closure = False  # True: apply() needs a closure re-evaluating the gradients
    update_kernel = None  # the one kernel _apply runs (a device runs the optimizer if it has it)
    scalar_state = ()  # names of number attributes saved with the state (besides the slots)

    def __init__(self, learning_rate, name, weight_decay=None):
        if not callable(learning_rate):
            learning_rate = float(learning_rate)
            if not np.isfinite(learning_rate) or learning_rate < 0:
                raise ValueError(f"{name}: learning_rate must be a finite number >= 0, got "
                                 f"{learning_rate}")
        if weight_decay is not None:
            weight_decay = _hyper(weight_decay, "weight_decay", name, ">= 0")
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.name = name
        self.iterations = 0
        self._slots = {}
        self._scratch = {}

    def current_learning_rate(self):
        """The learning rate of the next step: the number, or the schedule at ``iterations``."""
        lr = self.learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    def apply(self, grads, weights, closure=None):
        """One optimizer step: update each array of ``weights`` from the matching ``grads``.
        ``closure`` is used only by optimizers with ``needs_closure`` (see the module's doc)."""
        grads, weights = list(grads), list(weights)
        if len(grads) != len(weights):
            raise ValueError(f"{self.name}.apply: got {len(grads)} grads for {len(weights)} "
                             f"weights; the lists must be parallel")
        if self.needs_closure:
            if not callable(closure):
                raise ValueError(f"{self.name}.apply: this optimizer evaluates the gradient a "
                                 f"second time and needs closure=f, f() re-running forward and "
                                 f"backward on the same batch (fit and train_on_batch pass "
                                 f"one); got closure={closure!r}")
            self._apply(grads, weights, closure)
        else:
            self._apply(grads, weights)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """Keras's spelling: an iterable of (gradient, variable) pairs."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [w for _, w in pairs])

    def slot(self, weight, name):
        """The optimizer state array `name` kept beside `weight` (zeros when first asked)."""
        return _array_beside(self._slots, weight, name)

    def get_state(self, weights):
        """The state kept for ``weights`` (the arrays this optimizer updates, in order) as
        named arrays: "iterations" (the step count) and "<position>/<slot name>" for each slot
        array beside a weight, e.g. "0/momentum". Keyed by position so that set_state can put
        it on other arrays of the same shapes (a reloaded model's)."""
        position = {id(w): i for i, w in enumerate(weights)}
        state = {"iterations": np.array(self.iterations, np.int64)}
        for name in self.scalar_state:  # e.g. SGDG2's adapted step
            state[name] = np.array(getattr(self, name), np.float64)
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
        scalars = {}
        for name in self.scalar_state:
            value = np.asarray(state.pop(name, np.nan))
            if value.shape != () or value.dtype.kind != "f" or not np.isfinite(value):
                raise ValueError(f"{self.name}.set_state: expected '{name}', a finite number, "
                                 f"got {value!r}")
            scalars[name] = float(value)
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
        for name, value in scalars.items():
            setattr(self, name, value)
        self.iterations = int(iterations)

    def _apply(self, grads, weights, kernels=_core, slot=None):
        """The update, through ``kernels`` (dlfast._core, or the device's: see
        dlfast/backend/cuda.py) with the state arrays ``slot(weight, name)`` (self.slot by
        default): written once for every device."""
        raise NotImplementedError

    def scratch(self, weight, name):
        """A work array beside `weight` that is not state (not saved): zeros when created,
        then whatever the last step left in it."""
        return _array_beside(self._scratch, weight, name)

    def _decay(self):
        return float(self.weight_decay or 0.0)

    def get_config(self):
        lr = self.learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            lr = repr(lr)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay}

    @classmethod
    def from_config(cls, config):
        """The optimizer a ``get_config()`` dict describes (schedules included)."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)
