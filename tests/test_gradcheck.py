"""Finite-difference (central) gradient checks in float64: Dense with each activation (dx,
dkernel, dbias through layer.forward / layer.backward), each loss (from probabilities and from
logits), and a whole Sequential model with a scalar objective."""

import numpy as np
import pytest

import dlfast
from dlfast import _core, layers, ops
from reference import central_diff

# every activation the kernels list but leaky_relu (its slope has tests of its own): a new
# entry of DLFAST_ACTIVATIONS is tested here once tests/reference.py has its formula
ACTS = [n for n in _core.ACTIVATIONS if n != "leaky_relu"]


def assert_grad_close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=what)


def relu_margin_ok(z, eps=1e-6):
    return np.all(np.abs(z) > 100 * eps)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(1, 3, 2), (6, 5, 4), (4, 9, 17)],
                         ids=lambda s: "x".join(map(str, s)))
def test_dense_layer_gradients(isa, act, use_bias, shape, rng):
    N, D, U = shape
    layer = layers.Dense(U, activation=act, use_bias=use_bias, dtype="float64")
    layer.build((D,))
    for w in layer.weights:
        w[...] = rng.uniform(-1, 1, w.shape)
    x = rng.uniform(-1, 1, (N, D))
    R = rng.standard_normal((N, U))
    if act == "relu":
        z = x @ layer.weights[0] + (layer.weights[1] if use_bias else 0)
        assert relu_margin_ok(z), "pre-activation too close to the kink for this seed"

    def objective():
        return float(np.sum(layer.forward(x) * R))

    layer.forward(x)
    layer.zero_grad()
    dx = layer.backward(R)
    assert dx.shape == x.shape
    assert_grad_close(dx, central_diff(objective, [x])[0], "dx")
    num = central_diff(objective, layer.weights)
    # backward's gradients were added into layer.grads (after zero_grad)
    for name, g, n in zip(layer.weight_names, layer.grads, num):
        assert_grad_close(g, n, name)
    assert len(layer.grads) == (2 if use_bias else 1)


def test_dense_on_3d_input_gradients(rng):
    layer = layers.Dense(3, activation="tanh", dtype="float64")
    x = rng.uniform(-1, 1, (2, 4, 5))
    R = rng.standard_normal((2, 4, 3))
    y = layer.forward(x)
    assert y.shape == (2, 4, 3)

    def objective():
        return float(np.sum(layer.forward(x) * R))

    layer.forward(x)
    layer.zero_grad()
    dx = layer.backward(R)
    assert_grad_close(dx, central_diff(objective, [x])[0], "dx")
    for g, n in zip(layer.grads, central_diff(objective, layer.weights)):
        assert_grad_close(g, n, "weights")


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "softmax"])
def test_activation_layer_gradients(act, rng):
    layer = layers.Activation(act, dtype="float64")
    x = rng.uniform(-2, 2, (5, 6))
    x[np.abs(x) < 1e-3] = 0.5
    R = rng.standard_normal((5, 6))

    def objective():
        return float(np.sum(layer.forward(x) * R))

    layer.forward(x)
    assert_grad_close(layer.backward(R), central_diff(objective, [x])[0], act)


def _loss_case(name, rng, logits):
    N, C = 5, 4
    if name == "mse":
        return rng.standard_normal((N, C)), rng.standard_normal((N, C))
    if name == "binary_crossentropy":
        t = rng.integers(0, 2, (N, C)).astype(np.float64)
        p = rng.uniform(-4, 4, (N, C)) if logits else rng.uniform(0.05, 0.95, (N, C))
        return t, p
    labels = rng.integers(0, C, N)
    if logits:
        p = rng.uniform(-4, 4, (N, C))
    else:
        p = rng.uniform(0.1, 1, (N, C))
        p /= p.sum(axis=1, keepdims=True)
    if name == "sparse_categorical_crossentropy":
        return labels, p
    return np.eye(C)[labels], p


LOSS_CASES = [("mse", False)] + [
    (name, logits) for name in ("binary_crossentropy", "categorical_crossentropy",
                                "sparse_categorical_crossentropy") for logits in (False, True)]


@pytest.mark.parametrize("name, logits", LOSS_CASES,
                         ids=[f"{n}-{'logits' if l else 'probs'}" for n, l in LOSS_CASES])
def test_loss_gradients(isa, name, logits, rng):
    t, p = _loss_case(name, rng, logits)
    fwd = getattr(ops, f"{name}_forward")
    bwd = getattr(ops, f"{name}_backward")
    kw = {} if name == "mse" else {"from_logits": logits}
    grad = bwd(t, p, **kw)
    num = central_diff(lambda: fwd(t, p, **kw), [p])[0]
    assert_grad_close(grad, num, name)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy"])
def test_loss_classes_value_and_grad(loss, rng):
    cls = {"categorical_crossentropy": dlfast.losses.CategoricalCrossentropy,
           "binary_crossentropy": dlfast.losses.BinaryCrossentropy}[loss]
    t, z = _loss_case(loss, rng, True)
    value, grad = cls(from_logits=True).value_and_grad(t, z)
    num = central_diff(lambda: cls(from_logits=True)(t, z), [z])[0]
    assert_grad_close(grad, num, loss)
    assert value == pytest.approx(getattr(ops, f"{loss}_forward")(t, z, from_logits=True))


def test_sequential_model_gradients(isa, rng):
    dlfast.manual_seed(3)
    model = dlfast.Sequential([layers.Input((5,), dtype="float64"),
                               layers.Dense(7, activation="tanh"),
                               layers.Dense(6, activation="sigmoid"),
                               layers.Dense(6),
                               layers.Activation("relu"),
                               layers.Dense(4, activation="softmax")])
    model.build()
    assert model.dtype == np.float64 and all(w.dtype == np.float64 for w in model.weights)
    for w in model.weights:
        w[...] = rng.uniform(-1, 1, w.shape)
    assert len(model.grads) == len(model.weights) == 8
    check_model_gradients(model, rng.uniform(-1, 1, (3, 5)), rng.standard_normal((3, 4)))


def check_model_gradients(model, x, R):
    """A model's backward (dx, then every weight's gradient after zero_grad) against central
    differences of the scalar objective sum(model.forward(x) * R)."""
    def objective():
        return float(np.sum(model.forward(x) * R))

    model.forward(x, training=True)
    model.zero_grad()
    dx = model.backward(R)
    assert_grad_close(dx, central_diff(objective, [x])[0], "dx")
    num = central_diff(objective, model.weights)
    assert len(num) == len(model.grads) > 0
    for name, g, n in zip(model.weight_names, model.grads, num):
        assert_grad_close(g, n, name)
