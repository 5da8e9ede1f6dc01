"""Training callbacks (Keras's protocol): History is always attached by ``fit``;
EarlyStopping and ModelCheckpoint watch a logged quantity ('val_loss' by default) at the end
of each epoch."""

import os
import warnings


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
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
