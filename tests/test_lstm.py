"""The LSTM layer: Keras's weights and outputs, backward through time against the float64
reference of test_kernels_lstm, dlfast.utils.gradcheck of the layer and of LSTM models
(stacked, and in a functional graph), stacked LSTMs, the digits-as-sequences model, bad
input."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import dlfast
from dlfast.layers import LSTM, Add, Dense, Input
from dlfast.utils import gradcheck

from reference import central_diff
from test_kernels_lstm import ref_backward, ref_forward


def built_lstm(rng, units, features, dtype="float64", **kw):
    layer = LSTM(units, dtype=dtype, **kw)
    layer.build((None, features))
    # Weights away from the initial ones, so every gate matters.
    layer.set_weights([rng.standard_normal(w.shape) * 0.4 for w in layer.weights])
    return layer


def test_weights_follow_keras_layout():
    dlfast.manual_seed(0)
    layer = LSTM(5)
    layer.build((7, 3))
    kernel, recurrent, bias = layer.weights
    assert layer.weight_names == ["kernel", "recurrent_kernel", "bias"]
    assert kernel.shape == (3, 20) and recurrent.shape == (5, 20) and bias.shape == (20,)
    assert kernel.dtype == np.float32
    # unit_forget_bias: the forget block (second of i, f, c~, o) starts at 1, the rest at 0.
    np.testing.assert_array_equal(bias, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    # orthogonal recurrent kernel (Keras's default): orthonormal rows.
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(5), atol=1e-5)
    assert layer.count_params() == 4 * (5 * (3 + 5) + 5)
    no_forget = LSTM(5, unit_forget_bias=False)
    no_forget.build((7, 3))
    np.testing.assert_array_equal(no_forget.weights[2], 0)


def test_summary_counts_of_the_digits_model():
    model = dlfast.Sequential([Input((8, 8)), LSTM(64), Dense(10, activation="softmax")])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 64)" in text and "18,688" in text and "Total params: 19,338" in text
    seq = dlfast.Sequential([Input((8, 8)), LSTM(16, return_sequences=True)])
    seq.build()
    assert seq.output_shape == (8, 16)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_forward_matches_reference(return_sequences):
    rng = np.random.default_rng(0)
    layer = built_lstm(rng, 6, 4, return_sequences=return_sequences)
    x = rng.standard_normal((3, 5, 4))
    y = layer.forward(x)
    H, _, _ = ref_forward(x, *layer.weights)
    np.testing.assert_allclose(y, H if return_sequences else H[:, -1], rtol=1e-12, atol=1e-13)
    # a sequence of another length runs through the same built layer
    x2 = rng.standard_normal((2, 9, 4))
    H2, _, _ = ref_forward(x2, *layer.weights)
    np.testing.assert_allclose(layer.forward(x2), H2 if return_sequences else H2[:, -1],
                               rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_backward_matches_reference_and_adds_into_grads(return_sequences):
    rng = np.random.default_rng(1)
    layer = built_lstm(rng, 7, 3, return_sequences=return_sequences)
    x = rng.standard_normal((4, 6, 3))
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dH = dy if return_sequences else None
    dh_last = None if return_sequences else dy
    rx, rk, rr, rb, _, _ = ref_backward(dH, dh_last, None, x, *layer.weights)
    np.testing.assert_allclose(dx, rx, rtol=1e-10, atol=1e-12)
    for g, r in zip(layer.grads, (rk, rr, rb)):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
    layer.backward(dy)  # gradients add up (Layer.backward's contract)
    for g, r in zip(layer.grads, (rk, rr, rb)):
        np.testing.assert_allclose(g, 2 * r, rtol=1e-10, atol=1e-12)
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads)


def test_return_state_and_initial_state():
    rng = np.random.default_rng(2)
    layer = built_lstm(rng, 5, 4, return_sequences=True, return_state=True)
    x = rng.standard_normal((3, 4, 4))
    h0, c0 = rng.standard_normal((2, 3, 5))
    out, h, c = layer.forward(x, initial_state=[h0, c0])
    H, C, _ = ref_forward(x, *layer.weights, h0, c0)
    np.testing.assert_allclose(out, H, rtol=1e-12)
    np.testing.assert_allclose(h, H[:, -1], rtol=1e-12)
    np.testing.assert_allclose(c, C[:, -1], rtol=1e-12)
    d_out, dh, dc = rng.standard_normal(out.shape), *rng.standard_normal((2, 3, 5))
    dx, dh0, dc0 = layer.backward([d_out, dh, dc])
    rx, rk, rr, rb, rh0, rc0 = ref_backward(d_out, dh, dc, x, *layer.weights, h0, c0)
    for got, want in ((dx, rx), (dh0, rh0), (dc0, rc0), *zip(layer.grads, (rk, rr, rb))):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # None entries are zeros
    layer.zero_grad()
    layer.forward(x, initial_state=[h0, c0])
    dx2, _, _ = layer.backward([d_out, None, None])
    np.testing.assert_allclose(dx2, ref_backward(d_out, None, None, x, *layer.weights, h0, c0)[0],
                               rtol=1e-10, atol=1e-12)


def test_last_output_and_state_gradients_add_up():
    """return_sequences=False with return_state: output and h are the same tensor, so their
    gradients add."""
    rng = np.random.default_rng(3)
    layer = built_lstm(rng, 4, 2, return_state=True)
    x = rng.standard_normal((2, 3, 2))
    out, h, _ = layer.forward(x)
    np.testing.assert_array_equal(out, h)
    d_out, dh = rng.standard_normal((2, 2, 4))
    dx = layer.backward([d_out, dh, None])
    np.testing.assert_allclose(dx, ref_backward(None, d_out + dh, None, x, *layer.weights)[0],
                               rtol=1e-10, atol=1e-12)


def test_float32_layer_close_to_float64_reference():
    rng = np.random.default_rng(4)
    layer = built_lstm(rng, 33, 5, dtype="float32", return_sequences=True)
    x = rng.standard_normal((7, 12, 5)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    H, _, _ = ref_forward(x, *layer.weights)
    np.testing.assert_allclose(y, H, rtol=1e-4, atol=2e-5)


def test_stacked_lstm_gradients_match_finite_differences():
    """LSTM(return_sequences) -> LSTM -> Dense in a Sequential model: the model's backward
    against central differences of its own float64 forward."""
    rng = np.random.default_rng(5)
    dlfast.manual_seed(5)
    model = dlfast.Sequential([Input((4, 3)), LSTM(5, return_sequences=True), LSTM(4),
                               Dense(2)], dtype="float64")
    model.build()
    model.set_weights([rng.standard_normal(w.shape) * 0.5 for w in model.weights])
    x = rng.standard_normal((3, 4, 3))
    proj = rng.standard_normal((3, 2))
    model.zero_grad()
    model.forward(x, training=True)
    dx = model.backward(proj)
    params = [x] + model.weights
    numeric = central_diff(lambda: float((model.forward(x) * proj).sum()), params)
    np.testing.assert_allclose(dx, numeric[0], rtol=1e-6, atol=1e-8)
    for g, n in zip(model.grads, numeric[1:]):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kwargs", [{}, {"return_sequences": True},
                                    {"use_bias": False, "unit_forget_bias": False}],
                         ids=["last", "sequences", "no-bias"])
def test_lstm_layer_gradcheck(kwargs):
    dlfast.manual_seed(7)
    report = gradcheck(LSTM(4, **kwargs), (5, 3), batch_size=3)
    assert report.passed, str(report)
    want = ["input", "kernel", "recurrent_kernel"] + ["bias"] * kwargs.get("use_bias", True)
    assert list(report.errors) == want


def test_lstm_models_gradcheck():
    """The stacked Sequential model above, and a functional one where an LSTM's sequences
    skip over a second LSTM (Add) before the last step is read by a Dense."""
    dlfast.manual_seed(8)
    stacked = dlfast.Sequential([LSTM(5, return_sequences=True), LSTM(4), Dense(2)])
    report = gradcheck(stacked, (4, 3), batch_size=3)
    assert report.passed, str(report)
    assert len(report.errors) == 1 + 3 + 3 + 2
    x = Input((4, 3), dtype="float64")
    h = LSTM(5, return_sequences=True)(x)
    s = Add()([h, LSTM(5, return_sequences=True)(h)])
    graph = dlfast.Model(x, Dense(2, activation="tanh")(LSTM(3)(s)))
    report = gradcheck(graph, (4, 3), batch_size=2)
    assert report.passed, str(report)
    assert len(report.errors) == 1 + 3 * 3 + 2


def test_stacked_lstms_train():
    """Two stacked LSTMs learn to tell whether a sequence's sum is positive."""
    rng = np.random.default_rng(6)
    dlfast.manual_seed(6)
    x = rng.standard_normal((512, 10, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    model = dlfast.Sequential([Input((10, 1)), LSTM(16, return_sequences=True), LSTM(16),
                               Dense(2, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=20, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    assert hist.history["accuracy"][-1] > 0.9


def test_digits_lstm_reaches_95_percent():
    """Each 8x8 digit read as 8 time steps of 8 pixels: LSTM(64) -> Dense(10, softmax), SGD
    with momentum, stratified 75/25 split."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.25,
                                              stratify=digits.target, random_state=0)
    dlfast.manual_seed(0)
    model = dlfast.Sequential([Input((8, 8)), LSTM(64), Dense(10, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, y_tr, batch_size=32, epochs=20, verbose=0)
    _, acc = model.evaluate(x_te, y_te)
    assert acc >= 0.95, acc


def test_bad_input():
    rng = np.random.default_rng(7)
    layer = built_lstm(rng, 4, 3)
    with pytest.raises(ValueError, match="rank 2 where rank 3"):
        layer.forward(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, None, 3\)"):
        layer.forward(rng.standard_normal((2, 5, 4)))
    with pytest.raises(ValueError, match="needs inputs \\(batch, time, features\\)"):
        LSTM(4).forward(rng.standard_normal((2, 3)))
    x = rng.standard_normal((2, 5, 3))
    with pytest.raises(ValueError, match=r"h0 must have shape \(batch, units\) = \(2, 4\)"):
        layer.forward(x, initial_state=[np.zeros((2, 5)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="c0"):
        layer.forward(x, initial_state=[np.zeros((2, 4)), np.zeros((3, 4))])
    with pytest.raises(ValueError, match=r"list \[h0, c0\]"):
        layer.forward(x, initial_state=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="units must be a positive int"):
        LSTM(0)
    fresh = LSTM(4)
    with pytest.raises(RuntimeError, match="before forward"):
        fresh.backward(np.zeros((2, 4)))
    layer.forward(x)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 4\)"):
        layer.backward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="one array dy"):
        layer.backward([np.zeros((2, 4))] * 3)
    stateful = built_lstm(rng, 4, 3, return_state=True)
    stateful.forward(x)
    with pytest.raises(ValueError, match=r"\[d_output, dh, dc\]"):
        stateful.backward(np.zeros((2, 4)))


def test_lstm_in_a_functional_model_matches_sequential():
    """Stacked LSTMs declared functionally (calling layers on an Input) run and train like the
    same Sequential model."""
    rng = np.random.default_rng(8)
    dlfast.manual_seed(8)
    x_in = Input((6, 3))
    out = Dense(2)(LSTM(4)(LSTM(5, return_sequences=True)(x_in)))
    functional = dlfast.Model(x_in, out)
    sequential = dlfast.Sequential([Input((6, 3)), LSTM(5, return_sequences=True), LSTM(4),
                                    Dense(2)])
    sequential.build()
    sequential.set_weights(functional.get_weights())
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(functional.predict(x), sequential.predict(x))
    y = rng.standard_normal((3, 2)).astype(np.float32)
    for model in (functional, sequential):
        model.compile(optimizer="sgd", loss="mse")
    assert functional.train_on_batch(x, y) == sequential.train_on_batch(x, y)
    for a, b in zip(functional.get_weights(), sequential.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_lstm_in_a_functional_graph():
    """Called on an Input, an LSTM records a call (as any layer) and the model runs it; a
    model's layer has one input and one output, so return_state (in a graph or a
    Sequential) and initial_state are refused with a clear error."""
    rng = np.random.default_rng(9)
    x = Input((5, 3), dtype="float64")
    lstm = LSTM(4)
    model = dlfast.Model(x, lstm(x))
    assert model.output_shape == (4,) and lstm.input_shape == (5, 3)
    xs = rng.standard_normal((2, 5, 3))
    H, _, _ = ref_forward(xs, *lstm.weights)
    np.testing.assert_allclose(model.predict(xs), H[:, -1], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"this LSTM gives a list of outputs, and a layer of a "
                                         r"functional model must give one; run it on arrays"):
        LSTM(4, return_state=True)(Input((5, 3)))
    with pytest.raises(ValueError, match=r"this LSTM gives a list of outputs, and a layer of a "
                                         r"Sequential model must give one"):
        dlfast.Sequential([Input((5, 3)), LSTM(4, return_state=True), Dense(2)])
    with pytest.raises(ValueError, match="initial_state cannot be given in a functional"):
        LSTM(4)(Input((5, 3)), initial_state=[np.zeros((1, 4))] * 2)
