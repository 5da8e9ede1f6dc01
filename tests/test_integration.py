"""Where the training toolbox's parts meet: SGD-G2's probe with Dropout (same masks) and
BatchNormalization (moving statistics moved once per step), checked against float64 NumPy
written here; and one functional model holding LSTM, BatchNormalization, Dropout, an Add and
weight regularizers, trained with every optimizer by name and with schedules, saved and
reloaded (same predictions, same continued training), driven by EarlyStopping and
ModelCheckpoint, counted by summary() (Keras's numbers), evaluated (data loss + penalties) and
run by predict() in inference mode, each against NumPy."""

import re

import numpy as np
import pytest

import dlfast
from dlfast import layers, optimizers, regularizers
from dlfast.callbacks import Callback, EarlyStopping, ModelCheckpoint
from dlfast.models import load_model
from dlfast.optimizers import schedules
import reference as ref
from test_kernels_lstm import ref_forward


class RecordingSGDG2(optimizers.SGDG2):
    """SGDG2 that keeps copies of the model's per-layer gradients as apply() receives them
    (g, at theta) and as the model's closure leaves them (g~, at the probe point)."""

    def apply(self, grads, weights, closure=None):
        self.step_grads = [g.copy() for g in self.model.grads]

        def probe():
            loss = closure()
            self.probe_grads = [g.copy() for g in self.model.grads]
            return loss

        return super().apply(grads, weights, closure=probe)


def twins(make, rng):
    """Two models from make() with the same weights (and the first one's weights)."""
    a, b = make(), make()
    for name, w in zip(a.weight_names, a.weights):
        w[...] = rng.uniform(0.5, 1.5, w.shape) if name.endswith("variance") else \
            rng.uniform(-0.8, 0.8, w.shape)
    b.set_weights(a.get_weights())
    return a, b, a.get_weights()


# --- SGD-G2's probe: same dropout masks, moving statistics moved once ------------------------

def dropout_mlp(seed):
    """x -> Dense(5, tanh) -> Dropout(0.5) -> Dense(2): mse on its output."""
    return dlfast.Sequential([layers.Input((4,)), layers.Dense(5, activation="tanh"),
                              layers.Dropout(0.5, seed=seed), layers.Dense(2)],
                             dtype="float64")


def mlp_grads(x, y, W1, b1, W2, b2, mask):
    """Gradients of mean((dropout(tanh(x W1 + b1)) W2 + b2 - y)^2) for a fixed mask."""
    a = np.tanh(x @ W1 + b1)
    d = a * mask
    out = d @ W2 + b2
    dout = 2.0 * (out - y) / out.size
    dz = (dout @ W2.T) * mask * (1.0 - a ** 2)
    return [x.T @ dz, dz.sum(0), d.T @ dout, dout.sum(0)]


@pytest.mark.parametrize("seed", [None, 7], ids=["dlfast-generator", "layer-seed"])
def test_sgdg2_probe_reuses_the_steps_dropout_mask(seed, rng):
    """The probe gradient is the gradient at theta - h g of the SAME objective (the step's
    mask): both gradients and the new step against NumPy with that mask; the mask is the
    one a plain SGD step draws, and the generators end where an SGD step leaves them."""
    g2_model, sgd_model, (W1, b1, W2, b2) = twins(lambda: dropout_mlp(seed), rng)
    h, beta = 0.3, 0.9
    opt = RecordingSGDG2(learning_rate=h, beta=beta)
    opt.model = g2_model
    g2_model.compile(optimizer=opt, loss="mse")
    sgd_model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))

    dlfast.manual_seed(11)
    sgd_model.train_on_batch(x, y)
    sgd_mask = sgd_model.layers[1]._mask.copy()
    after_sgd = dlfast._random.generator().random(3)
    dlfast.manual_seed(11)
    g2_model.train_on_batch(x, y)
    after_g2 = dlfast._random.generator().random(3)
    mask = g2_model.layers[1]._mask  # the last forward's: the probe's

    np.testing.assert_array_equal(mask, sgd_mask)
    assert 0 < np.count_nonzero(mask) < mask.size  # some units were dropped
    np.testing.assert_array_equal(after_g2, after_sgd)
    if seed is not None:  # the layer's own generator is also where an SGD step leaves it
        np.testing.assert_array_equal(g2_model.layers[1].rng.random(3),
                                      sgd_model.layers[1].rng.random(3))
    g = mlp_grads(x, y, W1, b1, W2, b2, mask)
    g_flat = np.concatenate([a.ravel() for a in g])
    probe_at = [w - h * gw for w, gw in zip((W1, b1, W2, b2), g)]
    g_probe = mlp_grads(x, y, *probe_at, mask)
    for got, want, what in zip(opt.step_grads + opt.probe_grads, g + g_probe,
                               ["g/W1", "g/b1", "g/W2", "g/b2", "probe/W1", "probe/b1",
                                "probe/W2", "probe/b2"]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13, err_msg=what)
    h_new = ref.sgdg2_next_step(h, g_flat, np.concatenate([a.ravel() for a in g_probe]), beta)
    assert opt.step_size == pytest.approx(h_new, rel=1e-10)
    for got, w, gw in zip(g2_model.get_weights(), (W1, b1, W2, b2), g):
        np.testing.assert_allclose(got, w - h_new * gw, rtol=1e-10, atol=1e-13)


def bn_mlp():
    """x -> Dense(3) -> BatchNormalization(momentum=0.9) -> tanh -> Dense(2)."""
    return dlfast.Sequential([layers.Input((4,)), layers.Dense(3),
                              layers.BatchNormalization(momentum=0.9),
                              layers.Activation("tanh"), layers.Dense(2)], dtype="float64")


def test_sgdg2_step_moves_the_moving_statistics_once(rng):
    g2_model, sgd_model, weights = twins(bn_mlp, rng)
    W1, b1 = weights[:2]
    mm0, mv0 = weights[4], weights[5]  # moving_mean, moving_variance (randomized above)
    g2_model.compile(optimizer=optimizers.SGDG2(learning_rate=0.5), loss="mse")
    sgd_model.compile(optimizer=optimizers.SGD(0.5), loss="mse")
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    g2_model.train_on_batch(x, y)
    sgd_model.train_on_batch(x, y)
    # Keras's moving averages of the batch statistics of Dense's output at the step's theta
    z = x @ W1 + b1
    want_mean = 0.9 * mm0 + 0.1 * z.mean(0)
    want_var = 0.9 * mv0 + 0.1 * z.var(0)
    for model in (g2_model, sgd_model):
        bn = model.layers[1]
        np.testing.assert_allclose(bn.weights[2], want_mean, rtol=1e-12, err_msg=model.name)
        np.testing.assert_allclose(bn.weights[3], want_var, rtol=1e-12, err_msg=model.name)
    # and the weights did take an SGD-G2 step (the probe ran, the step moved)
    assert not np.allclose(g2_model.get_weights()[0], W1)


def test_sgdg2_probe_that_fails_leaves_the_state_as_the_step_left_it(rng):
    """A closure that raises inside the probe: the weights go back to theta (SGDG2), the
    moving statistics stay as the step's forward left them and the error comes through."""
    model = bn_mlp()
    model.compile(optimizer=optimizers.SGDG2(learning_rate=0.5), loss="mse")
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    theta = model.get_weights()
    bn = model.layers[1]
    calls = []
    original = bn.call_forward

    def second_forward_fails(x, training):
        calls.append(training)
        if len(calls) == 2:  # the probe's forward: after the moving statistics moved
            original(x, training)
            raise RuntimeError("probe failed")
        return original(x, training)

    bn.call_forward = second_forward_fails
    with pytest.raises(RuntimeError, match="probe failed"):
        model.train_on_batch(x, y)
    z = x @ theta[0] + theta[1]
    got = model.get_weights()
    np.testing.assert_allclose(got[4], 0.9 * theta[4] + 0.1 * z.mean(0), rtol=1e-12)
    np.testing.assert_allclose(got[5], 0.9 * theta[5] + 0.1 * z.var(0), rtol=1e-12)
    for i in (0, 1, 2, 3, 6, 7):  # trainable weights: back at theta
        np.testing.assert_allclose(got[i], theta[i], rtol=1e-14, atol=1e-15)


# --- one functional model with every part ---------------------------------------------------

L2, L1 = 1e-3, 1e-4


def combined_model(dtype="float32"):
    """(6, 3) sequences -> LSTM(8, sequences) -> BatchNormalization -> Dropout(0.2) -> LSTM(8)
    -> a residual Dense(8, tanh, L2) joined by Add -> Dense(3, softmax, L1). The moving
    statistics' momentum is 0.9 (Keras's default 0.99 needs hundreds of steps before
    inference-mode evaluation means much; these tests take tens)."""
    x = layers.Input((6, 3), dtype=dtype)
    h = layers.LSTM(8, return_sequences=True)(x)
    h = layers.BatchNormalization(momentum=0.9)(h)
    h = layers.Dropout(0.2)(h)
    h = layers.LSTM(8)(h)
    d = layers.Dense(8, activation="tanh", kernel_regularizer=regularizers.L2(L2))(h)
    s = layers.Add()([h, d])
    out = layers.Dense(3, activation="softmax", kernel_regularizer=regularizers.L1(L1))(s)
    return dlfast.Model(x, out)


def sequences(rng, n, dtype="float32"):
    """Class c: feature c is raised by 1 at every time step (plus noise)."""
    labels = rng.integers(0, 3, n)
    x = 0.7 * rng.standard_normal((n, 6, 3))
    x[np.arange(n), :, labels] += 1.0
    return x.astype(dtype), labels


OPTIMIZERS = {
    "sgd": lambda: "sgd", "adam": lambda: "adam", "adamax": lambda: "adamax",
    "adadelta": lambda: "adadelta", "sgdg2": lambda: "sgdg2",
    "adadelta-lr1": lambda: optimizers.Adadelta(learning_rate=1.0),  # the paper's form
    "sgd+inverse-time": lambda: optimizers.SGD(
        schedules.InverseTimeDecay(0.2, decay_steps=20, decay_rate=0.5), momentum=0.9),
    "adam+exponential": lambda: optimizers.Adam(
        schedules.ExponentialDecay(0.02, decay_steps=20, decay_rate=0.8)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_combined_model_trains_with_each_optimizer(name, rng):
    """10 epochs of 6 steps. Measured while writing the test (these seeds): accuracy 0.81
    (adamax) to 1.0 (the schedules); evaluate's loss from 1.18 to 0.65-0.77 of itself
    (adamax, adam, sgd) down to 0.02 of it (the schedules); the bars are 0.7 and 0.8.
    Adadelta by name has Keras's lr 0.001, which barely moves the weights in 60 steps
    (as in Keras): it must run and move them, not learn."""
    x, y = sequences(rng, 96)
    dlfast.manual_seed(1)
    model = combined_model()
    model.compile(optimizer=OPTIMIZERS[name](), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = model.get_weights()
    before, _ = model.evaluate(x, y)
    history = model.fit(x, y, batch_size=16, epochs=10, verbose=0)
    after, accuracy = model.evaluate(x, y)
    assert model.optimizer.iterations == 10 * 6
    assert all(np.all(np.isfinite(w)) for w in model.weights)
    assert all(np.any(w != w0) for w, w0 in zip(model.get_weights(), start))
    if name == "adadelta":
        return
    assert after < 0.8 * before, (name, before, after)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert accuracy > 0.7, (name, accuracy)


@pytest.mark.parametrize("name", ["adam", "sgdg2", "sgd+inverse-time"])
def test_combined_model_save_load_then_identical_predictions_and_training(name, tmp_path, rng):
    x, y = sequences(rng, 48)
    dlfast.manual_seed(2)
    model = combined_model()
    model.compile(optimizer=OPTIMIZERS[name](), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    model.save(tmp_path / "m.dlfast")
    loaded = load_model(tmp_path / "m.dlfast")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
    runs = []
    for m in (model, loaded):
        dlfast.manual_seed(9)  # the same shuffles and dropout masks for both
        runs.append(m.fit(x, y, batch_size=16, epochs=2, verbose=0).history)
    assert runs[0] == runs[1]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    if name == "sgdg2":
        assert loaded.optimizer.step_size == model.optimizer.step_size


class WeightsPerEpoch(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_early_stopping_restores_and_checkpoint_keeps_the_best_epoch(tmp_path, rng):
    """Half the validation labels are scrambled, so the validation loss falls, then rises as
    the model fits the training set: measured while writing the test, it is lowest at epoch
    4 (index 3) and training stops two epochs later."""
    x, y = sequences(rng, 64)
    xv, yv = sequences(rng, 32)
    yv = np.where(rng.random(32) < 0.5, rng.integers(0, 3, 32), yv)
    dlfast.manual_seed(3)
    model = combined_model()
    model.compile(optimizer=optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    recorder = WeightsPerEpoch()
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    path = tmp_path / "best.dlfast"
    history = model.fit(x, y, batch_size=16, epochs=25, verbose=0, validation_data=(xv, yv),
                        callbacks=[recorder, stop, ModelCheckpoint(path, save_best_only=True)])
    val = history.history["val_loss"]
    best = int(np.argmin(val))  # the first of equal minima: later ties do not improve
    assert stop.best_epoch == best > 0
    assert stop.stopped_epoch == best + 2 and len(val) == best + 3
    # every weight of the best epoch is back (the last epoch's differ), moving statistics too
    assert any(np.any(a != b) for a, b in zip(recorder.weights[-1], recorder.weights[best]))
    for got, want, name in zip(model.get_weights(), recorder.weights[best], model.weight_names):
        np.testing.assert_array_equal(got, want, err_msg=name)
    saved = load_model(path)
    for got, want in zip(saved.get_weights(), recorder.weights[best]):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(saved.predict(xv), model.predict(xv))
    assert saved.evaluate(xv, yv) == pytest.approx(val[best], rel=1e-6)


def summary_rows(model):
    """{layer name: (type, params)} and the three totals, read from summary()'s text (a
    "name (Type)" too long for its column goes on as "(Type)" on the next line)."""
    lines = []
    model.summary(print_fn=lines.append)
    rows = {}
    for line, after in zip(lines, lines[1:]):
        m = re.match(r"(\S+)(?: \((\w+)\))?\s+\(None[^)]*\)\s+([\d,]+)", line)
        if m:
            kind = m.group(2) or re.match(r"\((\w+)\)", after).group(1)
            rows[m.group(1)] = (kind, int(m.group(3).replace(",", "")))
    totals = [int(re.search(rf"^{what} params: ([\d,]+) ", line).group(1).replace(",", ""))
              for what in ("Total", "Trainable", "Non-trainable")
              for line in lines if line.startswith(f"{what} params")]
    return rows, totals, lines


def test_summary_counts_are_kerass():
    # Keras's formulas: LSTM 4 u (d + u + 1); BatchNormalization 4 C (2 C non-trainable)
    model = combined_model()
    rows, totals, lines = summary_rows(model)
    want = [0, 4 * 8 * (3 + 8 + 1), 4 * 8, 0, 4 * 8 * (8 + 8 + 1), 8 * 8 + 8, 0, 8 * 3 + 3]
    assert [rows[layer.name] for layer in model.layers] == [
        (type(layer).__name__, params) for layer, params in zip(model.layers, want)]
    total = sum(want)
    assert totals == [total, total - 2 * 8, 2 * 8]
    # "batch_normalization (BatchNormalization)" is longer than its column: it wraps, and
    # the shape column still starts where the header's does
    shape_at = lines[2].index("Output Shape")
    bn = next(line for line in lines if line.startswith(model.layers[2].name + " "))
    assert bn[shape_at - 1] == " " and bn[shape_at:].startswith("(None, 6, 8)")
    # the example: BatchNormalization on 64 channels is 256 parameters, 128 of them
    # not trainable (the moving statistics)
    conv_bn = dlfast.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(64, 3),
                                 layers.BatchNormalization()])
    rows, totals, _ = summary_rows(conv_bn)
    assert [params for _, params in rows.values()] == [3 * 3 * 3 * 64 + 64, 256]
    assert totals == [1792 + 256, 1792 + 128, 128]


def combined_inference(model, x):
    """The combined model in inference mode, in float64 NumPy from its weights: Dropout is
    the identity and BatchNormalization uses the moving statistics."""
    (k1, r1, b1, gamma, beta, mean, var, k2, r2, b2, wd, bd, wo, bo) = model.get_weights()
    h1, _, _ = ref_forward(x, k1, r1, b1)
    bn = (h1 - mean) / np.sqrt(var + 1e-3) * gamma + beta
    h2 = ref_forward(bn, k2, r2, b2)[0][:, -1]
    s = h2 + np.tanh(h2 @ wd + bd)
    return ref.act_forward(s @ wo + bo, "softmax")


def trained_combined_model(rng):
    """A float64 combined model after a few Adam steps, its moving statistics far from 0
    and 1 (so that using them, or not, shows)."""
    x, y = sequences(rng, 32, "float64")
    dlfast.manual_seed(4)
    model = combined_model("float64")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    bn = model.layers[2]
    bn.weights[2][...] = rng.uniform(-0.5, 0.5, 8)
    bn.weights[3][...] = rng.uniform(0.2, 2.0, 8)
    return model


def test_predict_runs_in_inference_mode(rng):
    model = trained_combined_model(rng)
    x, _ = sequences(rng, 20, "float64")
    state = dlfast._random.generator().bit_generator.state
    weights = model.get_weights()
    got = model.predict(x, batch_size=8)
    np.testing.assert_allclose(got, combined_inference(model, x), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(model.predict(x), got)  # nothing random
    assert dlfast._random.generator().bit_generator.state == state  # no mask was drawn
    for a, b in zip(model.get_weights(), weights):  # the moving statistics stayed
        np.testing.assert_array_equal(a, b)
    # while a training forward does drop units and normalize with the batch's statistics
    assert not np.allclose(model.forward(x, training=True), got, atol=1e-3)


def test_evaluate_reports_data_loss_plus_penalties(rng):
    model = trained_combined_model(rng)
    x, y = sequences(rng, 20, "float64")
    p = combined_inference(model, x)
    data_loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    w = model.get_weights()
    penalty = L2 * np.sum(w[10] ** 2) + L1 * np.sum(np.abs(w[12]))
    loss, accuracy = model.evaluate(x, y, batch_size=8)
    assert penalty > 1e-3 * data_loss  # large enough to show
    assert loss == pytest.approx(data_loss + penalty, rel=1e-10)
    assert accuracy == pytest.approx(np.mean(p.argmax(1) == y))
    logs = model.evaluate(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(data_loss + penalty, rel=1e-10)


def test_combined_model_gradcheck():
    """Backward of the whole combined model in training mode (batch statistics, a dropout
    mask that gradcheck replays for every evaluation) against finite differences."""
    dlfast.manual_seed(6)
    report = dlfast.utils.gradcheck(combined_model("float64"), (6, 3), batch_size=3,
                                    max_entries=12)
    assert report.passed, str(report)
    assert len(report.errors) == 1 + 3 + 2 + 3 + 2 + 2  # input; trainable weights only
