"""The callback protocol (Keras's: on_train_begin ... on_train_end, each with its logs) and
what the monitoring callbacks share: which way a logged quantity improves."""


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
