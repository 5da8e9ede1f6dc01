"""Keras 3 weights files (issue 16), both ways, against Keras itself (its torch backend): a
file Keras wrote fills the dlfast model so that it predicts what the Keras model predicts, and
a file dlfast wrote fills the Keras model the same way (float32, 1e-5). Needs keras, torch and
h5py (CI installs them for this file: .ci/run); skipped with the reason where absent."""

import os

import numpy as np
import pytest

import dlfast
from dlfast import layers as L

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install keras "
                                            "torch==2.13.0; it runs on its torch backend)")
h5py = pytest.importorskip("h5py", reason="h5py is not installed")
if keras.backend.backend() != "torch":
    pytest.skip(f"Keras runs on {keras.backend.backend()}, these tests use its torch backend",
                allow_module_level=True)
K = keras.layers
# Keras 3.15's own NumPy 2 DeprecationWarnings (Variable.__array__ without copy=), not ours
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")


def mlp():
    return ((4,), lambda: [K.Dense(8, activation="relu"), K.Dense(3, activation="softmax")],
            lambda: [L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")])


def cnn():
    return ((8, 8, 3),
            lambda: [K.Conv2D(4, 3, padding="same", activation="relu"), K.BatchNormalization(),
                     K.MaxPooling2D(), K.Conv2D(6, 3, use_bias=False), K.Flatten(),
                     K.Dense(5)],
            lambda: [L.Conv2D(4, 3, padding="same", activation="relu"), L.BatchNormalization(),
                     L.MaxPooling2D(), L.Conv2D(6, 3, use_bias=False), L.Flatten(),
                     L.Dense(5)])


def lstm():
    return ((6, 3), lambda: [K.LSTM(5, return_sequences=True), K.Bidirectional(K.LSTM(4)),
                             K.Dense(2)],
            lambda: [L.LSTM(5, return_sequences=True), L.Bidirectional(L.LSTM(4)), L.Dense(2)])


def sequence():
    return ((6, 3), lambda: [K.GRU(5, return_sequences=True), K.LayerNormalization(),
                             K.SimpleRNN(4, return_sequences=True), K.Bidirectional(K.GRU(3)),
                             K.Dense(2)],
            lambda: [L.GRU(5, return_sequences=True), L.LayerNormalization(),
                     L.SimpleRNN(4, return_sequences=True), L.Bidirectional(L.GRU(3)),
                     L.Dense(2)])


def embedding():
    return ((5,), lambda: [K.Embedding(9, 4), K.GRU(3), K.Dense(2)],
            lambda: [L.Embedding(9, 4), L.GRU(3), L.Dense(2)])


def pair(make):
    shape, keras_layers, dlfast_layers = make()
    km = keras.Sequential([keras.Input(shape)] + keras_layers())
    dm = dlfast.Sequential([L.Input(shape)] + dlfast_layers())
    dm.build()
    rng = np.random.default_rng(0)
    km.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) if "variance" not in
                    v.path else rng.uniform(0.5, 2.0, w.shape).astype(np.float32)
                    for w, v in zip(km.get_weights(), km.weights)])
    x = rng.standard_normal((5,) + shape).astype(np.float32)
    if make is embedding:
        x = rng.integers(0, 9, (5,) + shape).astype(np.float32)
    return km, dm, x


def keras_predict(km, x):
    return np.asarray(km.predict(x, verbose=0))


@pytest.mark.parametrize("make", [mlp, cnn, lstm, sequence, embedding],
                         ids=lambda f: f.__name__)
def test_a_keras_file_fills_the_dlfast_model(make, tmp_path):
    km, dm, x = pair(make)
    km.save_weights(tmp_path / "k.weights.h5")
    dm.load_weights(tmp_path / "k.weights.h5")
    np.testing.assert_allclose(dm.predict(x), keras_predict(km, x), rtol=1e-5, atol=1e-5)
    for a, b in zip(dm.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [mlp, cnn, lstm, sequence, embedding],
                         ids=lambda f: f.__name__)
def test_a_dlfast_file_fills_the_keras_model(make, tmp_path):
    km, dm, x = pair(make)
    rng = np.random.default_rng(1)
    dm.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                    for w in dm.get_weights()])
    dm.save_weights(tmp_path / "d.weights.h5")
    km.load_weights(tmp_path / "d.weights.h5")
    np.testing.assert_allclose(keras_predict(km, x), dm.predict(x), rtol=1e-5, atol=1e-5)
    # and back: Keras file -> dlfast -> Keras file gives identical weights
    km.save_weights(tmp_path / "k.weights.h5")
    again = dlfast.Sequential([L.Input(x.shape[1:])] + make()[2]())
    again.load_weights(tmp_path / "k.weights.h5")
    for a, b in zip(again.get_weights(), dm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_functional_model_with_a_skip_connection(tmp_path):
    def build(lib):
        layers = K if lib is keras else L
        inp = (keras.Input if lib is keras else L.Input)((4,))
        h = layers.Dense(4, activation="relu")(inp)
        out = layers.Dense(2)(layers.Add()([inp, h]))
        return (keras.Model if lib is keras else dlfast.Model)(inp, out)
    km, dm = build(keras), build(dlfast)
    km.save_weights(tmp_path / "k.weights.h5")
    dm.load_weights(tmp_path / "k.weights.h5")
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(dm.predict(x), keras_predict(km, x), rtol=1e-5, atol=1e-6)


def test_another_architectures_file_is_refused_and_changes_nothing(tmp_path):
    km, _, _ = pair(mlp)
    km.save_weights(tmp_path / "k.weights.h5")
    other = dlfast.Sequential([L.Input((4,)), L.Dense(9), L.Dense(3)])
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"'layers/dense/vars/0' has shape \(4, 8\), layer "
                                         r"'.*'s weight has \(4, 9\)"):
        other.load_weights(tmp_path / "k.weights.h5")
    for a, b in zip(other.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    lstm_model = dlfast.Sequential([L.Input((3, 4)), L.LSTM(2)])
    with pytest.raises(ValueError, match=r"no group 'layers/lstm/cell/vars'"):
        lstm_model.load_weights(tmp_path / "k.weights.h5")


def test_a_truncated_file_is_refused(tmp_path):
    km, dm, _ = pair(mlp)
    km.save_weights(tmp_path / "k.weights.h5")
    data = (tmp_path / "k.weights.h5").read_bytes()
    (tmp_path / "t.weights.h5").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r"not a readable HDF5 file"):
        dm.load_weights(tmp_path / "t.weights.h5")
