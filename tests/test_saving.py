"""Files: save -> load_model gives identical predictions, config and compile settings
(Sequential and functional, float32 and float64, with and without the optimizer's state);
training resumes exactly where it stopped; save_weights/load_weights; every layer's config
rebuilds it; a kill during a save leaves the previous file intact; missing, truncated,
corrupted and mismatched files are refused with a clear error and change nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import safetensors.numpy

import dlfast
from dlfast import layers
from dlfast.layers import (Activation, Add, AveragePooling2D, Conv2D, Dense, Flatten,
                           GlobalAveragePooling2D, Input, MaxPooling2D, ReLU)
from dlfast.models import load_model


def sequential(dtype):
    return dlfast.Sequential([Input((6,)), Dense(8, activation="tanh"),
                              Dense(4, activation="relu", use_bias=False),
                              Dense(3, activation="softmax")], dtype=dtype)


def functional(dtype):
    x = Input((6, 6, 1), dtype=dtype)
    h = Conv2D(4, 3, padding="same", activation="relu")(x)
    r = Conv2D(4, 3, padding="same")(h)
    h = Activation("relu")(Add()([h, r]))
    out = Dense(3, activation="softmax")(Flatten()(MaxPooling2D(2)(h)))
    return dlfast.Model(x, out)


def data(model, rng, n=12):
    return (rng.standard_normal((n,) + model.input_shape), rng.integers(0, 3, n))


def compiled(kind, dtype, momentum=0.9):
    model = sequential(dtype) if kind == "sequential" else functional(dtype)
    model.compile(optimizer=dlfast.optimizers.SGD(0.05, momentum=momentum, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


KINDS = ["sequential", "functional"]
DTYPES = ["float32", "float64"]


@pytest.mark.parametrize("include_optimizer", [True, False], ids=["with_opt", "no_opt"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_predictions(kind, dtype, include_optimizer, tmp_path, rng):
    model = compiled(kind, dtype)
    x, y = data(model, rng)
    for lo in (0, 6):
        model.train_on_batch(x[lo:lo + 6], y[lo:lo + 6])
    path = tmp_path / "m.dlfast"
    model.save(path, include_optimizer=include_optimizer)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded is not model
    assert loaded.dtype == np.dtype(dtype)
    as_json = lambda m: json.loads(json.dumps(m.get_config()))
    assert as_json(loaded) == as_json(model)
    assert loaded.weight_names == model.weight_names
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # compiled again: same loss, metrics and optimizer configuration
    assert type(loaded.loss) is type(model.loss)
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
    assert loaded.optimizer.iterations == (2 if include_optimizer else 0)


def interrupted_run(make, tmp_path, rng):
    """Two models from make() with the same weights: the reference trains on 4 batches, the
    other on 2, is saved and loaded. Returns (model, resumed, reference, batches)."""
    reference, model = make(), make()
    model.set_weights(reference.get_weights())
    x, y = data(model, rng, 24)
    batches = [(x[i:i + 6], y[i:i + 6]) for i in range(0, 24, 6)]
    for xb, yb in batches:
        reference.train_on_batch(xb, yb)
    for xb, yb in batches[:2]:
        model.train_on_batch(xb, yb)
    model.save(tmp_path / "m.dlfast")
    return model, load_model(tmp_path / "m.dlfast"), reference, batches


@pytest.mark.parametrize("kind", KINDS)
def test_training_resumes_identically(kind, tmp_path, rng):
    # 2 steps, save, load, 2 more steps == 4 steps without interruption (momentum carried)
    dlfast.manual_seed(5)
    model, resumed, reference, batches = interrupted_run(lambda: compiled(kind, "float64"),
                                                         tmp_path, rng)
    state = resumed.optimizer.get_state(resumed._optimizer_arrays()[1])
    assert state["iterations"] == 2 and any(np.any(v != 0) for k, v in state.items()
                                            if k.endswith("/momentum"))
    for xb, yb in batches[2:]:
        resumed.train_on_batch(xb, yb)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    # without the optimizer's state the momentum starts again from zero: not the same run
    model.save(tmp_path / "plain.dlfast", include_optimizer=False)
    fresh = load_model(tmp_path / "plain.dlfast")
    for xb, yb in batches[2:]:
        fresh.train_on_batch(xb, yb)
    assert any(np.any(a != b) for a, b in zip(fresh.get_weights(), reference.get_weights()))


def test_optimizer_state_round_trip_and_checks(rng):
    w = [np.zeros((3, 2)), np.zeros(4)]
    opt = dlfast.optimizers.SGD(0.1, momentum=0.5)
    for _ in range(3):
        opt.apply([rng.standard_normal((3, 2)), rng.standard_normal(4)], w)
    state = opt.get_state(w)
    assert set(state) == {"iterations", "0/momentum", "1/momentum"}
    assert state["iterations"] == 3
    np.testing.assert_array_equal(state["0/momentum"], opt.slot(w[0], "momentum"))
    other = [np.zeros((3, 2)), np.zeros(4)]
    opt2 = dlfast.optimizers.SGD(0.1, momentum=0.5)
    opt2.set_state(other, state)
    assert opt2.iterations == 3
    np.testing.assert_array_equal(opt2.slot(other[1], "momentum"), state["1/momentum"])
    bad = dict(state, **{"1/momentum": np.zeros(5)})
    opt3 = dlfast.optimizers.SGD(0.1, momentum=0.5)
    with pytest.raises(ValueError, match=r"'1/momentum' is a float64 array of shape \(5,\)"):
        opt3.set_state(other, bad)
    assert opt3.iterations == 0 and not opt3._slots  # nothing was set
    with pytest.raises(ValueError, match="unexpected entry '7/momentum'"):
        opt3.set_state(other, {"iterations": np.array(1), "7/momentum": np.zeros(1)})
    with pytest.raises(ValueError, match="expected 'iterations'"):
        opt3.set_state(other, {"0/momentum": np.zeros((3, 2))})


def test_save_weights_load_weights(tmp_path, rng):
    model = functional("float32")
    model.save_weights(tmp_path / "w.dlfast")
    other = functional("float32")  # another initialisation, same structure
    x, _ = data(model, rng)
    assert np.any(other.predict(x) != model.predict(x))
    other.load_weights(tmp_path / "w.dlfast")
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="holds only weights.*load_weights"):
        load_model(tmp_path / "w.dlfast")
    # a full model file also gives its weights
    model.save(tmp_path / "m.dlfast")
    third = functional("float32")
    third.load_weights(tmp_path / "m.dlfast")
    np.testing.assert_array_equal(third.predict(x), model.predict(x))


def test_load_weights_of_another_model_changes_nothing(tmp_path):
    sequential("float32").save_weights(tmp_path / "seq.dlfast")
    model = functional("float32")
    before = model.get_weights()
    with pytest.raises(ValueError, match="holds 5 weight arrays, the model has 6.*not this"):
        model.load_weights(tmp_path / "seq.dlfast")
    # same count, one shape different: refused before any weight is written
    wide = dlfast.Sequential([Input((6,)), Dense(8, activation="tanh"), Dense(4, use_bias=False),
                              Dense(3)])
    narrow = dlfast.Sequential([Input((6,)), Dense(8), Dense(5, use_bias=False), Dense(3)])
    wide.save_weights(tmp_path / "wide.dlfast")
    kept = narrow.get_weights()
    with pytest.raises(ValueError, match=r"do not fit.*expected shape \(8, 5\), got \(8, 4\)"):
        narrow.load_weights(tmp_path / "wide.dlfast")
    for a, b in zip(narrow.get_weights(), kept):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


LAYERS = [
    lambda: Dense(5, activation="relu", use_bias=False, kernel_initializer="he_normal",
                  input_shape=(7,), name="d", dtype="float64"),
    lambda: Conv2D(4, (3, 2), strides=2, padding="same", dilation_rate=1, activation="tanh",
                   bias_initializer="ones"),
    lambda: MaxPooling2D(3, strides=1, padding="same"),
    lambda: AveragePooling2D((2, 1)),
    lambda: GlobalAveragePooling2D(),
    lambda: Flatten(),
    lambda: Activation("sigmoid"),
    lambda: ReLU(),
    lambda: Input((4, 3), dtype="float64"),
    lambda: Add(),
    lambda: layers.LSTM(6, return_sequences=True, return_state=True, unit_forget_bias=False,
                        use_bias=False, recurrent_initializer="glorot_uniform", dtype="float64"),
    lambda: layers.Dropout(0.3, noise_shape=(None, 1), seed=4),
    lambda: layers.BatchNormalization(momentum=0.9, epsilon=1e-4, center=False,
                                      gamma_initializer="zeros"),
    lambda: layers.UpSampling2D((2, 3), dtype="float64"),
    lambda: layers.ZeroPadding2D(((1, 0), (2, 3))),
    lambda: layers.Reshape((-1, 4), input_shape=(8,)),
    lambda: layers.Concatenate(axis=1),
    lambda: layers.LeakyReLU(0.1),
    lambda: layers.Conv2DTranspose(4, (3, 2), strides=2, padding="same", output_padding=(1, 0),
                                   activation="relu", kernel_regularizer="l2"),
    lambda: layers.Bidirectional(layers.LSTM(3, return_sequences=True, name="inner"),
                                 merge_mode="ave", dtype="float64"),
    lambda: layers.GRU(4, return_sequences=True, use_bias=False, recurrent_initializer="zeros"),
    lambda: layers.SimpleRNN(3, return_state=True, dtype="float64"),
    lambda: layers.Embedding(10, 4, embeddings_initializer="glorot_uniform"),
    lambda: layers.LayerNormalization(epsilon=1e-5, center=False),
]


@pytest.mark.parametrize("make", LAYERS, ids=lambda f: type(f()).__name__)
def test_every_layer_is_rebuilt_from_its_json_config(make):
    layer = make()
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == layer.get_config()
    assert again.name == layer.name and again.dtype == layer.dtype


def test_every_exported_layer_class_is_covered():
    # a new layer class must join LAYERS above (and follow the get_config convention)
    exported = {name for name in layers.__all__ if isinstance(getattr(layers, name), type)
                and issubclass(getattr(layers, name), layers.Layer)} - {"Layer"}
    covered = {type(make()).__name__ for make in LAYERS}
    assert exported - covered == set()


class Scale(layers.Layer):
    """A user's layer: y = x * factor (no weights)."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call_forward(self, x, training):
        return x * self.factor

    def call_backward(self, dy, need_dx=True, accumulate=True):
        return dy * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_user_layers_load_only_through_custom_objects(tmp_path, rng):
    model = dlfast.Sequential([Input((3,)), Dense(2), Scale(3.0)])
    model.save(tmp_path / "m.dlfast")
    with pytest.raises(ValueError, match="unknown layer class 'Scale'.*custom_objects"):
        load_model(tmp_path / "m.dlfast")
    loaded = load_model(tmp_path / "m.dlfast", custom_objects={"Scale": Scale})
    x = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer is None  # it was not compiled


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.dlfast")
    with pytest.raises(FileNotFoundError):
        sequential("float32").load_weights(tmp_path / "nope.dlfast")
    with pytest.raises(FileNotFoundError):  # the folder to write into does not exist
        sequential("float32").save(tmp_path / "no" / "m.dlfast")


@pytest.fixture
def saved(tmp_path, rng):
    model = compiled("functional", "float32")
    model.train_on_batch(*data(model, rng))
    path = tmp_path / "m.dlfast"
    model.save(path)
    return model, path, path.read_bytes()


def header_length(raw):
    return 8 + int.from_bytes(raw[:8], "little")


def test_truncated_files_are_refused(saved, tmp_path):
    model, path, raw = saved
    for cut in (0, 5, 8, header_length(raw) // 2, header_length(raw), len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a readable safetensors file.*truncated"):
            load_model(path)
        before = model.get_weights()
        with pytest.raises(ValueError):
            model.load_weights(path)
        for a, b in zip(model.get_weights(), before):
            np.testing.assert_array_equal(a, b)


def test_corrupted_files_are_refused(saved, rng):
    model, path, raw = saved
    n = header_length(raw)
    # one flipped byte in the tensor data, anywhere: the checksum catches it
    for pos in rng.integers(n, len(raw), 5):
        bad = bytearray(raw)
        bad[pos] ^= 0x10
        path.write_bytes(bytes(bad))
        with pytest.raises(ValueError, match="corrupted: its contents do not match the checksum"):
            load_model(path)
    # the metadata changed while staying valid JSON ('relu' -> 'tanh' in the config)
    text = raw[8:n].decode()
    assert '\\"activation\\": \\"relu\\"' in text
    path.write_bytes(raw[:8] + text.replace('\\"relu\\"', '\\"tanh\\"', 1).encode() + raw[n:])
    with pytest.raises(ValueError, match="corrupted"):
        load_model(path)
    # broken JSON in the header
    path.write_bytes(raw[:8] + b"{" * (n - 8) + raw[n:])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model(path)
    path.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model(path)


def test_other_safetensors_files_and_bad_configs_are_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(safetensors.numpy.save({"w": np.zeros(3, np.float32)}))
    with pytest.raises(ValueError, match="not a dlfast one"):
        load_model(path)
    # a well-formed dlfast file whose config names a class dlfast does not have: no code runs
    from dlfast import saving
    model = sequential("float32")
    meta = {"contents": "model", "weight_names": model.weight_names,
            "model_config": {"class_name": "Popen", "config": {"args": ["true"]}}}
    saving._write(tmp_path / "evil.dlfast", {f"weights/{i}": w
                                            for i, w in enumerate(model.weights)}, meta)
    with pytest.raises(ValueError, match="unknown layer class 'Popen'"):
        load_model(tmp_path / "evil.dlfast")


@pytest.mark.parametrize("depth", [101, 50_000])
def test_deeply_nested_configs_are_refused_with_valueerror(tmp_path, depth):
    # Issue 18: 50,000 levels (valid checksum) raised RecursionError from the JSON decoder.
    from dlfast import saving
    text = ('{"class_name": "Sequential", "config": {"layers": [' * depth +
            '{"class_name": "Dense", "config": {"units": 1}}' + "]}}" * depth)
    tensors = {"weights/0": np.zeros(3, np.float32)}
    metadata = {"format": "dlfast", "format_version": str(saving.FORMAT_VERSION),
                "dlfast_version": dlfast.__version__, "contents": "model",
                "model_config": text, "weight_names": '["w"]'}
    metadata["sha256"] = saving._digest(metadata, tensors)
    path = tmp_path / "deep.dlfast"
    path.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))
    with pytest.raises(ValueError, match="model_config"):
        load_model(path)


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path, rng):
    model = sequential("float32")
    path = tmp_path / "m.dlfast"
    model.save(path)
    first = path.read_bytes()
    model.set_weights([w + 1 for w in model.get_weights()])
    model.save(path)
    assert path.read_bytes() != first
    assert os.listdir(tmp_path) == ["m.dlfast"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


# The child saves a model whose weights all equal k, for k = 1, 2, ...; it prints k after
# each save. In "mid_write" mode the second save writes half its bytes, says so and waits.
CHILD = r"""
import os, sys, time
import numpy as np
import dlfast
from dlfast import saving
from dlfast.layers import Dense, Input
mode, path = sys.argv[1], sys.argv[2]
model = dlfast.Sequential([Input((1000,)), Dense(2000), Dense(10)])
model.build()
real_fdopen = os.fdopen

class HalfThenWait:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def write(self, data):
        self.f.write(data[:len(data) // 2])
        self.f.flush()
        print("half", flush=True)
        time.sleep(60)

k = 0
while True:
    k += 1
    model.set_weights([np.full(w.shape, k) for w in model.weights])
    if mode == "mid_write" and k == 2:
        saving.os.fdopen = lambda fd, m: HalfThenWait(real_fdopen(fd, m))
    model.save(path)
    print(k, flush=True)
"""


def run_child(mode, path):
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, str(path)],
                            stdout=subprocess.PIPE, text=True)


def saved_version(path):
    """The k of a complete file (every weight equal to k); fails on a mixed or bad file."""
    values = {float(v) for w in load_model(path).get_weights() for v in np.unique(w)}
    assert len(values) == 1, f"a mix of saves: {sorted(values)[:5]}"
    return values.pop()


def test_a_kill_mid_write_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "big.dlfast"
    child = run_child("mid_write", path)
    try:
        assert child.stdout.readline().strip() == "1"
        assert child.stdout.readline().strip() == "half"  # the second save is half written
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
        child.stdout.close()
    leftovers = [f for f in os.listdir(tmp_path) if f != "big.dlfast"]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the half-written one
    assert saved_version(path) == 1.0


def test_kills_at_random_moments_never_damage_the_file(tmp_path, rng):
    path = tmp_path / "big.dlfast"
    for delay in rng.uniform(0.0, 0.4, 3):
        child = run_child("loop", path)
        try:
            last = int(child.stdout.readline())  # at least one save has finished
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(30)
            child.stdout.close()
        assert saved_version(path) >= last


def test_lstm_batchnorm_dropout_model_round_trip(tmp_path, rng):
    """The layers of the LSTM and training-toolbox issues save and load like the others:
    identical predictions, weights (BatchNormalization's moving statistics included) and
    training that resumes identically."""
    def make():
        model = dlfast.Sequential([Input((5, 3)), layers.LSTM(8, return_sequences=True),
                                   layers.LSTM(6), layers.BatchNormalization(),
                                   layers.Dropout(0.25), Dense(3, activation="softmax")])
        model.compile(optimizer=dlfast.optimizers.SGD(0.05, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        return model

    dlfast.manual_seed(1)
    model = make()
    x, y = rng.standard_normal((16, 5, 3)), rng.integers(0, 3, 16)
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.dlfast")
    loaded = load_model(tmp_path / "m.dlfast")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    dlfast.manual_seed(2)
    after_model = model.train_on_batch(x, y)
    dlfast.manual_seed(2)
    after_loaded = loaded.train_on_batch(x, y)
    assert after_model == after_loaded
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer", ["adam", "adamax", "adadelta", "sgdg2"])
def test_every_optimizer_resumes_identically(optimizer, tmp_path, rng):
    """Adam's moments, Adadelta's accumulators and SGD-G2's adapted step are saved with the
    model: 2 steps, save, load, 2 more == 4 steps in one go."""
    def make():
        model = sequential("float64")
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        return model

    dlfast.manual_seed(8)
    _, resumed, reference, batches = interrupted_run(make, tmp_path, rng)
    assert type(resumed.optimizer) is type(reference.optimizer)
    for xb, yb in batches[2:]:
        resumed.train_on_batch(xb, yb)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
