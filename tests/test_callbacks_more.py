"""Callbacks with Keras 3's semantics: LearningRateScheduler (schedule(epoch, lr), the old
one-argument form, float outputs only), ReduceLROnPlateau (patience, min_delta, cooldown,
min_lr, mode; 'learning_rate' in the logs), CSVLogger (epoch then the sorted keys, separator,
append) and TerminateOnNaN (stops at the first non-finite batch loss), on scripted values and
in real fits whose weights are checked against the same fit run epoch by epoch with the
learning rates set by hand."""

import csv
import math

import numpy as np
import pytest

import dlfast
from dlfast.callbacks import (Callback, CSVLogger, LearningRateScheduler, ReduceLROnPlateau,
                              TerminateOnNaN)
from dlfast.layers import Dense, Input


def small_model(lr=0.1, optimizer=None):
    model = dlfast.Sequential([Input((4,), dtype="float64"), Dense(8, activation="tanh"),
                               Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer or dlfast.optimizers.SGD(lr, momentum=0.5),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def blobs(rng, n=60):
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4)) * 0.5 + np.eye(3, 4)[y] * 2
    return x, y


def by_hand(x, y, lrs, rng_seed=0):
    """The same fit (same initial weights, no shuffle), one epoch at a time with the optimizer's
    learning rate set by hand to lrs[epoch] first; returns the weights."""
    dlfast.manual_seed(rng_seed)
    model = small_model()
    for lr in lrs:
        model.optimizer.learning_rate = lr
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    return model.get_weights()


# --- LearningRateScheduler ----------------------------------------------------------------

def test_scheduler_sets_each_epochs_rate_in_a_real_fit(rng):
    x, y = blobs(rng)
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr if epoch < 2 else lr * 0.5

    dlfast.manual_seed(0)
    model = small_model(0.1)
    history = model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0,
                        callbacks=[LearningRateScheduler(schedule)])
    want = [0.1, 0.1, 0.05, 0.025, 0.0125]
    assert seen == [(e, lr) for e, lr in zip(range(5), [0.1] + want[:-1])]
    assert history.history["learning_rate"] == want  # Keras 3 logs the rate of each epoch
    assert model.optimizer.learning_rate == 0.0125
    for a, b in zip(model.get_weights(), by_hand(x, y, want)):
        np.testing.assert_array_equal(a, b)


def test_scheduler_takes_the_old_one_argument_form(rng):
    x, y = blobs(rng, 20)
    model = small_model()
    history = model.fit(x, y, epochs=3, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_scheduler_verbose_message(rng, capsys):
    x, y = blobs(rng, 20)
    small_model().fit(x, y, epochs=2, verbose=0,
                      callbacks=[LearningRateScheduler(lambda e, lr: lr / 2, verbose=1)])
    out = capsys.readouterr().out
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.05." in out
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.025." in out


@pytest.mark.parametrize("schedule,error,match", [
    (lambda e, lr: 1, ValueError, r"output of the schedule function should be a float, got 1"),
    (lambda e, lr: "0.1", ValueError, r"should be a float, got '0.1'"),
    (lambda e, lr: -0.1, ValueError, r"learning rate must be a finite number >= 0, got -0.1"),
    (lambda e, lr: float("nan"), ValueError, r"must be a finite number >= 0, got nan"),
])
def test_scheduler_bad_outputs(schedule, error, match, rng):
    x, y = blobs(rng, 20)
    model = small_model()
    with pytest.raises(error, match=match):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[LearningRateScheduler(schedule)])
    assert model.optimizer.learning_rate == 0.1


def test_scheduler_refuses_what_it_cannot_drive(rng):
    x, y = blobs(rng, 20)
    with pytest.raises(TypeError, match=r"schedule must be a function"):
        LearningRateScheduler(0.1)
    sched = dlfast.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    model = small_model(optimizer=dlfast.optimizers.SGD(sched))
    with pytest.raises(TypeError, match=r"created with a schedule as its learning_rate .* not "
                                        r"settable"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: lr)])
    model = small_model(optimizer="sgdg2")
    with pytest.raises(TypeError, match=r"SGDG2 adapts its own step"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: lr)])


# --- ReduceLROnPlateau --------------------------------------------------------------------

def run_scripted(callback, values, monitor="val_loss", lr=0.1):
    """Feed `values` as the monitored quantity, one per epoch, as fit does; returns the logged
    learning rates and the optimizer's final one."""
    model = small_model(lr)
    model.build()
    callback.set_model(model)
    callback.on_train_begin()
    logged = []
    for epoch, value in enumerate(values):
        logs = {monitor: value}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
    return logged, model.optimizer.learning_rate


def test_reduce_lr_rule_with_min_delta_cooldown_and_min_lr(capsys):
    # patience 2, min_delta 0.1, cooldown 1, factor 0.5, min_lr 0.02, by Keras's rule:
    # e0 1.0 best; e1 0.95, e2 0.92 not 0.1 better: wait 2 -> lr 0.05, cooldown 1;
    # e3 0.91 cooldown ends (wait 0), then wait 1; e4 0.90 wait 2 -> 0.025, cooldown 1;
    # e5 0.70 best (cooldown ends); e6, e7 0.65 not 0.1 better: wait 2 -> max(0.0125, 0.02);
    # e8 cooldown ends, wait 1; e9, e10 wait 2, 3: the rate is at min_lr, nothing changes.
    values = [1.0, 0.95, 0.92, 0.91, 0.90, 0.70, 0.65, 0.65, 0.65, 0.65, 0.65]
    cb = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.1, cooldown=1, min_lr=0.02,
                           verbose=1)
    logged, final = run_scripted(cb, values)
    assert logged == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02,
                                    0.02, 0.02], rel=1e-15)
    assert final == pytest.approx(0.02, rel=1e-15)
    out = capsys.readouterr().out
    assert out.count("ReduceLROnPlateau reducing learning rate") == 3
    assert "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.05." in out
    assert "Epoch 8: ReduceLROnPlateau reducing learning rate to 0.02." in out


@pytest.mark.parametrize("values, kwargs, want", [
    # patience 0: every epoch that does not improve reduces
    ([1.0, 1.0, 1.0], dict(patience=0, factor=0.5), [0.1, 0.1, 0.05]),
    # steady improvements larger than min_delta never reduce
    ([1.0, 0.8, 0.6, 0.4], dict(patience=1, factor=0.5), [0.1] * 4),
    # improvements smaller than min_delta do not count
    ([1.0, 0.99, 0.98, 0.97], dict(patience=1, factor=0.5, min_delta=0.05),
     [0.1, 0.1, 0.05, 0.025]),
    # 'auto' maximises a monitor named with 'acc'
    ([0.5, 0.6, 0.7, 0.7, 0.7], dict(patience=2, factor=0.1, monitor="val_accuracy"),
     [0.1, 0.1, 0.1, 0.1, 0.1]),
    ([0.5, 0.5, 0.5, 0.5], dict(patience=2, factor=0.1, monitor="val_acc"),
     [0.1, 0.1, 0.1, 0.01]),
    # mode 'max' on a loss-like name; cooldown 2: reduce at e1 (counter 2), e2 counter 1 and
    # no waiting, e3 counter 0 then wait 1 -> reduce (each epoch logs the rate before its
    # own reduction)
    ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], dict(patience=1, factor=0.5, mode="max", cooldown=2),
     [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
])
def test_reduce_lr_rule(values, kwargs, want):
    monitor = kwargs.pop("monitor", "val_loss")
    logged, _ = run_scripted(ReduceLROnPlateau(monitor=monitor, **kwargs), values, monitor)
    assert logged == pytest.approx(want, rel=1e-15)


def test_reduce_lr_in_a_real_fit_is_in_the_history(rng):
    # min_delta 10: only the first epoch counts as an improvement, so with patience 1 every
    # later epoch halves the rate; history (attached last, as Keras) records it.
    x, y = blobs(rng)
    dlfast.manual_seed(0)
    model = small_model(0.1)
    history = model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0,
                        validation_data=(x[:20], y[:20]),
                        callbacks=[ReduceLROnPlateau(factor=0.5, patience=1, min_delta=10)])
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.025, 0.0125]
    assert model.optimizer.learning_rate == 0.00625  # reduced at the end of the last epoch
    for a, b in zip(model.get_weights(), by_hand(x, y, [0.1, 0.1, 0.05, 0.025, 0.0125])):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_bad_arguments_and_missing_monitor():
    with pytest.raises(ValueError, match=r"does not support a factor >= 1.0, got factor=1.0"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match=r"mode must be 'auto', 'min' or 'max', got 'up'"):
        ReduceLROnPlateau(mode="up")
    with pytest.raises(ValueError, match=r"min_lr must be >= 0"):
        ReduceLROnPlateau(min_lr=-1)
    with pytest.warns(UserWarning, match=r"conditioned on 'val_loss', which is not in the "
                                         r"logs \(available: loss"):
        logged, final = run_scripted(ReduceLROnPlateau(patience=0), [1.0, 1.0], "loss")
    assert final == 0.1


# --- CSVLogger ----------------------------------------------------------------------------

def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_epoch_then_sorted_keys(tmp_path, rng):
    x, y = blobs(rng)
    path = tmp_path / "log.csv"
    model = small_model()
    history = model.fit(x, y, epochs=3, verbose=0, validation_data=(x[:20], y[:20]),
                        callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for i, key in enumerate(rows[0][1:], 1):
        assert [float(r[i]) for r in rows[1:]] == history.history[key]  # repr: exact


def test_csv_logger_separator_append_and_other_callbacks_keys(tmp_path, rng):
    x, y = blobs(rng, 30)
    path = tmp_path / "log.tsv"
    model = small_model()
    # ReduceLROnPlateau runs first and adds 'learning_rate': the logger sees it
    cbs = [ReduceLROnPlateau(monitor="loss"), CSVLogger(path, separator="\t")]
    model.fit(x, y, epochs=2, verbose=0, callbacks=cbs)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, separator="\t",
                                                              append=True)])
    rows = read_csv(path, "\t")
    assert rows[0] == ["epoch", "accuracy", "learning_rate", "loss"]
    assert [r[0] for r in rows[1:3]] == ["0", "1"]
    assert [float(r[2]) for r in rows[1:3]] == [0.1, 0.1]
    assert rows[3][0] == "0" and len(rows) == 4  # appended without a second header
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, separator="\t")])
    rows = read_csv(path, "\t")
    assert len(rows) == 2 and rows[0] == ["epoch", "accuracy", "loss"]  # overwritten


def test_csv_logger_writes_na_for_a_key_that_goes_missing(tmp_path):
    path = tmp_path / "log.csv"
    cb = CSVLogger(path)
    cb.set_model(small_model())
    cb.on_train_begin()
    cb.on_epoch_end(0, {"loss": 0.5, "extra": 1.0})
    cb.on_epoch_end(1, {"loss": 0.25, "later": 2.0})
    cb.on_train_end()
    assert read_csv(path) == [["epoch", "extra", "loss"], ["0", "1.0", "0.5"],
                              ["1", "NA", "0.25"]]


# --- TerminateOnNaN -----------------------------------------------------------------------

class BatchLosses(Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def diverging_regression(rng):
    x = rng.standard_normal((64, 4)) * 10
    y = x @ rng.standard_normal((4, 1))
    model = dlfast.Sequential([Input((4,), dtype="float64"), Dense(1)])
    model.compile(dlfast.optimizers.SGD(10.0), "mse")  # lr far past stability
    return model, x, y


def test_terminate_on_nan_stops_at_the_first_bad_batch(rng, capsys):
    model, x, y = diverging_regression(rng)
    record = BatchLosses()
    history = model.fit(x, y, batch_size=4, epochs=5, shuffle=False, verbose=0,
                        callbacks=[TerminateOnNaN(), record])
    losses = record.losses  # 16 batches an epoch
    first_bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
    assert first_bad == len(losses) - 1 < 5 * 16  # no batch ran after it
    epoch, batch = divmod(first_bad, 16)
    assert len(history.history["loss"]) == epoch + 1  # that epoch was closed, no other began
    assert not math.isfinite(history.history["loss"][-1])
    assert all(math.isfinite(v) for v in history.history["loss"][:-1])
    assert f"Batch {batch}: Invalid loss, terminating training" in capsys.readouterr().out
    # without the callback the same fit runs all its epochs
    model, x, y = diverging_regression(np.random.default_rng(0))
    record = BatchLosses()
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0,
                        callbacks=[record])
    assert len(record.losses) == 32 and len(history.history["loss"]) == 2


def test_terminate_on_nan_can_raise(rng):
    model, x, y = diverging_regression(rng)
    with pytest.raises(RuntimeError, match=r"NaN or Inf loss encountered at batch \d+"):
        model.fit(x, y, batch_size=4, epochs=5, verbose=0,
                  callbacks=[TerminateOnNaN(raise_error=True)])


def test_terminate_on_nan_leaves_finite_training_alone(rng):
    x, y = blobs(rng)
    history = small_model().fit(x, y, batch_size=16, epochs=3, verbose=0,
                                callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 3
