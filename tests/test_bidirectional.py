"""Bidirectional (issue 15) against float64 NumPy built from the LSTM's equations, finite
differences, a model's fit and file round trip, and bad input."""

import numpy as np
import pytest

import dlfast
from dlfast.layers import LSTM, Bidirectional, Dense, Input
from dlfast.utils import gradcheck

from test_kernels_lstm import ref_forward

MODES = ["concat", "sum", "mul", "ave"]


def merged(yf, yb, mode):
    return {"concat": lambda: np.concatenate([yf, yb], -1), "sum": lambda: yf + yb,
            "mul": lambda: yf * yb, "ave": lambda: (yf + yb) / 2}[mode]()


def numpy_bidirectional(x, weights, units, return_sequences, mode):
    """Both directions from the LSTM's reference, the backward one on x reversed in time."""
    f, b = weights[:3], weights[3:]
    Hf = ref_forward(x, *f)[0]
    Hb = ref_forward(x[:, ::-1], *b)[0]
    if return_sequences:
        return merged(Hf, Hb[:, ::-1], mode)
    return merged(Hf[:, -1], Hb[:, -1], mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 5, 3), (3, 7, 4)],
                         ids=lambda s: "x".join(map(str, s)))
def test_forward_matches_numpy(mode, return_sequences, shape, rng):
    layer = Bidirectional(LSTM(4, return_sequences=return_sequences), merge_mode=mode,
                          dtype="float64")
    layer.build(shape[1:])
    for w in layer.weights:
        w[...] = rng.uniform(-0.5, 0.5, w.shape)
    x = rng.standard_normal(shape)
    want = numpy_bidirectional(x, layer.get_weights(), 4, return_sequences, mode)
    got = layer.forward(x)
    assert got.shape == want.shape == (shape[0],) + layer.output_shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("steps", [1, 4, 5])
def test_gradients_match_finite_differences(mode, return_sequences, steps):
    layer = Bidirectional(LSTM(3, return_sequences=return_sequences), merge_mode=mode)
    report = gradcheck(layer, (steps, 2), batch_size=2)
    assert report.passed, report.failed
    assert len(report.weight_errors) == 6  # both directions checked


def test_weights_are_forward_then_backward_in_the_lstm_layout():
    layer = Bidirectional(LSTM(5, name="enc"))
    layer.build((7, 3))
    assert layer.weight_names == [f"{d}_enc/{n}" for d in ("forward", "backward")
                                  for n in ("kernel", "recurrent_kernel", "bias")]
    assert [w.shape for w in layer.weights] == [(3, 20), (5, 20), (20,)] * 2
    assert layer.output_shape == (10,)
    assert layer.count_params() == 2 * (3 * 20 + 5 * 20 + 20)
    # the two directions are independent copies, each with Keras's forget-gate bias of 1
    assert not np.shares_memory(layer.weights[0], layer.weights[3])
    np.testing.assert_array_equal(layer.weights[2][5:10], 1)


def test_any_sequence_length_after_build(rng):
    layer = Bidirectional(LSTM(2, return_sequences=True), dtype="float64")
    layer.build((4, 3))
    for steps in (1, 9):
        assert layer.forward(rng.standard_normal((2, steps, 3))).shape == (2, steps, 4)


def test_a_model_trains_and_round_trips_through_its_file(tmp_path, rng):
    dlfast.manual_seed(0)
    model = dlfast.Sequential([Input((6, 3)), Bidirectional(LSTM(8)), Dense(2)])
    model.compile(dlfast.optimizers.Adam(0.01), "mse")
    x = rng.standard_normal((64, 6, 3)).astype(np.float32)
    # the first step's and the last step's values: the backward direction reads the first
    # one last, the forward direction the last one
    y = np.stack([x[:, 0, 0], x[:, -1, 1]], 1)
    history = model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    model.save(tmp_path / "bi.dlfast")
    again = dlfast.models.load_model(tmp_path / "bi.dlfast")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert type(again.layers[0]) is Bidirectional
    assert again.layers[0].get_config() == model.layers[0].get_config()


def test_a_frozen_bidirectional_layer_is_not_updated(rng):
    model = dlfast.Sequential([Input((4, 2)), Bidirectional(LSTM(3)), Dense(1)])
    model.compile("sgd", "mse")
    model.layers[0].trainable = False
    before = model.layers[0].get_weights()
    model.train_on_batch(rng.standard_normal((8, 4, 2)), rng.standard_normal((8, 1)))
    for a, b in zip(model.layers[0].get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match=r"Bidirectional: expected a recurrent dlfast layer "
                                        r"\(LSTM\), got Dense"):
        Bidirectional(Dense(3))
    with pytest.raises(ValueError, match=r"merge_mode must be one of .*got None"):
        Bidirectional(LSTM(3), merge_mode=None)
    with pytest.raises(ValueError, match=r"return_state=True, which Bidirectional does not"):
        Bidirectional(LSTM(3, return_state=True))
    layer = Bidirectional(LSTM(3), dtype="float64")
    layer.build((4, 2))
    layer.forward(np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 6\), got "
                                         r"\(2, 3\)"):
        layer.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"'layer' must name a dlfast layer"):
        Bidirectional.from_config({"layer": {"class_name": "Lambda", "config": {}},
                                   "merge_mode": "concat"})


def test_model_to_cuda_refuses_it(standin):
    model = dlfast.Sequential([Input((4, 2)), Bidirectional(LSTM(3), name="bi"), Dense(1)])
    with pytest.raises(NotImplementedError, match=r"layer 'bi' \(Bidirectional\) has no CUDA"):
        model.to("cuda")
