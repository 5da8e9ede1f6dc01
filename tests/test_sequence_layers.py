"""GRU, SimpleRNN, Embedding and LayerNormalization as layers (issue 15): forward against
float64 NumPy from Keras 3's published equations, backward against finite differences
(odd T, batch 1, return_state, initial states), in models, and bad input. Their numbers
against Keras itself: tests/test_interop_keras.py."""

import numpy as np
import pytest

import dlfast
from dlfast.layers import (GRU, Bidirectional, Dense, Embedding, Flatten, Input,
                           LayerNormalization, SimpleRNN)
from dlfast.utils import gradcheck


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def gru_numpy(x, kernel, recurrent, bias, h0=None):
    """Keras 3's GRU, reset_after=True: z, r, h~ columns; bias rows input, recurrent."""
    n, steps, _ = x.shape
    u = recurrent.shape[0]
    b_in, b_rec = (np.zeros(3 * u), np.zeros(3 * u)) if bias is None else bias
    h = np.zeros((n, u)) if h0 is None else h0
    out = []
    for t in range(steps):
        xz = x[:, t] @ kernel + b_in
        hz = h @ recurrent + b_rec
        z = sigmoid(xz[:, :u] + hz[:, :u])
        r = sigmoid(xz[:, u:2 * u] + hz[:, u:2 * u])
        hh = np.tanh(xz[:, 2 * u:] + r * hz[:, 2 * u:])
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out, 1)


def rnn_numpy(x, kernel, recurrent, bias, h0=None):
    h = np.zeros((x.shape[0], recurrent.shape[0])) if h0 is None else h0
    out = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + (0 if bias is None else bias))
        out.append(h)
    return np.stack(out, 1)


@pytest.mark.parametrize("cls,ref", [(GRU, gru_numpy), (SimpleRNN, rnn_numpy)],
                         ids=["gru", "simple_rnn"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", [(1, 1, 2), (3, 5, 4), (2, 8, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_recurrent_forward_matches_numpy(cls, ref, use_bias, shape, rng):
    layer = cls(4, return_sequences=True, use_bias=use_bias, dtype="float64")
    layer.build(shape[1:])
    for w in layer.weights:
        w[...] = rng.uniform(-0.7, 0.7, w.shape)
    x = rng.standard_normal(shape)
    h0 = rng.standard_normal((shape[0], 4))
    w = layer.get_weights()
    bias = w[2] if use_bias else None
    np.testing.assert_allclose(layer.forward(x), ref(x, w[0], w[1], bias), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(layer.forward(x, initial_state=[h0]),
                               ref(x, w[0], w[1], bias, h0), rtol=1e-10, atol=1e-12)
    last = cls(4, use_bias=use_bias, dtype="float64")
    last.build(shape[1:])
    last.set_weights(w)
    np.testing.assert_allclose(last.forward(x), ref(x, w[0], w[1], bias)[:, -1], rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("cls", [GRU, SimpleRNN], ids=["gru", "simple_rnn"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("steps,batch", [(1, 1), (5, 2), (4, 3)])
def test_recurrent_gradients_match_finite_differences(cls, return_sequences, steps, batch):
    report = gradcheck(cls(3, return_sequences=return_sequences), (steps, 2),
                       batch_size=batch)
    assert report.passed, report.failed
    assert len(report.weight_errors) == 3


@pytest.mark.parametrize("cls", [GRU, SimpleRNN], ids=["gru", "simple_rnn"])
def test_return_state_and_the_initial_state_gradient(cls, rng):
    """backward([d_out, dh]) from a forward with h0 returns [dx, dh0], checked against central
    differences of sum(out * R1) + sum(h * R2) in float64."""
    layer = cls(3, return_sequences=True, return_state=True, dtype="float64")
    layer.build((5, 2))
    x, h0 = rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 3))
    out, h = layer.forward(x, initial_state=h0)
    np.testing.assert_array_equal(h, out[:, -1])
    r1, r2 = rng.standard_normal(out.shape), rng.standard_normal(h.shape)
    layer.zero_grad()
    dx, dh0 = layer.backward([r1, r2])

    def objective(x_, h0_):
        o, hl = layer.forward(x_, initial_state=h0_)
        return float(np.sum(o * r1) + np.sum(hl * r2))
    eps = 1e-6
    for a, grad in ((x, dx), (h0, dh0)):
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            up = objective(x, h0)
            a[i] = old - eps
            down = objective(x, h0)
            a[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_gru_weights_have_keras_layout():
    layer = GRU(5, name="g")
    layer.build((7, 3))
    assert layer.weight_names == ["kernel", "recurrent_kernel", "bias"]
    assert [w.shape for w in layer.weights] == [(3, 15), (5, 15), (2, 15)]
    assert layer.count_params() == 3 * 15 + 5 * 15 + 30  # Keras's count for GRU(5) on 3


def test_layer_normalization_matches_numpy_and_finite_differences(rng):
    layer = LayerNormalization(epsilon=1e-3, dtype="float64")
    layer.build((4, 6))
    layer.weights[0][...] = rng.uniform(0.5, 1.5, 6)
    layer.weights[1][...] = rng.uniform(-1, 1, 6)
    x = rng.standard_normal((3, 4, 6)) * 3 + 1
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    want = (x - mean) / np.sqrt(var + 1e-3) * layer.weights[0] + layer.weights[1]
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-10, atol=1e-12)
    for center, scale in ((True, True), (False, True), (True, False), (False, False)):
        report = gradcheck(LayerNormalization(center=center, scale=scale), (3, 5),
                           batch_size=2)
        assert report.passed, (center, scale, report.failed)


def test_embedding_looks_up_and_scatters_its_gradient(rng):
    layer = Embedding(7, 3)
    ids = np.array([[1, 0, 6], [1, 1, 2]])
    y = layer.forward(ids)
    table = layer.weights[0]
    np.testing.assert_array_equal(y, table[ids])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    layer.zero_grad()
    assert layer.backward(dy) is None
    want = np.zeros((7, 3))
    np.add.at(want, ids, dy.astype(np.float64))
    np.testing.assert_allclose(layer.grads[0], want, rtol=1e-6, atol=1e-6)
    # float ids (a model casts its input to its dtype) are read as the same ids
    np.testing.assert_array_equal(layer.forward(ids.astype(np.float32)), y)
    # any sequence length once built
    assert layer.forward(np.zeros((2, 9), np.int64)).shape == (2, 9, 3)


@pytest.mark.parametrize("ids,message", [
    (np.array([[0, 7]]), r"'ids' must be in \[0, input_dim\) = \[0, 7\), got 7 at flat index 1"),
    (np.array([[-1, 2]]), r"'ids' must be in \[0, input_dim\) = \[0, 7\), got -1 at flat index 0"),
    (np.array([[0.5, 1.0]]), r"expected integer ids"),
    (np.array([[np.nan, 1.0]]), r"expected integer ids"),
])
def test_embedding_refuses_bad_ids(ids, message):
    layer = Embedding(7, 3)
    layer.build((2,))
    with pytest.raises(ValueError, match=message):
        layer.forward(ids)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match=r"mask_zero=True is not supported yet"):
        Embedding(5, 2, mask_zero=True)
    with pytest.raises(ValueError, match=r"only reset_after=True"):
        GRU(3, reset_after=False)
    with pytest.raises(ValueError, match=r"only activation='tanh'"):
        SimpleRNN(3, activation="relu")
    with pytest.raises(ValueError, match=r"only the last axis can be normalized"):
        LayerNormalization(axis=1).build((3, 4))
    with pytest.raises(ValueError, match=r"initial_state h0 must have shape \(batch, units\) = "
                                         r"\(2, 3\), got \(2, 4\)"):
        layer = GRU(3)
        layer.forward(np.zeros((2, 4, 2), np.float32), initial_state=np.zeros((2, 4)))


def test_digits_as_8_steps_of_8_pixels_with_a_gru(rng):
    """The issue's example task, small: a GRU on scikit-learn's digits read row by row."""
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    digits = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))  # writers mixed
    x = (digits.images[order] / 16.0).astype(np.float32)
    y = digits.target[order]
    dlfast.manual_seed(0)
    model = dlfast.Sequential([Input((8, 8)), GRU(32), Dense(10, activation="softmax")])
    model.compile(dlfast.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], epochs=15, batch_size=32, verbose=0)
    assert model.evaluate(x[1400:], y[1400:], return_dict=True)["accuracy"] > 0.93


def test_a_text_model_of_embedding_layernorm_and_bidirectional_gru_trains(rng):
    dlfast.manual_seed(1)
    ids = rng.integers(1, 20, (256, 6))
    y = (ids[:, 0] > 10).astype(np.int64)  # decided by the first token: the backward GRU's last
    model = dlfast.Sequential([Input((6,)), Embedding(20, 8), LayerNormalization(),
                               Bidirectional(GRU(8)), Dense(2, activation="softmax")])
    model.compile(dlfast.optimizers.Adam(0.02), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(ids, y, epochs=15, batch_size=32, verbose=0)
    assert model.evaluate(ids, y, return_dict=True)["accuracy"] > 0.95
    flat = dlfast.Sequential([Input((6,)), Embedding(20, 2), Flatten(), Dense(1)])
    assert flat.predict(ids[:3]).shape == (3, 1)
