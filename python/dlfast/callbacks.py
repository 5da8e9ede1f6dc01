"""Training callbacks (Keras's protocol): History is always attached by ``fit`` (last, so it
records what the others add to the logs); EarlyStopping, ModelCheckpoint and ReduceLROnPlateau
watch a logged quantity ('val_loss' by default) at the end of each epoch;
LearningRateScheduler sets the learning rate at each epoch's start; CSVLogger writes one row
per epoch; TerminateOnNaN stops training at the first batch whose loss is NaN or infinite."""

import csv
import inspect
import math
import os
import warnings

import numpy as np


class Callback:
    """Base of the callbacks (Keras's protocol): ``fit`` sets ``model`` and ``params``
    (epochs, steps, verbose) and calls the hooks below; each does nothing unless overridden.
    ``logs`` holds the epoch's 'loss', the metrics and the 'val_*' entries (a batch hook gets
    the batch's 'loss'). Setting ``model.stop_training = True`` ends ``fit``."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        """Called once when fit starts."""
        pass

    def on_train_end(self, logs=None):
        """Called once when fit ends."""
        pass

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch (counted from 0)."""
        pass

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of each epoch with its logs."""
        pass

    def on_train_batch_begin(self, batch, logs=None):
        """Called before each training batch (only when some callback overrides a batch hook)."""
        pass

    def on_train_batch_end(self, batch, logs=None):
        """Called after each training batch with ``{'loss': ...}``."""
        pass


class History(Callback):
    """``history.history``: a dict of per-epoch lists ('loss', metrics, 'val_*');
    ``history.epoch``: the epoch indices."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _direction(mode, monitor, model, what):
    """'min' or 'max' for `monitor`: the mode given, or for 'auto' (Keras) 'min' for losses
    and 'max' for the accuracy metrics; anything else must say its mode."""
    if mode == "auto":
        base = monitor[4:] if monitor.startswith("val_") else monitor
        if base == "loss":
            mode = "min"
        elif base in [m.name for m in getattr(model, "metrics", [])] or base.endswith("accuracy"):
            mode = "max"
        else:
            raise ValueError(f"{what}: cannot tell whether '{monitor}' should be minimised or "
                             f"maximised; pass mode='min' or mode='max'")
    return mode


def _check_mode(mode, what):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{what}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def _beats(direction, value, reference, min_delta=0.0):
    """True when `value` improves on `reference` (None: nothing yet) by more than min_delta."""
    if reference is None:
        return True
    if direction == "min":
        return value + min_delta < reference
    return value - min_delta > reference


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved by more than `min_delta` for `patience`
    epochs (Keras 3 semantics). The first `start_from_epoch` epochs are not watched; with a
    `baseline`, the wait only restarts on epochs that beat it. With restore_best_weights, the
    model gets back the weights of its best epoch when training ends."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = _check_mode(mode, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self._direction = None
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def _is_improvement(self, value, reference):
        return _beats(self._direction, value, reference, self.min_delta)

    def on_epoch_end(self, epoch, logs=None):
        if self._direction is None:
            self._direction = _direction(self.mode, self.monitor, self.model, "EarlyStopping")
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"EarlyStopping is watching '{self.monitor}', which is not in the "
                          f"logs (available: {', '.join(logs or {})})", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # until something beats them
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (``model.save``, or ``save_weights`` with save_weights_only) at the end
    of every epoch, to `filepath` formatted with the epoch (from 1) and the logs:
    "ckpt-{epoch:02d}-{val_loss:.2f}.dlfast". With save_best_only, only when `monitor`
    improves on the best value seen so far."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto"):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = _check_mode(mode, "ModelCheckpoint")
        self._direction = None
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as e:
            raise KeyError(f"ModelCheckpoint: cannot format filepath {self.filepath!r} with "
                           f"epoch and the logs ({', '.join(logs)}): {e!r}") from None
        if self.save_best_only:
            if self._direction is None:
                self._direction = _direction(self.mode, self.monitor, self.model,
                                             "ModelCheckpoint")
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint can save the best model only with "
                              f"'{self.monitor}' in the logs (available: {', '.join(logs)})",
                              stacklevel=2)
                return
            if not _beats(self._direction, current, self.best):
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved to {current:.5f}, saving "
                      f"the model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: saving the model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


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


class CSVLogger(Callback):
    """Keras's CSVLogger: one row per epoch in `filename`, columns 'epoch' (from 0) then the
    logs' keys in sorted order (fixed by the first epoch; a key missing later is written NA).
    append=True continues an existing file (its header is kept, not repeated)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = bool(append)
        self.keys = None
        self.writer = None
        self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs=None):
        self.append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                self.append_header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self.writer = None
        self.keys = None

    @staticmethod
    def _value(v):
        if isinstance(v, str):
            return v
        if isinstance(v, (list, tuple, np.ndarray)) and np.ndim(v) > 0:
            return f'"[{", ".join(map(str, v))}]"'
        return v

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, self._value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class TerminateOnNaN(Callback):
    """Keras's TerminateOnNaN: stops training (``model.stop_training = True``, so fit ends
    after that batch's epoch is closed) at the first batch whose loss is NaN or infinite; with
    raise_error=True raises RuntimeError there instead."""

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                                   f"{loss}. Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CallbackList:
    """Calls every callback in order; batch hooks only when some callback overrides them, so a
    plain fit pays nothing per step."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        self.wants_batches = any(
            type(cb).on_train_batch_begin is not Callback.on_train_batch_begin
            or type(cb).on_train_batch_end is not Callback.on_train_batch_end
            for cb in self.callbacks)

    def __getattr__(self, hook):
        def call(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)
        return call
