"""Layer behaviour (the Layer class's contract): weights in Keras order and layout (live
arrays), grads zero after build, backward accumulates, zero_grad, get/set_weights, count_params,
compute_output_shape, idempotent build, Glorot-uniform kernels and zero biases, manual_seed."""

import numpy as np
import pytest

import dlfast
from dlfast import layers
import reference as ref


def built_dense(units=3, in_features=4, **kw):
    layer = layers.Dense(units, **kw)
    layer.build((in_features,))
    return layer


def test_dense_weights_keras_order_and_layout():
    layer = built_dense(5, 7)
    assert [w.shape for w in layer.weights] == [(7, 5), (5,)]
    assert layer.weight_names == ["kernel", "bias"]
    assert all(w.dtype == np.float32 and w.flags.c_contiguous for w in layer.weights)
    assert layer.kernel is layer.weights[0] and layer.bias is layer.weights[1]
    nobias = built_dense(5, 7, use_bias=False)
    assert [w.shape for w in nobias.weights] == [(7, 5)]
    assert nobias.count_params() == 35


def test_dense_forward_uses_the_live_weights(rng):
    layer = built_dense(3, 4, activation="relu")
    layer.weights[0][...] = rng.standard_normal((4, 3))
    layer.weights[1][...] = rng.standard_normal(3)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    want = ref.dense_forward(x, layer.weights[0], layer.weights[1], "relu")
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-6)


def test_grads_zero_after_build_and_same_shapes():
    layer = built_dense(6, 3)
    assert [g.shape for g in layer.grads] == [w.shape for w in layer.weights]
    assert all(g.dtype == w.dtype for g, w in zip(layer.grads, layer.weights))
    assert all(np.all(g == 0) for g in layer.grads)


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_backward_accumulates_and_zero_grad_resets(act, rng):
    layer = built_dense(4, 5, activation=act, dtype="float64")
    x = rng.standard_normal((7, 5))
    dy = rng.standard_normal((7, 4))
    layer.forward(x)
    dx1 = layer.backward(dy)
    once = [g.copy() for g in layer.grads]
    _, want_dw, want_db = ref.dense_backward(dy, x, layer.weights[0], layer.weights[1], act)
    np.testing.assert_allclose(once[0], want_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(once[1], want_db, rtol=1e-12, atol=1e-12)
    dx2 = layer.backward(dy)
    np.testing.assert_array_equal(dx1, dx2)  # dx is overwritten, not accumulated
    for g, g1 in zip(layer.grads, once):
        np.testing.assert_allclose(g, 2 * g1, rtol=1e-14, atol=1e-14)
    layer.zero_grad()
    assert all(np.all(g == 0) for g in layer.grads)
    layer.backward(dy)
    for g, g1 in zip(layer.grads, once):
        np.testing.assert_allclose(g, g1, rtol=1e-14, atol=1e-14)


def test_get_weights_returns_copies_set_weights_writes_in_place(rng):
    layer = built_dense(3, 2)
    live = layer.weights
    got = layer.get_weights()
    got[0][...] = 42
    assert not np.any(layer.weights[0] == 42)
    new = [rng.standard_normal((2, 3)), rng.standard_normal(3)]
    layer.set_weights(new)
    assert layer.weights[0] is live[0]  # still the same live arrays
    np.testing.assert_allclose(layer.weights[0], new[0].astype(np.float32))
    np.testing.assert_allclose(layer.weights[1], new[1].astype(np.float32))
    new[0][...] = 0  # set_weights copied
    assert np.any(layer.weights[0] != 0)


def test_set_weights_checks_shapes_and_count():
    layer = built_dense(3, 2)
    before = layer.get_weights()
    with pytest.raises(ValueError, match=r"weight 0 \('kernel'\) expected shape \(2, 3\), got \(3, 2\)"):
        layer.set_weights([np.zeros((3, 2)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"weight 1 \('bias'\) expected shape \(3,\), got \(4,\)"):
        layer.set_weights([np.zeros((2, 3)), np.zeros(4)])
    with pytest.raises(ValueError, match=r"expected a list of 2 arrays.*got 1"):
        layer.set_weights([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"expected a list of 2 arrays.*got 3"):
        layer.set_weights([np.zeros((2, 3)), np.zeros(3), np.zeros(3)])
    with pytest.raises(TypeError, match=r"weight 0 .*numeric.*dtype <U"):
        layer.set_weights([np.full((2, 3), "a"), np.zeros(3)])
    # a failed set_weights changes nothing (the bias was valid, the kernel not)
    with pytest.raises(ValueError):
        layer.set_weights([np.ones(3), np.ones(3)])
    for w, b in zip(layer.weights, before):
        np.testing.assert_array_equal(w, b)


def test_count_params_and_compute_output_shape():
    layer = layers.Dense(10)
    assert layer.compute_output_shape((4,)) == (10,)
    assert layer.compute_output_shape((5, 7)) == (5, 10)
    layer.build((7,))
    assert layer.count_params() == 7 * 10 + 10
    assert layers.Flatten().compute_output_shape((3, 4, 5)) == (60,)
    assert layers.Activation("relu").compute_output_shape((3, 4)) == (3, 4)
    assert layers.ReLU().count_params() == 0


def test_build_is_idempotent_and_rejects_another_shape():
    layer = layers.Dense(3)
    layer.build((4,))
    w = layer.weights[0]
    before = w.copy()
    layer.build((4,))
    layer.build([4])
    assert layer.weights[0] is w
    np.testing.assert_array_equal(layer.weights[0], before)
    assert len(layer.weights) == 2
    with pytest.raises(ValueError, match=r"already built for input shape \(4,\), got \(5,\)"):
        layer.build((5,))


def test_forward_builds_on_first_call(rng):
    layer = layers.Dense(2)
    assert not layer.built
    y = layer.forward(rng.standard_normal((3, 6)))
    assert layer.built and y.shape == (3, 2) and y.dtype == np.float32
    assert layer.weights[0].shape == (6, 2)


@pytest.mark.parametrize("fan_in, units", [(4, 32), (32, 16), (300, 7), (1, 1)])
def test_glorot_uniform_kernel_and_zero_bias(fan_in, units):
    dlfast.manual_seed(11)
    layer = built_dense(units, fan_in)
    limit = np.sqrt(6.0 / (fan_in + units))
    k = layer.weights[0]
    assert np.all(np.abs(k) <= limit)
    if k.size >= 100:
        # uniform on [-limit, limit]: it fills the range, mean ~0, variance limit^2/3
        assert np.abs(k).max() > 0.9 * limit
        n = k.size  # 5-sigma bounds for the sample mean and variance
        assert abs(k.mean()) < 5 * limit / np.sqrt(3 * n)
        np.testing.assert_allclose(k.var(), limit ** 2 / 3, rtol=5 * np.sqrt(0.8 / n))
    np.testing.assert_array_equal(layer.weights[1], 0)


def test_manual_seed_makes_initial_weights_identical():
    def make():
        return dlfast.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
                                  layers.Dense(3, activation="softmax")])
    dlfast.manual_seed(123)
    a = make()
    a.build()
    dlfast.manual_seed(123)
    b = make()
    b.build()
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = make()  # no reseed: different draw
    c.build()
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_initializers_by_name_and_callable():
    layer = built_dense(3, 2, kernel_initializer="ones", bias_initializer="ones")
    np.testing.assert_array_equal(layer.weights[0], 1)
    np.testing.assert_array_equal(layer.weights[1], 1)
    layer = built_dense(3, 2, kernel_initializer=lambda shape, dtype: np.full(shape, 0.5, dtype))
    np.testing.assert_array_equal(layer.weights[0], 0.5)


def test_float64_layer(rng):
    layer = layers.Dense(3, activation="tanh", dtype="float64")
    x = rng.standard_normal((2, 4))
    y = layer.forward(x)
    assert y.dtype == np.float64 and layer.weights[0].dtype == np.float64
    np.testing.assert_allclose(y, ref.dense_forward(x, *layer.weights, "tanh"), rtol=1e-13,
                               atol=1e-14)


def test_layer_casts_int_and_float64_input_to_its_dtype(rng):
    layer = built_dense(2, 3, kernel_initializer="ones")
    y = layer.forward(np.array([[1, 2, 3]]))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[6, 6]])
    y = layer.forward(np.array([[1.5, 2, 3]], np.float64))
    np.testing.assert_allclose(y, [[6.5, 6.5]])


def test_activation_relu_flatten_layers(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(layers.ReLU().forward(x), np.maximum(x, 0))
    np.testing.assert_allclose(layers.Activation("sigmoid").forward(x),
                               ref.act_forward(x, "sigmoid"), rtol=1e-6)
    flat = layers.Flatten()
    y = flat.forward(x)
    np.testing.assert_array_equal(y, x.reshape(2, 12))
    np.testing.assert_array_equal(flat.backward(y), x)


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        layers.Dense(3).backward(np.zeros((1, 3)))
    layer = built_dense(3, 2)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 3), np.float32))


def test_dense_constructor_checks():
    with pytest.raises(ValueError, match="units must be a positive int, got 0"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="units must be a positive int, got 2.5"):
        layers.Dense(2.5)
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        layers.Dense(2, activation="relux")
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        layers.Dense(2, kernel_initializer="nope")
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        layers.Dense(2, dtype="int32")
