"""Conv2D and pooling layers: Keras shapes and parameter counts (the course's CIFAR-10 model
and AlexNet), weight layout, forward/backward against float64 NumPy, gradcheck through a small
CNN, and a digits CNN that reaches the course's accuracy."""

import numpy as np
import pytest

import dlfast
from dlfast import layers
from dlfast.layers import (AveragePooling2D, Conv2D, Dense, Flatten, GlobalAveragePooling2D,
                           Input, MaxPooling2D)
from reference import central_diff_at


def summary_lines(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines


def row(lines, name_prefix):
    return next(line for line in lines if line.startswith(name_prefix))


def test_course_cifar_model_summary_shapes_and_params():
    model = dlfast.Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(32, 32, 3)),
        MaxPooling2D((2, 2)),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D((2, 2)),
        Conv2D(64, (3, 3), activation="relu"),
    ])
    lines = summary_lines(model)
    shapes = [l.output_shape for l in model.layers]
    assert shapes == [(30, 30, 32), (15, 15, 32), (13, 13, 64), (6, 6, 64), (4, 4, 64)]
    assert [l.count_params() for l in model.layers] == [896, 0, 18496, 0, 36928]
    text = "\n".join(lines)
    for shape, params in [("(None, 30, 30, 32)", "896"), ("(None, 15, 15, 32)", "0"),
                          ("(None, 13, 13, 64)", "18,496"), ("(None, 6, 6, 64)", "0"),
                          ("(None, 4, 4, 64)", "36,928")]:
        assert any(shape in l and l.rstrip().endswith(params) for l in lines), (shape, text)
    assert "Total params: 56,320" in text


def test_alexnet_counts_62378344_parameters():
    model = dlfast.Sequential([
        Input((227, 227, 3)),
        Conv2D(96, 11, strides=4, activation="relu"),
        MaxPooling2D(3, strides=2),
        Conv2D(256, 5, padding="same", activation="relu"),
        MaxPooling2D(3, strides=2),
        Conv2D(384, 3, padding="same", activation="relu"),
        Conv2D(384, 3, padding="same", activation="relu"),
        Conv2D(256, 3, padding="same", activation="relu"),
        MaxPooling2D(3, strides=2),
        Flatten(),
        Dense(4096, activation="relu"),
        Dense(4096, activation="relu"),
        Dense(1000, activation="softmax"),
    ])
    # Shapes and counts follow from the layer list alone (no weights needed to check them).
    shape, total = (227, 227, 3), 0
    expected_shapes = [(55, 55, 96), (27, 27, 96), (27, 27, 256), (13, 13, 256), (13, 13, 384),
                       (13, 13, 384), (13, 13, 256), (6, 6, 256), (9216,), (4096,), (4096,),
                       (1000,)]
    for layer, want in zip(model.layers, expected_shapes):
        shape = layer.compute_output_shape(shape)
        assert shape == want, (layer.name, shape, want)
    model.build()
    assert model.count_params() == 62_378_344
    assert "Total params: 62,378,344" in "\n".join(summary_lines(model))


def test_conv2d_weights_are_hwio_and_glorot():
    dlfast.manual_seed(0)
    layer = Conv2D(8, (3, 5), input_shape=(10, 12, 4))
    layer.build((10, 12, 4))
    kernel, bias = layer.weights
    assert kernel.shape == (3, 5, 4, 8) and bias.shape == (8,)
    limit = np.sqrt(6.0 / (3 * 5 * 4 + 3 * 5 * 8))  # Keras fans include the receptive field
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    assert not bias.any()


@pytest.mark.parametrize("kwargs, in_shape, out_shape", [
    (dict(kernel_size=3, strides=2, padding="same"), (7, 8, 3), (4, 4, 5)),
    (dict(kernel_size=(1, 3), strides=(1, 2)), (5, 9, 2), (5, 4, 5)),
    (dict(kernel_size=3, dilation_rate=2), (9, 9, 1), (5, 5, 5)),
    (dict(kernel_size=5, padding="same"), (3, 3, 2), (3, 3, 5)),
])
def test_conv2d_output_shapes_follow_tensorflow(kwargs, in_shape, out_shape):
    assert Conv2D(5, **kwargs).compute_output_shape(in_shape) == out_shape


def test_conv_and_pool_bad_arguments():
    with pytest.raises(ValueError, match="larger than the input"):
        Conv2D(4, 5).compute_output_shape((3, 3, 1))
    with pytest.raises(ValueError, match="strides must be positive"):
        Conv2D(4, 3, strides=0)
    with pytest.raises(ValueError, match="strides must be positive"):
        MaxPooling2D(2, strides=(1, -1))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same', got 'full'"):
        Conv2D(4, 3, padding="full")
    with pytest.raises(ValueError, match="filters must be a positive int"):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match="needs inputs \\(batch, height, width, channels\\)"):
        Conv2D(4, 3).compute_output_shape((8, 8))
    with pytest.raises(ValueError, match="pool_size \\(3, 3\\) is larger than the input"):
        MaxPooling2D(3).compute_output_shape((2, 2, 1))
    model = dlfast.Sequential([Input((8, 8, 3)), Conv2D(4, 3)])
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 8, 8, 3\), got "
                                         r"\(2, 8, 8, 2\)"):
        model.predict(np.zeros((2, 8, 8, 2), np.float32))


def assert_finite_differences(objective, arrays_and_grads, rng, samples, eps=1e-6):
    """Central differences of the scalar objective() at `samples` random entries of each array
    (changed in place, then restored) against the gradient backward gave for it."""
    for arr, grad in arrays_and_grads:
        idx = rng.integers(0, arr.size, samples)
        numeric = central_diff_at(objective, arr, idx, eps)
        assert grad.reshape(-1)[idx] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def conv_reference(x, w, b, stride, pad_top, pad_left, out_hw):
    """Plain float64 convolution with explicit zero padding (independent of the kernels)."""
    n, h, wd, c = x.shape
    r, s, _, k = w.shape
    p, q = out_hw
    xp = np.zeros((n, h + r + p * stride, wd + s + q * stride, c))
    xp[:, pad_top:pad_top + h, pad_left:pad_left + wd] = x
    y = np.zeros((n, p, q, k))
    for i in range(r):
        for j in range(s):
            patch = xp[:, i:i + p * stride:stride, j:j + q * stride:stride][:, :p, :q]
            y += patch @ w[i, j]
    return y + b


def test_conv2d_layer_forward_and_backward_match_numpy():
    rng = np.random.default_rng(3)
    layer = Conv2D(6, 3, strides=2, padding="same", activation="relu", dtype="float64")
    x = rng.standard_normal((2, 7, 8, 3))
    y = layer.forward(x)
    # TF 'same', stride 2: H 7 -> 4 (total pad 2: 1 before), W 8 -> 4 (total pad 1: 0 before)
    ref = np.maximum(conv_reference(x, layer.kernel, layer.bias, 2, 1, 0, (4, 4)), 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    # finite differences of <y, dy> with respect to the input and the kernel
    assert_finite_differences(lambda: np.sum(layer.forward(x) * dy),
                              [(x, dx), (layer.kernel, layer.grads[0])], rng, samples=6)
    np.testing.assert_allclose(layer.grads[1], (dy * (y > 0)).sum(axis=(0, 1, 2)), rtol=1e-12)


@pytest.mark.parametrize("layer_cls", [MaxPooling2D, AveragePooling2D])
def test_pooling_layers_match_numpy(layer_cls):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 6, 3))
    layer = layer_cls(2, dtype="float64")
    y = layer.forward(x)
    blocks = x.reshape(2, 3, 2, 3, 2, 3)
    ref = blocks.max(axis=(2, 4)) if layer_cls is MaxPooling2D else blocks.mean(axis=(2, 4))
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    if layer_cls is AveragePooling2D:
        ref_dx = np.repeat(np.repeat(dy, 2, axis=1), 2, axis=2) / 4
    else:
        mask = x == np.repeat(np.repeat(ref, 2, axis=1), 2, axis=2)
        ref_dx = mask * np.repeat(np.repeat(dy, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12)


def test_global_average_pooling_layer():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5, 6))
    layer = GlobalAveragePooling2D(dtype="float64")
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=(1, 2)), rtol=1e-12)
    dy = rng.standard_normal((3, 6))
    np.testing.assert_allclose(layer.backward(dy),
                               np.broadcast_to(dy[:, None, None, :] / 20, x.shape), rtol=1e-12)


def test_small_cnn_train_step_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    dlfast.manual_seed(6)
    model = dlfast.Sequential([Input((6, 6, 2)), Conv2D(3, 3, padding="same", activation="tanh"),
                               AveragePooling2D(2), Conv2D(4, 2, activation="relu"),
                               GlobalAveragePooling2D(), Dense(3)], dtype="float64")
    x = rng.standard_normal((2, 6, 6, 2))
    dy = rng.standard_normal((2, 3))
    model.zero_grad()
    model.forward(x, training=True)
    model.backward(dy)
    assert_finite_differences(lambda: np.sum(model.forward(x) * dy),
                              list(zip(model.weights, model.grads)), rng, samples=3)


def test_digits_cnn_reaches_96_percent():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=0.25,
                                              stratify=data.target, random_state=0)
    dlfast.manual_seed(0)
    model = dlfast.Sequential([
        Input((8, 8, 1)),
        Conv2D(32, 3, padding="same", activation="relu"),
        Conv2D(64, 3, padding="same", activation="relu"),
        MaxPooling2D(2),
        layers.Flatten(),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=dlfast.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, y_tr, batch_size=32, epochs=8, verbose=0)
    _, acc = model.evaluate(x_te, y_te)
    assert acc >= 0.96, f"digits CNN test accuracy {acc:.3f} < 0.96"
