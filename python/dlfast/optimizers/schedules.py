"""Learning-rate schedules with Keras 3's names, formulas and configs.

A schedule is a callable of the optimizer's step count (0 at the first update, as Keras's
``optimizer.iterations``) returning the learning rate; pass one wherever a learning rate goes:
``SGD(learning_rate=InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5))``."""

import math
import numbers

from .._config import FromConfig


class LearningRateSchedule(FromConfig):
    """Base class: subclasses define ``__call__(step)`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(step)")


def _number(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{owner}: {what} must be a finite number, got {value!r}")
    return value


def _step(step, owner):
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or step < 0:
        raise ValueError(f"{owner}: the step must be a number >= 0, got {step!r}")
    return float(step)


class _DecayBase(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: arguments, checks and the (possibly
    floored) decay progress p = step / decay_steps."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate",
                                             owner)
        self.decay_steps = _number(decay_steps, "decay_steps", owner)
        self.decay_rate = _number(decay_rate, "decay_rate", owner)
        if self.initial_learning_rate < 0:
            raise ValueError(f"{owner}: initial_learning_rate must be >= 0, got "
                             f"{initial_learning_rate!r}")
        if self.decay_steps <= 0:
            raise ValueError(f"{owner}: decay_steps must be > 0, got {decay_steps!r}")
        if self.decay_rate < 0:
            raise ValueError(f"{owner}: decay_rate must be >= 0, got {decay_rate!r}")
        self.staircase = bool(staircase)
        self.name = name

    def _progress(self, step):
        p = _step(step, type(self).__name__) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_DecayBase):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase`` the
    exponent is floored (the rate drops every ``decay_steps`` steps)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_DecayBase):
    """The course's 1/t decay: ``initial_learning_rate / (1 + decay_rate * step / decay_steps)``
    (step / decay_steps floored with ``staircase``). With a constant step SGD keeps a variance
    that does not vanish; a step ~ 1/t lets it converge."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after ``boundaries[-1]``."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        owner = type(self).__name__
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"{owner}: boundaries must have one entry fewer than values, got "
                             f"{len(boundaries)} boundaries and {len(values)} values")
        for b in boundaries:
            _number(b, "each boundary", owner)
        for v in values:
            _number(v, "each value", owner)
            if v < 0:
                raise ValueError(f"{owner}: values must be >= 0 (learning rates), got {v!r}")
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{owner}: boundaries must be strictly increasing, got "
                             f"{boundaries}")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        step = _step(step, type(self).__name__)
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


_BY_NAME = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay,
                                          PiecewiseConstantDecay)}


def serialize(schedule):
    """A schedule as Keras's ``{"class_name": ..., "config": ...}`` dict."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule, got "
                        f"{type(schedule).__name__}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    """The schedule a ``serialize`` dict describes."""
    try:
        cls = _BY_NAME[config["class_name"]]
        return cls.from_config(dict(config["config"]))
    except (KeyError, TypeError):
        raise ValueError(f"deserialize: expected {{'class_name': one of {sorted(_BY_NAME)}, "
                         f"'config': {{...}}}}, got {config!r}") from None


__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "serialize", "deserialize"]
