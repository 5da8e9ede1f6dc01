"""Callbacks with Keras semantics: EarlyStopping (patience, min_delta, baseline,
start_from_epoch, restore_best_weights, mode) on scripted values and in real fits;
ModelCheckpoint (every epoch with formatted names, save_best_only, save_weights_only)."""

import os

import numpy as np
import pytest

import dlfast
from dlfast.callbacks import EarlyStopping, ModelCheckpoint
from dlfast.layers import Dense, Input
from dlfast.models import load_model


def small_model(lr=0.05):
    model = dlfast.Sequential([Input((4,), dtype="float64"), Dense(8, activation="tanh"),
                               Dense(3, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def blobs(rng, n=60):
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4)) * 0.5 + np.eye(3, 4)[y] * 2
    return x, y


def run_scripted(callback, values, monitor="val_loss"):
    """Feed `values` as the monitored quantity, one per epoch, as fit does; returns the number
    of epochs run before the callback stopped training."""
    model = small_model()
    model.build()
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return epoch + 1


@pytest.mark.parametrize("values, kwargs, epochs", [
    # Keras's rule: `wait` counts epochs since the best; stop when wait >= patience (not at 0)
    ([1.0, 1.0, 1.0, 1.0, 1.0], dict(patience=0), 2),
    ([1.0, 1.0, 1.0, 1.0, 1.0], dict(patience=2), 3),
    ([1.0, 0.9, 0.95, 0.93, 0.97, 0.5], dict(patience=2), 4),
    ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], dict(patience=1), 6),
    # improvements smaller than min_delta do not count
    ([1.0, 0.99, 0.98, 0.97, 0.96], dict(patience=2, min_delta=0.05), 3),
    # improvements that do not beat the baseline do not reset wait (without it: 4 epochs)
    ([1.0, 0.9, 0.9, 0.9, 0.9], dict(patience=2, baseline=0.5), 3),
    ([1.0, 0.9, 0.9, 0.9, 0.9], dict(patience=2), 4),
    # epochs before start_from_epoch are not watched
    ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], dict(patience=1, start_from_epoch=3), 5),
    # mode max: an accuracy that stalls
    ([0.5, 0.6, 0.6, 0.55], dict(patience=2, monitor="val_accuracy"), 4),
])
def test_early_stopping_rule(values, kwargs, epochs):
    monitor = kwargs.get("monitor", "val_loss")
    assert run_scripted(EarlyStopping(**kwargs), values, monitor) == epochs


def test_early_stopping_restores_the_best_epochs_weights_in_a_real_fit(rng):
    # validation labels that contradict the training labels: the better the fit, the worse
    # the validation loss, so it rises after the first epochs
    x, y = blobs(rng)
    xv, yv = x[:30], (y[:30] + 1) % 3
    dlfast.manual_seed(0)
    model = small_model(lr=0.2)
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    hist = model.fit(x, y, epochs=50, batch_size=10, validation_data=(xv, yv), callbacks=[stop],
                     verbose=0)
    losses = hist.history["val_loss"]
    best = int(np.argmin(losses))
    assert len(losses) == best + 3 < 50  # stopped two epochs after the best
    assert stop.stopped_epoch == len(losses) - 1 and stop.best_epoch == best
    np.testing.assert_allclose(model.evaluate(xv, yv)[0], losses[best], rtol=1e-12)


def test_early_stopping_checks_mode_and_warns_on_a_missing_monitor():
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        EarlyStopping(mode="down")
    with pytest.raises(ValueError, match="cannot tell whether 'val_f1'"):
        run_scripted(EarlyStopping(monitor="val_f1"), [1.0], "val_f1")
    assert run_scripted(EarlyStopping(monitor="val_f1", mode="max", patience=1),
                        [0.1, 0.1, 0.1], "val_f1") == 2
    with pytest.warns(UserWarning, match="'val_loss', which is not in the logs"):
        dlfast.manual_seed(0)
        model = small_model()
        x, y = blobs(np.random.default_rng(0), 20)
        hist = model.fit(x, y, epochs=3, callbacks=[EarlyStopping()], verbose=0)
    assert len(hist.history["loss"]) == 3  # nothing to watch: no stop


def test_model_checkpoint_every_epoch_with_formatted_names(tmp_path, rng):
    x, y = blobs(rng)
    model = small_model()
    pattern = str(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.3f}.dlfast")
    hist = model.fit(x[:40], y[:40], epochs=3, validation_data=(x[40:], y[40:]), verbose=0,
                     callbacks=[ModelCheckpoint(pattern)])
    want = sorted(f"m-{e + 1:02d}-{v:.3f}.dlfast" for e, v in enumerate(hist.history["val_loss"]))
    assert sorted(os.listdir(tmp_path / "ckpt")) == want
    last = load_model(tmp_path / "ckpt" / want[-1])
    np.testing.assert_array_equal(last.predict(x), model.predict(x))
    with pytest.raises(KeyError, match="cannot format filepath.*val_f1"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[ModelCheckpoint(str(tmp_path / "{val_f1}.dlfast"))])


def test_model_checkpoint_save_best_only_keeps_the_best(tmp_path, rng):
    x, y = blobs(rng)
    xv, yv = x[:30], (y[:30] + 1) % 3  # validation loss rises once the model fits
    dlfast.manual_seed(0)
    model = small_model(lr=0.2)
    path = tmp_path / "best.dlfast"
    weights_path = tmp_path / "best_weights.dlfast"
    hist = model.fit(x, y, epochs=8, batch_size=10, validation_data=(xv, yv), verbose=0,
                     callbacks=[ModelCheckpoint(path, save_best_only=True),
                                ModelCheckpoint(weights_path, save_best_only=True,
                                                save_weights_only=True)])
    losses = hist.history["val_loss"]
    assert np.argmin(losses) < len(losses) - 1  # the last epoch was not the best
    best = load_model(path)
    np.testing.assert_allclose(best.evaluate(xv, yv)[0], min(losses), rtol=1e-12)
    other = small_model()
    other.load_weights(weights_path)
    np.testing.assert_array_equal(other.predict(x), best.predict(x))
    # with mode='max' on accuracy the best accuracy's epoch is kept
    acc_path = tmp_path / "acc.dlfast"
    hist = model.fit(x, y, epochs=4, validation_data=(x, y), verbose=0,
                     callbacks=[ModelCheckpoint(acc_path, monitor="val_accuracy",
                                                save_best_only=True)])
    assert load_model(acc_path).evaluate(x, y)[1] == max(hist.history["val_accuracy"])
