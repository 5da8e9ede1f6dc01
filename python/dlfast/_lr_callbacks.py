"""The learning-rate callbacks: LearningRateScheduler (a rate per epoch from a function) and
ReduceLROnPlateau (the rate cut when a logged quantity stops improving). Re-exported by
``dlfast.callbacks``."""

import inspect
import math
import warnings

import numpy as np

from ._callback_base import Callback, _check_mode


def _learning_rate(optimizer):
    """The learning rate the optimizer's next step uses (a schedule's value at its step)."""
    return float(optimizer.current_learning_rate())


def _set_learning_rate(optimizer, value, what):
    """optimizer.learning_rate = value, for an optimizer whose step follows a settable float
    learning rate (TypeError otherwise, as Keras for a schedule)."""
    from .optimizers import SGDG2
    if callable(optimizer.learning_rate):
        raise TypeError(f"{what}: the optimizer was created with a schedule as its "
                        f"learning_rate ({optimizer.learning_rate!r}), so its learning rate is "
                        f"not settable; give the optimizer a float learning_rate")
    if isinstance(optimizer, SGDG2):
        raise TypeError(f"{what}: SGDG2 adapts its own step (learning_rate is only the first "
                        f"one); setting its learning rate would change nothing")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what}: the learning rate must be a finite number >= 0, got {value}")
    optimizer.learning_rate = value


class LearningRateScheduler(Callback):
    """Keras's LearningRateScheduler: at the start of each epoch, the optimizer's learning rate
    becomes ``schedule(epoch, lr)`` (epoch from 0, lr the current rate; a schedule taking only
    the epoch is called as ``schedule(epoch)``), which must return a float. The rate in use is
    added to each epoch's logs as 'learning_rate'."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function "
                            f"schedule(epoch, lr) -> lr, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def _takes_lr(self):
        try:
            inspect.signature(self.schedule).bind(0, 0.0)
            return True
        except TypeError:
            return False
        except ValueError:  # no signature to read (a builtin): the two-argument form
            return True

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if self._takes_lr():
            lr = self.schedule(epoch, _learning_rate(optimizer))
        else:
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, np.floating)):
            raise ValueError(f"LearningRateScheduler: the output of the schedule function "
                             f"should be a float, got {lr!r}")
        _set_learning_rate(optimizer, lr, "LearningRateScheduler")
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _learning_rate(self.model.optimizer)


class ReduceLROnPlateau(Callback):
    """Keras's ReduceLROnPlateau: when `monitor` has not improved by more than `min_delta` for
    `patience` epochs, the learning rate is multiplied by `factor` (never below `min_lr`);
    then `cooldown` epochs pass before the waiting starts again. mode 'auto' minimises unless
    the monitored name contains 'acc'. Adds 'learning_rate' (the rate at the epoch's end,
    before any reduction) to each epoch's logs, as Keras 3."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        factor = float(factor)
        if not factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got "
                             f"factor={factor}")
        if float(min_lr) < 0:
            raise ValueError(f"ReduceLROnPlateau: min_lr must be >= 0, got {min_lr}")
        self.monitor = monitor
        self.factor = factor
        self.min_lr = float(min_lr)
        self.min_delta = float(min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.cooldown = int(cooldown)
        self.mode = _check_mode(mode, "ReduceLROnPlateau")
        self._reset()

    def _reset(self):
        if self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor):
            self.monitor_op = lambda a, b: np.less(a, b - self.min_delta)
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: np.greater(a, b + self.min_delta)
            self.best = -np.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = _learning_rate(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"ReduceLROnPlateau is conditioned on '{self.monitor}', which is not "
                          f"in the logs (available: {', '.join(logs)})", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _learning_rate(optimizer)
                # Keras compares its float32 learning-rate variable with np.float32(min_lr);
                # dlfast's learning rate is a Python float, so the faithful test is this one.
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    _set_learning_rate(optimizer, new_lr, "ReduceLROnPlateau")
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
