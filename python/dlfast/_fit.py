"""Model.fit's loop: epochs of shuffled batches, callbacks, progress, validation; the sums
of an epoch kept where the model runs (its runner's tally: on the device after to('cuda'))."""

from . import _random, callbacks as callbacks_module
from ._progress import EpochProgress
from .layers.base import positive_int


def fit(model, x, y, batch_size, epochs, verbose, validation_data, validation_split, shuffle,
        callbacks, initial_epoch):
    """See Model.fit."""
    model._require_compiled("fit")
    batch_size = positive_int(batch_size, "batch_size")
    epochs = int(epochs)
    x = model.check_input(x)
    y = model._prepare_y(y, x.shape[0])
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    if validation_data is None and validation_split > 0:
        n_val = int(len(x) * validation_split)
        if n_val == 0:
            raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples "
                             f"leaves no validation sample")
        x, y, validation_data = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
        xv = model.check_input(validation_data[0], "validation input")
        yv = model._prepare_y(validation_data[1], xv.shape[0], "validation y")
    n = x.shape[0]
    if n == 0:
        raise ValueError("fit: x has no samples")
    plan = getattr(model.optimizer, "_fit_plan", None)  # dlfast.distributed: this rank's part
    if plan is not None:
        plan = plan(model, n, verbose, callbacks)
        n, verbose, callbacks = plan.n, plan.verbose, plan.callbacks
    steps = -(-n // batch_size)
    history = callbacks_module.History()
    params = {"epochs": epochs, "steps": steps, "verbose": verbose}
    # History last, as Keras: it records what the other callbacks add to the logs (e.g.
    # ReduceLROnPlateau's 'learning_rate').
    cbs = callbacks_module.CallbackList(list(callbacks or []) + [history], model, params)
    history.model = model
    progress = EpochProgress(epochs, steps, verbose)
    model.stop_training = False
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        progress.begin(epoch)
        order = _random.generator().permutation(len(x)) if shuffle else None
        if plan is not None:
            order = plan.epoch_order(order)
        if order is not None:
            xs, ys = x[order], y[order]
        else:
            xs, ys = x, y
        tally = model._runner.tally(model)
        seen = 0  # samples trained on this epoch (fewer than n if a callback stops it)
        for step in range(steps):
            lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
            if cbs.wants_batches:
                cbs.on_train_batch_begin(step)
            loss, out, targets = model._train_step(xs[lo:hi], ys[lo:hi])
            tally.add(out, targets, hi - lo, loss)
            seen = hi
            if cbs.wants_batches:
                loss = float(loss) if plan is None else plan.batch_loss(loss)
                cbs.on_train_batch_end(step, {"loss": loss})
            progress.step(step + 1)
            if model.stop_training:  # Keras: a batch callback (TerminateOnNaN) stops here
                break
        total_loss, correct = tally.read()
        logs = {"loss": total_loss / seen}
        for m, c in zip(model.metrics, correct):
            logs[m.name] = c / seen
        if plan is not None:
            logs = plan.epoch_logs(logs, seen)
        if validation_data is not None:
            val = (plan or model)._evaluate_prepared(xv, yv, batch_size)
            logs.update({"val_" + k: v for k, v in val.items()})
        progress.end(epoch, logs)
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end()
    return history
