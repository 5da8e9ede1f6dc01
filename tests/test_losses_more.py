"""dlfast.losses MeanAbsoluteError ('mae', 'mean_absolute_error'), Huber(delta) ('huber') and
KLDivergence ('kl_divergence', 'kld'): the loss objects against Keras 3's formulas in float64
NumPy, their names and configs, fit lowering each loss, the model's train step and evaluate
using Huber's delta, save/load keeping it, shape errors, and the GPU path refusing them by
name."""

import numpy as np
import pytest

import dlfast
from dlfast import cuda, losses
from dlfast.layers import Dense, Input
from dlfast.models import load_model
import reference as ref


@pytest.mark.parametrize("name,cls", [("mae", losses.MeanAbsoluteError),
                                      ("mean_absolute_error", losses.MeanAbsoluteError),
                                      ("huber", losses.Huber),
                                      ("kl_divergence", losses.KLDivergence),
                                      ("kld", losses.KLDivergence)])
def test_names(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    assert type(losses.get(cls)) is cls
    model = dlfast.Sequential([Input((3,)), Dense(2)])
    model.compile("sgd", loss=name)
    assert type(model.loss) is cls


def test_objects_and_functions_follow_keras(dtype, rng):
    t = rng.standard_normal((6, 4)).astype(dtype)
    p = rng.standard_normal((6, 4)).astype(dtype)
    tol = dict(rel=2e-6 if dtype == np.float32 else 1e-12)
    assert losses.MeanAbsoluteError()(t, p) == pytest.approx(ref.mae(t, p)[0], **tol)
    assert losses.mean_absolute_error(t, p) == pytest.approx(ref.mae(t, p)[0], **tol)
    assert losses.Huber()(t, p) == pytest.approx(ref.huber(t, p)[0], **tol)
    assert losses.Huber(0.25)(t, p) == pytest.approx(ref.huber(t, p, 0.25)[0], **tol)
    assert losses.huber(t, p, delta=3.0) == pytest.approx(ref.huber(t, p, 3.0)[0], **tol)
    value, grad = losses.Huber(0.25).value_and_grad(t, p)
    np.testing.assert_allclose(grad, ref.huber(t, p, 0.25)[1], rtol=1e-5, atol=1e-9)
    q = np.abs(t) / np.abs(t).sum(-1, keepdims=True)
    r = np.abs(p) / np.abs(p).sum(-1, keepdims=True)
    assert losses.KLDivergence()(q, r) == pytest.approx(ref.kl_divergence(q, r)[0], **tol)
    assert losses.kl_divergence(q, r) == pytest.approx(ref.kl_divergence(q, r)[0], **tol)


def test_configs_and_reprs():
    assert losses.Huber().get_config() == {"name": "huber", "delta": 1.0}
    assert losses.Huber(0.5).get_config() == {"name": "huber", "delta": 0.5}
    assert losses.MeanAbsoluteError().get_config() == {"name": "mae"}
    assert losses.KLDivergence().get_config() == {"name": "kl_divergence"}
    assert repr(losses.Huber(2)) == "Huber(delta=2.0)"
    assert repr(losses.MeanAbsoluteError()) == "MeanAbsoluteError()"
    assert repr(losses.KLDivergence()) == "KLDivergence()"


@pytest.mark.parametrize("delta,match", [(0, r"Huber: delta must be a finite number > 0, got "
                                             r"0.0"),
                                         (-1.0, r"Huber: delta must be a finite number > 0"),
                                         (float("nan"), r"Huber: delta must be a finite"),
                                         ("big", r"Huber: delta must be a number, got 'big'")])
def test_bad_huber_delta(delta, match):
    with pytest.raises(ValueError, match=match):
        losses.Huber(delta)


def regression(rng, n=200):
    x = rng.standard_normal((n, 4))
    y = x @ np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 1.5], [-1.0, 1.0]]) + 0.5
    y[::17] += 8.0  # outliers: what mae and Huber are for
    return x, y


@pytest.mark.parametrize("loss", ["mae", "huber", "huber-0.3"])
def test_fit_lowers_regression_losses(loss, rng):
    x, y = regression(rng)
    dlfast.manual_seed(0)
    model = dlfast.Sequential([Input((4,)), Dense(16, activation="tanh"), Dense(2)])
    model.compile(dlfast.optimizers.Adam(0.01),
                  losses.Huber(0.3) if loss == "huber-0.3" else loss)
    before = model.evaluate(x, y)
    history = model.fit(x, y, batch_size=16, epochs=30, verbose=0)
    after = model.evaluate(x, y)
    assert after < 0.5 * before, (before, after)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # evaluate() is Keras's formula on the model's own predictions
    want = {"mae": lambda p: ref.mae(y, p)[0], "huber": lambda p: ref.huber(y, p)[0],
            "huber-0.3": lambda p: ref.huber(y, p, 0.3)[0]}[loss](model.predict(x))
    assert after == pytest.approx(want, rel=1e-5)


def test_fit_lowers_the_kl_divergence(rng):
    x = rng.standard_normal((240, 5))
    logits = 3 * np.sin(x @ rng.standard_normal((5, 3)))  # not reachable by one softmax layer
    target = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # soft labels
    dlfast.manual_seed(1)
    model = dlfast.Sequential([Input((5,)), Dense(3, activation="softmax")])
    model.compile(dlfast.optimizers.Adam(0.05), "kld")
    before = model.evaluate(x, target)
    model.fit(x, target, batch_size=16, epochs=30, verbose=0)
    after = model.evaluate(x, target)
    assert after < 0.7 * before, (before, after)
    assert after == pytest.approx(ref.kl_divergence(target, model.predict(x))[0], rel=1e-5)


def test_train_on_batch_uses_hubers_delta(rng):
    x, y = regression(rng, 32)
    dlfast.manual_seed(2)
    model = dlfast.Sequential([Input((4,)), Dense(2)], dtype="float64")
    model.compile(dlfast.optimizers.SGD(0.1), losses.Huber(0.2))
    w, b = (a.copy() for a in model.get_weights())
    p = x @ w + b
    want_loss, want_grad = ref.huber(y, p, 0.2)
    assert model.train_on_batch(x, y) == pytest.approx(want_loss, rel=1e-12)
    # one SGD step with the gradient of Huber(0.2), back-propagated through the Dense layer
    np.testing.assert_allclose(model.get_weights()[0], w - 0.1 * x.T @ want_grad, rtol=1e-12)
    np.testing.assert_allclose(model.get_weights()[1], b - 0.1 * want_grad.sum(0), rtol=1e-12)


def test_save_load_keeps_the_loss_and_its_delta(tmp_path, rng):
    x, y = regression(rng, 20)
    for loss in (losses.Huber(0.3), losses.MeanAbsoluteError(), losses.KLDivergence()):
        model = dlfast.Sequential([Input((4,)), Dense(2)])
        model.compile("adam", loss)
        model.save(tmp_path / "m.dlfast")
        loaded = load_model(tmp_path / "m.dlfast")
        assert type(loaded.loss) is type(loss)
        assert loaded.loss.get_config() == loss.get_config()
        assert loaded.evaluate(x, y) == model.evaluate(x, y)


@pytest.mark.parametrize("loss", ["mae", "huber", "kld"])
def test_fit_with_targets_of_the_wrong_shape_is_refused(loss):
    model = dlfast.Sequential([Input((4,)), Dense(3)])
    model.compile("sgd", loss)
    with pytest.raises(ValueError, match=r"y must have shape \(batch, 3\) to match the model's "
                                         r"output, got \(8, 2\)"):
        model.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)
    with pytest.raises(ValueError, match=r"y has 7 samples, x has 8"):
        model.fit(np.zeros((8, 4)), np.zeros((7, 3)), verbose=0)


def test_the_gpu_path_names_a_loss_it_lacks(standin):
    model = dlfast.Sequential([Input((4,)), Dense(2)])
    model.compile("sgd", "huber")
    model.to("cuda")
    before = model.get_weights()
    with pytest.raises(NotImplementedError, match=r"loss Huber has no CUDA implementation yet; "
                                                  r"on the GPU: mse, binary_crossentropy"):
        model.train_on_batch(np.zeros((3, 4), np.float32), np.zeros((3, 2), np.float32))
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(NotImplementedError, match=r"loss 'mae' has no CUDA implementation"):
        cuda.ops.loss_value_and_grad("mae", np.zeros((2, 2), np.float32),
                                     np.zeros((2, 2), np.float32))
