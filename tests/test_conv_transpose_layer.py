"""The Conv2DTranspose layer: Keras 3's output shapes (its formula written out here, plus shapes
worked by hand), weight layout and initializer, forward/backward against a float64 NumPy
scatter, gradcheck, summary, save/load, the functional API, training, and bad input."""

import numpy as np
import pytest

import dlfast
from dlfast.layers import Conv2D, Conv2DTranspose, Dense, Flatten, Input
from dlfast.utils import gradcheck


def keras_length(n, k, s, d, padding, op):
    """keras/src/backend/common/backend_utils.py _get_output_shape_given_tf_padding."""
    k = (k - 1) * d + 1
    if padding == "valid":
        return (n - 1) * s + k + (max(k, s) - k if op is None else op)
    return n * s if op is None else (n - 1) * s + k % 2 + op


def summary_lines(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines


SHAPE_CASES = [
    # (kwargs, input (h, w, c))
    (dict(kernel_size=4, strides=2, padding="same"), (8, 8, 64)),
    (dict(kernel_size=3, strides=2, padding="same"), (7, 5, 3)),
    (dict(kernel_size=3, strides=2, padding="same", output_padding=1), (7, 5, 3)),
    (dict(kernel_size=3, strides=2, padding="same", output_padding=0), (7, 5, 3)),
    (dict(kernel_size=5, strides=3, padding="valid"), (4, 6, 2)),
    (dict(kernel_size=(2, 5), strides=(3, 1), padding="valid", output_padding=(2, 0)), (4, 6, 2)),
    (dict(kernel_size=1, strides=3), (5, 5, 1)),
    (dict(kernel_size=3, dilation_rate=2), (5, 6, 2)),
    (dict(kernel_size=3, dilation_rate=(1, 3), padding="same"), (5, 6, 2)),
    (dict(kernel_size=(4, 3), strides=(2, 3), padding="same", output_padding=(1, 2)), (3, 4, 5)),
]


@pytest.mark.parametrize("kwargs,in_shape", SHAPE_CASES)
def test_output_shapes_follow_keras(kwargs, in_shape):
    layer = Conv2DTranspose(7, **kwargs)
    k = layer.kernel_size
    s, d = layer.strides, layer.dilation_rate
    op = layer.output_padding or (None, None)
    want = tuple(keras_length(in_shape[i], k[i], s[i], d[i], layer.padding, op[i])
                 for i in range(2)) + (7,)
    assert layer.compute_output_shape(in_shape) == want
    x = np.random.default_rng(0).standard_normal((2,) + in_shape).astype(np.float32)
    assert layer.forward(x).shape == (2,) + want


@pytest.mark.parametrize("kwargs,in_shape,out_shape", [
    # by hand from Keras's formula: 'same' n*s; 'valid' (n-1)*s + max(k, s);
    # with output_padding op: 'same' (n-1)*s + k%2 + op, 'valid' (n-1)*s + k + op
    (dict(kernel_size=4, strides=2, padding="same"), (8, 8, 64), (16, 16, 5)),
    (dict(kernel_size=3, strides=2, padding="same", output_padding=0), (7, 5, 3), (13, 9, 5)),
    (dict(kernel_size=3, strides=2, padding="valid"), (7, 5, 3), (15, 11, 5)),
    (dict(kernel_size=5, strides=2, padding="valid", output_padding=1), (3, 3, 1), (10, 10, 5)),
    (dict(kernel_size=2, strides=3, padding="valid"), (4, 4, 1), (12, 12, 5)),  # 3*3 + max(2,3)
    (dict(kernel_size=3, padding="same"), (6, 7, 2), (6, 7, 5)),
    (dict(kernel_size=3), (6, 7, 2), (8, 9, 5)),
])
def test_output_shapes_worked_by_hand(kwargs, in_shape, out_shape):
    assert Conv2DTranspose(5, **kwargs).compute_output_shape(in_shape) == out_shape


def test_weights_are_keras_layout_and_glorot():
    dlfast.manual_seed(0)
    layer = Conv2DTranspose(8, (3, 5))
    layer.build((10, 12, 4))
    kernel, bias = layer.weights
    assert kernel.shape == (3, 5, 8, 4) and bias.shape == (8,)  # (kh, kw, filters, in)
    assert layer.weight_names == ["kernel", "bias"]
    limit = np.sqrt(6.0 / (3 * 5 * 8 + 3 * 5 * 4))  # Keras's fans: receptive field x last two
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    assert not bias.any()
    assert layer.count_params() == 3 * 5 * 8 * 4 + 8
    assert Conv2DTranspose(8, 3, use_bias=False).count_params() == 0  # unbuilt
    nb = Conv2DTranspose(8, 3, use_bias=False)
    nb.build((4, 4, 2))
    assert [w.shape for w in nb.weights] == [(3, 3, 8, 2)]


def scatter_reference(x, w, b, stride, top, left, out_hw):
    """Float64 transposed convolution by its definition: each input pixel adds x @ w[r, t].T
    at (i*stride + r, j*stride + t) of a full output, cropped at (top, left)."""
    n, h, wd, _ = x.shape
    r, s, f, _ = w.shape
    full = np.zeros((n, (h - 1) * stride + r + out_hw[0], (wd - 1) * stride + s + out_hw[1], f))
    for i in range(h):
        for j in range(wd):
            for a in range(r):
                for c in range(s):
                    full[:, i * stride + a, j * stride + c] += x[:, i, j] @ w[a, c].T
    return full[:, top:top + out_hw[0], left:left + out_hw[1]] + b


@pytest.mark.parametrize("kwargs,top_left", [
    # Keras 'same', k=4, s=2: 1 row of the full scatter cropped before (torch's padding=1)
    (dict(kernel_size=4, strides=2, padding="same"), (1, 1)),
    # k=3, s=2: total crop (n-1)*2 + 3 - 2n = 1, the smaller half (0) before
    (dict(kernel_size=3, strides=2, padding="same"), (0, 0)),
    # k=3, s=2, output_padding 0: total crop 2, 1 before (TensorFlow's split)
    (dict(kernel_size=3, strides=2, padding="same", output_padding=0), (1, 1)),
    (dict(kernel_size=3, strides=2, padding="valid", output_padding=1), (0, 0)),
    (dict(kernel_size=5, padding="same"), (2, 2)),
])
def test_forward_backward_match_numpy(kwargs, top_left):
    rng = np.random.default_rng(3)
    layer = Conv2DTranspose(6, activation="relu", dtype="float64", **kwargs)
    x = rng.standard_normal((2, 5, 4, 3))
    y = layer.forward(x)
    ref = np.maximum(scatter_reference(x, layer.kernel, layer.bias, layer.strides[0], *top_left,
                                       y.shape[1:3]), 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    np.testing.assert_allclose(layer.grads[1], (dy * (y > 0)).sum(axis=(0, 1, 2)), rtol=1e-12)
    # <y, dy> is linear in x where the ReLU pattern is fixed: dx by finite differences
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 4, 3, 2), (0, 2, 1, 1)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = (np.sum(layer.forward(xp) * dy) - np.sum(layer.forward(xm) * dy)) / (2 * eps)
        assert dx[idx] == pytest.approx(num, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("kwargs,in_shape", [
    (dict(filters=3, kernel_size=4, strides=2, padding="same", activation="tanh"), (3, 3, 2)),
    (dict(filters=4, kernel_size=3, strides=2, padding="same", output_padding=1,
          activation="sigmoid"), (3, 4, 3)),
    (dict(filters=2, kernel_size=(2, 3), strides=(1, 2), padding="valid"), (3, 3, 2)),
    (dict(filters=3, kernel_size=3, dilation_rate=2, padding="same", use_bias=False), (4, 4, 2)),
    (dict(filters=32, kernel_size=4, strides=2, padding="same", activation="softmax"), (3, 3, 2)),
])
def test_gradcheck(kwargs, in_shape):
    report = gradcheck(Conv2DTranspose(**kwargs), in_shape, batch_size=3)
    assert report.passed, str(report)


def test_gradcheck_with_regularizer_inside_a_model():
    model = dlfast.Sequential([Input((3, 3, 2)),
                               Conv2DTranspose(4, 3, strides=2, padding="same",
                                               activation="tanh", kernel_regularizer="l2"),
                               Conv2D(2, 3, padding="same")])
    report = gradcheck(model, (3, 3, 2), batch_size=2)
    assert report.passed, str(report)


def test_summary_row():
    model = dlfast.Sequential([Input((7, 7, 16)),
                               Conv2DTranspose(8, 4, strides=2, padding="same", name="up")])
    lines = summary_lines(model)
    text = "\n".join(lines)
    row = next(line for line in lines if line.startswith("up"))
    assert "(None, 14, 14, 8)" in row and row.rstrip().endswith("2,056")  # 4*4*8*16 + 8
    assert "Conv2DTranspose" in text
    assert "Total params: 2,056" in text


def test_config_round_trip_and_save_load(tmp_path):
    rng = np.random.default_rng(1)
    model = dlfast.Sequential([
        Input((4, 4, 3)),
        Conv2DTranspose(5, 3, strides=2, padding="same", output_padding=1, activation="relu",
                        kernel_regularizer="l2", use_bias=False),
        Conv2DTranspose(2, (2, 3), strides=(1, 2), dilation_rate=1, bias_initializer="ones"),
    ])
    layer = model.layers[0]
    config = layer.get_config()
    assert config["output_padding"] == (1, 1) and config["strides"] == (2, 2)
    clone = Conv2DTranspose.from_config(config)
    assert clone.get_config() == config
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    y = model.predict(x)
    path = str(tmp_path / "m.dlfast")
    model.save(path)
    loaded = dlfast.models.load_model(path)
    assert [type(l).__name__ for l in loaded.layers] == ["Conv2DTranspose", "Conv2DTranspose"]
    assert loaded.layers[0].output_padding == (1, 1) and not loaded.layers[0].use_bias
    np.testing.assert_array_equal(loaded.predict(x), y)


def test_functional_api_and_training():
    """A small decoder (two Conv2DTranspose layers) in the functional API; training on a fixed
    target lowers the loss."""
    rng = np.random.default_rng(2)
    dlfast.manual_seed(2)
    inp = Input((4, 4, 3))
    h = Conv2DTranspose(8, 4, strides=2, padding="same", activation="relu")(inp)
    out = Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h)
    model = dlfast.Model(inp, out)
    assert model.layers[-1].output_shape == (8, 8, 1)
    x = rng.random((16, 4, 4, 3)).astype(np.float32)
    target = (rng.random((16, 8, 8, 1)) > 0.5).astype(np.float32)
    model.compile(optimizer=dlfast.optimizers.Adam(0.01), loss="binary_crossentropy")
    first = model.train_on_batch(x, target)
    for _ in range(30):
        last = model.train_on_batch(x, target)
    assert last < first


def test_in_a_sequential_model_with_dense_and_flatten():
    model = dlfast.Sequential([Input((2, 2, 4)), Conv2DTranspose(3, 2, strides=2),
                               Flatten(), Dense(2)])
    y = model.predict(np.zeros((3, 2, 2, 4), np.float32))
    assert y.shape == (3, 2)
    assert model.layers[0].output_shape == (4, 4, 3)


def test_float64_layer_and_batch_one():
    layer = Conv2DTranspose(4, 3, strides=2, padding="same", dtype="float64")
    y = layer.forward(np.ones((1, 3, 3, 2)))
    assert y.dtype == np.float64 and y.shape == (1, 6, 6, 4)
    assert layer.backward(np.ones_like(y)).shape == (1, 3, 3, 2)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match=r"output_padding must be less than the strides.*"
                                         r"output_padding=\(1, 1\).*strides=\(1, 1\)"):
        Conv2DTranspose(4, 3, output_padding=1)
    with pytest.raises(ValueError, match=r"output_padding must be >= 0"):
        Conv2DTranspose(4, 3, strides=2, output_padding=-1)
    with pytest.raises(ValueError, match=r"strides > 1 are not supported together with "
                                         r"dilation_rate > 1"):
        Conv2DTranspose(4, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same', got 'full'"):
        Conv2DTranspose(4, 3, padding="full")
    with pytest.raises(ValueError, match=r"filters must be a positive int"):
        Conv2DTranspose(0, 3)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a pair"):
        Conv2DTranspose(4, "3")
    with pytest.raises(ValueError, match=r"needs inputs \(batch, height, width, channels\)"):
        Conv2DTranspose(4, 3).compute_output_shape((8, 8))
    layer = Conv2DTranspose(4, 3)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((1, 5, 5, 4), np.float32))
    layer.forward(np.zeros((2, 3, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 3, 3, 2\), got "
                                         r"\(2, 3, 3, 5\)"):
        layer.forward(np.zeros((2, 3, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 5, 5, 4\)"):
        layer.backward(np.zeros((2, 5, 4, 4), np.float32))
    model = dlfast.Sequential([Input((3, 3, 2)), Conv2DTranspose(4, 3)])
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 3, 3, 2\)"):
        model.predict(np.zeros((2, 3, 2), np.float32))
