"""Training callbacks (Keras's protocol): History is always attached by ``fit`` (last, so it
records what the others add to the logs); EarlyStopping, ModelCheckpoint and ReduceLROnPlateau
watch a logged quantity ('val_loss' by default) at the end of each epoch;
LearningRateScheduler sets the learning rate at each epoch's start; CSVLogger writes one row
per epoch; TerminateOnNaN stops training at the first batch whose loss is NaN or infinite."""

import csv
import os
import warnings

import numpy as np

from ._callback_base import Callback, _beats, _check_mode, _direction  # noqa: F401
from ._lr_callbacks import LearningRateScheduler, ReduceLROnPlateau  # noqa: F401  (public)


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
