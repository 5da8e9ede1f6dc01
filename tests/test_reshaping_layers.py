"""UpSampling2D, ZeroPadding2D, Reshape, Concatenate and LeakyReLU (and the activation
'leaky_relu' in Dense, Conv2D and Activation): forward against NumPy in float64 (np.repeat,
np.pad, np.reshape, np.concatenate, np.where), backward against central finite differences
(dlfast.utils.gradcheck), output shapes, JSON configs and save/load round trips, Sequential and
functional models (a 3-way Concatenate trained a few steps), summary rows, the errors, and
model.to('cuda') refusing leaky_relu clearly (on the NumPy stand-in of the CUDA module)."""

import json

import numpy as np
import pytest

import dlfast
from dlfast import cuda
from dlfast.layers import (Activation, Concatenate, Conv2D, Dense, Flatten, Input, LeakyReLU,
                           Reshape, UpSampling2D, ZeroPadding2D)
from dlfast.models import load_model
from dlfast.utils import gradcheck
import reference as ref

DTYPES = ["float32", "float64"]


def tol(dtype):
    return 1e-6 if np.dtype(dtype) == np.float32 else 1e-13


def block_sums(dy, sh, sw):
    n, h, w, c = dy.shape
    return dy.astype(np.float64).reshape(n, h // sh, sh, w // sw, sw, c).sum(axis=(2, 4))


# --- UpSampling2D -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,shape", [(2, (1, 3, 5, 2)), ((3, 1), (4, 2, 3, 1)),
                                        ((2, 3), (2, 5, 4, 3))])
def test_upsampling2d_forward_backward_against_numpy(dtype, size, shape, rng):
    layer = UpSampling2D(size, dtype=dtype)
    sh, sw = (size, size) if isinstance(size, int) else size
    x = rng.standard_normal(shape).astype(dtype)
    y = layer(x)
    want = np.repeat(np.repeat(x, sh, axis=1), sw, axis=2)
    assert y.dtype == dtype and layer.output_shape == want.shape[1:]
    np.testing.assert_array_equal(y, want)
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(layer.backward(dy), block_sums(dy, sh, sw), rtol=4 * tol(dtype),
                               atol=4 * tol(dtype))
    assert layer.count_params() == 0


def test_upsampling2d_keras_defaults_shapes_and_errors():
    layer = UpSampling2D()
    assert layer.size == (2, 2) and layer.interpolation == "nearest"
    assert layer.compute_output_shape((3, 5, 7)) == (6, 10, 7)
    assert UpSampling2D((1, 4)).compute_output_shape((None, 5, 2)) == (None, 20, 2)
    assert UpSampling2D(data_format="channels_last").data_format == "channels_last"
    with pytest.raises(NotImplementedError, match=r"interpolation='bilinear'\) is not "
                                                  r"implemented; only interpolation='nearest'"):
        UpSampling2D(interpolation="bilinear")
    with pytest.raises(ValueError, match=r"interpolation must be one of 'nearest', 'bilinear'.*"
                                         r"got 'cubic'"):
        UpSampling2D(interpolation="cubic")
    with pytest.raises(NotImplementedError, match="channels_first"):
        UpSampling2D(data_format="channels_first")
    with pytest.raises(ValueError, match="data_format must be None or 'channels_last'"):
        UpSampling2D(data_format="nhwc")
    with pytest.raises(ValueError, match=r"size must be positive, got \(0, 2\)"):
        UpSampling2D((0, 2))
    with pytest.raises(ValueError, match=r"size must be an int or a pair of ints, got 1.5"):
        UpSampling2D(1.5)
    with pytest.raises(ValueError, match=r"needs inputs \(batch, height, width, channels\), got "
                                         r"input shape \(batch, 4, 5\)"):
        UpSampling2D()(np.zeros((2, 4, 5)))
    layer = UpSampling2D()
    layer(np.zeros((2, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 6, 6, 1\), got "
                                         r"\(2, 6, 5, 1\)"):
        layer.backward(np.zeros((2, 6, 5, 1), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        ZeroPadding2D().backward(np.zeros((1, 3, 3, 1)))


# --- ZeroPadding2D ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding,pads", [(1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))),
                                          (((0, 3), (2, 1)), ((0, 3), (2, 1)))])
def test_zeropadding2d_forward_backward_against_numpy(dtype, padding, pads, rng):
    layer = ZeroPadding2D(padding, dtype=dtype)
    x = rng.standard_normal((3, 4, 5, 2)).astype(dtype)
    y = layer(x)
    want = np.pad(x, ((0, 0),) + pads + ((0, 0),))
    assert layer.padding == pads and layer.output_shape == want.shape[1:]
    np.testing.assert_array_equal(y, want)
    dy = rng.standard_normal(y.shape).astype(dtype)
    (t, b), (l, r) = pads
    np.testing.assert_array_equal(layer.backward(dy),
                                  dy[:, t:dy.shape[1] - b, l:dy.shape[2] - r])


def test_zeropadding2d_keras_defaults_shapes_and_errors():
    assert ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert ZeroPadding2D(((1, 2), (3, 4))).compute_output_shape((5, None, 3)) == (8, None, 3)
    for bad in (-1, (1, -2), ((1, 1), (1,)), "same", (1, 2, 3), ((1, 1), (0, -1))):
        with pytest.raises(ValueError, match=r"padding must be an int, a pair of ints \(height, "
                                             r"width\) or a pair of pairs"):
            ZeroPadding2D(bad)
    with pytest.raises(ValueError, match=r"ZeroPadding2D needs inputs \(batch, height, width, "
                                         r"channels\)"):
        ZeroPadding2D().build((4, 4))


# --- Reshape ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_shape,target,out_shape", [
    ((12,), (3, 4), (3, 4)), ((2, 3, 4), (-1,), (24,)), ((2, 3, 4), (4, -1), (4, 6)),
    ((6,), (1, -1, 2), (1, 3, 2)), ((5, 1), (5,), (5,))])
def test_reshape_forward_backward_against_numpy(dtype, in_shape, target, out_shape, rng):
    layer = Reshape(target, dtype=dtype)
    assert layer.compute_output_shape(in_shape) == out_shape
    x = rng.standard_normal((3,) + in_shape).astype(dtype)
    y = layer(x)
    np.testing.assert_array_equal(y, np.reshape(x, (3,) + out_shape))
    assert layer.output_shape == out_shape
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    assert dx.flags.c_contiguous
    np.testing.assert_array_equal(dx, np.reshape(dy, x.shape))
    # a strided dy (as a model may hand on) still comes back C-contiguous and right
    wide = rng.standard_normal(y.shape[:-1] + (2 * y.shape[-1],)).astype(dtype)
    dx = layer.call_backward(wide[..., ::2])
    assert dx.flags.c_contiguous
    np.testing.assert_array_equal(dx, np.reshape(wide[..., ::2], x.shape))


def test_reshape_output_is_fresh_each_call_and_backward_is_independent_of_it(rng):
    """Reshape caches only shapes: writing into its output (a view of its input) cannot change
    what backward returns, and each forward reshapes the array it is given."""
    layer = Reshape((2, 3))
    a = rng.standard_normal((4, 6)).astype(np.float32)
    y = layer(a)
    y[...] = 0
    dy = rng.standard_normal((4, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy.reshape(4, 6))
    b = rng.standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(layer(b), b.reshape(5, 2, 3))


def test_reshape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"cannot reshape input of shape \(batch, 3, 4\) \(12 "
                                         r"values per sample\) to target_shape \(5, 2\) \(10 "
                                         r"values per sample\)"):
        Reshape((5, 2)).build((3, 4))
    with pytest.raises(ValueError, match=r"input of shape \(batch, 7\) \(7 values per sample\) "
                                         r"to target_shape \(2, -1\): 7 is not a multiple of 2"):
        Reshape((2, -1))(np.zeros((1, 7)))
    with pytest.raises(ValueError, match=r"at most one -1 .* got \(-1, -1\)"):
        Reshape((-1, -1))
    for bad in ((0, 3), (2, -2), (2.0, 3), "3x4", None, (True, 2)):
        with pytest.raises(ValueError, match="target_shape must be a tuple of positive ints"):
            Reshape(bad)
    layer = Reshape((2, 2))
    layer(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4\)"):
        layer(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(3, 2, 2\), got "
                                         r"\(3, 4\)"):
        layer.backward(np.zeros((3, 4), np.float32))
    assert Reshape((-1, 2)).compute_output_shape((None, 4)) == (None, 2)


# --- Concatenate --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis,shapes", [
    (-1, [(4, 3, 2), (4, 3, 5), (4, 3, 1)]), (1, [(2, 3, 2), (1, 3, 2), (4, 3, 2)]),
    (2, [(4, 1, 2), (4, 3, 2)]), (-2, [(4, 2, 2), (4, 5, 2), (4, 1, 2)]), (1, [(3,), (7,)]),
    (-1, [(6,)])])
def test_concatenate_forward_backward_against_numpy(dtype, axis, shapes, rng):
    layer = Concatenate(axis=axis, dtype=dtype)
    xs = [rng.standard_normal((3,) + s).astype(dtype) for s in shapes]
    y = layer(xs)
    want = np.concatenate(xs, axis=axis)
    np.testing.assert_array_equal(y, want)
    assert layer.output_shape == want.shape[1:]
    assert layer.compute_output_shape(shapes) == want.shape[1:]
    dy = rng.standard_normal(y.shape).astype(dtype)
    dxs = layer.backward(dy)
    assert len(dxs) == len(xs)
    bounds = np.cumsum([0] + [x.shape[axis] for x in xs])
    for x, dx, lo, hi in zip(xs, dxs, bounds[:-1], bounds[1:]):
        assert dx.shape == x.shape and dx.dtype == dtype and dx.flags.c_contiguous
        np.testing.assert_array_equal(dx, np.take(dy, np.arange(lo, hi), axis=axis))


def test_concatenate_errors():
    with pytest.raises(ValueError, match=r"Concatenate\(axis=-1\) needs inputs of matching shapes "
                                         r"except on the concatenation axis, got \(batch, 3, 4\) "
                                         r"and \(batch, 2, 5\)"):
        Concatenate()([np.zeros((2, 3, 4)), np.zeros((2, 2, 5))])
    with pytest.raises(ValueError, match=r"Concatenate\(axis=0\) is the batch axis of inputs of "
                                         r"rank 3"):
        Concatenate(axis=0)([np.zeros((2, 3, 4)), np.zeros((2, 3, 4))])
    with pytest.raises(ValueError, match=r"axis=-3\) is the batch axis"):
        Concatenate(axis=-3).build([(3, 4), (3, 4)])
    with pytest.raises(ValueError, match=r"axis=3\) is out of range for inputs of rank 3 \(batch "
                                         r"included\); expected an axis from 1 to 2 or -1 to -2"):
        Concatenate(axis=3).build([(3, 4), (3, 4)])
    with pytest.raises(ValueError, match=r"axis=-4\) is out of range"):
        Concatenate(axis=-4).build([(3, 4), (3, 4)])
    with pytest.raises(ValueError, match=r"needs inputs of one rank, got \(batch, 3\) and "
                                         r"\(batch, 3, 1\)"):
        Concatenate().build([(3,), (3, 1)])
    with pytest.raises(ValueError, match="different batch sizes"):
        Concatenate()([np.zeros((2, 4)), np.zeros((3, 4))])
    with pytest.raises(ValueError, match="Concatenate takes a non-empty list of arrays, got "
                                         "ndarray"):
        Concatenate()(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="Concatenate takes a list of inputs, so build"):
        Concatenate().build((3, 4))
    with pytest.raises(TypeError, match="axis must be an int, got 1.0"):
        Concatenate(axis=1.0)
    x = Input((3,))
    with pytest.raises(ValueError, match="Concatenate takes a list of inputs, got one"):
        Concatenate()(x)
    layer = Concatenate()
    layer([np.zeros((2, 4)), np.zeros((2, 1))])
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 5\), got \(2, 4\)"):
        layer.backward(np.zeros((2, 4)))


# --- LeakyReLU and the activation 'leaky_relu' --------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [None, 0.0, 0.01, 1.5])
def test_leaky_relu_layer_against_numpy(dtype, slope, rng):
    layer = LeakyReLU(dtype=dtype) if slope is None else LeakyReLU(slope, dtype=dtype)
    a = 0.3 if slope is None else slope
    assert layer.negative_slope == a
    x = rng.standard_normal((4, 3, 5)).astype(dtype)
    x[0, 0, :2] = (0.0, np.nan)
    y = layer(x)
    np.testing.assert_allclose(y, np.where(x > 0, x, a * x.astype(np.float64)), rtol=tol(dtype))
    assert np.isnan(y[0, 0, 1])
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_allclose(layer.backward(dy), dy * np.where(x > 0, 1.0, a), rtol=tol(dtype))


def test_activation_leaky_relu_uses_kerass_slope_0_2(rng):
    x = rng.standard_normal((5, 6))
    np.testing.assert_allclose(Activation("leaky_relu", dtype="float64")(x),
                               np.where(x > 0, x, 0.2 * x), rtol=1e-15)
    assert Activation("leaky_relu").get_config()["activation"] == "leaky_relu"
    for bad in (-0.1, float("nan"), float("inf"), None, "0.3", True):
        with pytest.raises(ValueError, match="negative_slope must be a finite number >= 0"):
            LeakyReLU(bad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_with_leaky_relu_against_numpy(dtype, use_bias, rng):
    layer = Dense(7, activation="leaky_relu", use_bias=use_bias, dtype=dtype)
    x = rng.standard_normal((6, 5)).astype(dtype)
    layer.build((5,))
    for w in layer.weights:
        w[...] = rng.uniform(-1, 1, w.shape)
    b = layer.weights[1] if use_bias else None
    y = layer(x)
    np.testing.assert_allclose(y, ref.dense_forward(x, layer.weights[0], b, "leaky_relu"),
                               rtol=20 * tol(dtype), atol=20 * tol(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    want_dx, want_dk, want_db = ref.dense_backward(dy, x, layer.weights[0], b, "leaky_relu")
    for got, want in ((dx, want_dx), (layer.grads[0], want_dk)) + (
            ((layer.grads[1], want_db),) if use_bias else ()):
        np.testing.assert_allclose(got, want, rtol=50 * tol(dtype), atol=50 * tol(dtype))
    # the ops entry points take the name too
    np.testing.assert_array_equal(dlfast.ops.dense_forward(x, *layer.weights, "leaky_relu")
                                  if use_bias else
                                  dlfast.ops.dense_forward(x, layer.weights[0], None,
                                                           "leaky_relu"), y)


def conv_valid_ref(x, k, b):
    """Stride-1 'valid' convolution in float64: x (N, H, W, C), k (R, S, C, K)."""
    R, S = k.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (R, S), axis=(1, 2))
    return np.einsum("npqcrs,rsck->npqk", win, k.astype(np.float64)) + b


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_with_leaky_relu_against_numpy(dtype, rng):
    layer = Conv2D(4, 3, activation="leaky_relu", dtype=dtype)
    x = rng.standard_normal((2, 6, 5, 3)).astype(dtype)
    layer.build(x.shape[1:])
    layer.weights[1][...] = rng.uniform(-1, 1, 4)
    z = conv_valid_ref(x, layer.weights[0], layer.weights[1])
    np.testing.assert_allclose(layer(x), np.where(z > 0, z, 0.2 * z), rtol=50 * tol(dtype),
                               atol=50 * tol(dtype))
    dy = rng.standard_normal(z.shape).astype(dtype)
    dx, dk, db = dlfast.ops.conv2d_backward(dy, x, *layer.weights, activation="leaky_relu")
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads[1], (dy * np.where(z > 0, 1.0, 0.2)).sum((0, 1, 2)),
                               rtol=50 * tol(dtype), atol=50 * tol(dtype))
    np.testing.assert_allclose(dk, layer.grads[0], rtol=tol(dtype), atol=tol(dtype))


# --- finite differences -------------------------------------------------------------------

@pytest.mark.parametrize("make,shape", [
    (lambda: UpSampling2D((2, 3)), (3, 2, 2)),
    (lambda: ZeroPadding2D(((1, 0), (2, 1))), (3, 2, 2)),
    (lambda: Reshape((-1, 3)), (2, 3, 2)),
    (lambda: LeakyReLU(0.1), (5, 2)),
    (lambda: Activation("leaky_relu"), (7,)),
    (lambda: Dense(4, activation="leaky_relu"), (3, 5)),
    (lambda: Conv2D(3, 2, padding="same", strides=2, activation="leaky_relu"), (5, 4, 2)),
], ids=["upsampling", "zeropadding", "reshape", "leakyrelu", "activation", "dense", "conv"])
def test_gradcheck_each_layer(make, shape):
    gradcheck(make(), shape, batch_size=3).raise_if_failed()


def three_way_model(dtype="float64"):
    """One input, three branches joined by a 3-way Concatenate on the channel axis."""
    x = Input((4, 4, 2), dtype=dtype)
    a = Conv2D(3, 3, padding="same", activation="leaky_relu", name="a")(x)
    b = UpSampling2D(2, name="b_up")(Conv2D(2, 2, strides=2, name="b")(x))
    c = LeakyReLU(0.1, name="c")(ZeroPadding2D(1, name="c_pad")(Conv2D(1, 3, name="c_conv")(x)))
    joined = Concatenate(name="join")([a, b, c])
    flat = Reshape((-1,), name="flat")(joined)
    out = Dense(3, activation="softmax", name="out")(flat)
    return dlfast.Model(x, out)


def test_gradcheck_a_functional_model_with_a_3_way_concatenate():
    model = three_way_model()
    assert model.layers[-3].output_shape == (4, 4, 6)
    gradcheck(model, (4, 4, 2), batch_size=2).raise_if_failed()


def test_gradcheck_concatenate_on_a_middle_axis():
    x = Input((3, 4), dtype="float64")
    y = Concatenate(axis=1)([Dense(4, activation="tanh")(x), x, LeakyReLU()(x)])
    model = dlfast.Model(x, Dense(2)(Flatten()(y)))
    assert model.layers[-3].output_shape == (9, 4)
    gradcheck(model, (3, 4), batch_size=3).raise_if_failed()


def test_3_way_concatenate_model_trains(rng):
    dlfast.manual_seed(3)
    model = three_way_model("float32")
    model.compile(dlfast.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = rng.standard_normal((48, 4, 4, 2)).astype(np.float32)
    labels = (x[:, :2, :, 0].sum((1, 2)) > 0).astype(int) + (x[:, 2:, :, 1].mean((1, 2)) > 0.3)
    first = model.evaluate(x, labels)[0]
    losses = [model.train_on_batch(x, labels) for _ in range(30)]
    assert losses[0] == pytest.approx(first, rel=1e-5)
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(np.isfinite(losses))


# --- models, summary, files ---------------------------------------------------------------

def sequential_model():
    model = dlfast.Sequential([
        Input((5, 6, 2)), ZeroPadding2D(((1, 0), (0, 2)), name="pad"),
        Conv2D(3, 2, activation="leaky_relu", name="conv"), UpSampling2D((1, 2), name="up"),
        LeakyReLU(0.05, name="leaky"), Reshape((-1, 3), name="reshape"), Flatten(name="flat"),
        Dense(4, activation="leaky_relu", name="dense"), Activation("leaky_relu", name="act"),
        Dense(2, name="out")])
    model.build()
    return model


def test_sequential_shapes_and_summary_rows():
    model = sequential_model()
    lines = []
    model.summary(print_fn=lines.append)
    rows = [l.split() for l in lines if "(None," in l]
    assert [r[1] for r in rows] == ["(ZeroPadding2D)", "(Conv2D)", "(UpSampling2D)",
                                    "(LeakyReLU)", "(Reshape)", "(Flatten)", "(Dense)",
                                    "(Activation)", "(Dense)"]
    shapes = [" ".join(r[2:-1]) for r in rows]
    assert shapes == ["(None, 6, 8, 2)", "(None, 5, 7, 3)", "(None, 5, 14, 3)", "(None, 5, 14, 3)",
                      "(None, 70, 3)", "(None, 210)", "(None, 4)", "(None, 4)", "(None, 2)"]
    assert [r[-1] for r in rows] == ["0", "27", "0", "0", "0", "0", "844", "0", "10"]
    assert model.compute_output_shape((5, 6, 2)) == (2,)


def test_functional_summary_shows_the_three_inputs_of_concatenate():
    model = three_way_model()
    lines = []
    model.summary(print_fn=lines.append)
    row = lines.index(next(l for l in lines if "(Concatenate)" in l))
    assert "(None, 4, 4, 6)" in lines[row] and lines[row].rstrip().endswith("a[0][0]")
    assert lines[row + 1].strip() == "b_up[0][0]"
    assert lines[row + 2].strip() == "c[0][0]"


@pytest.mark.parametrize("make", [sequential_model, three_way_model], ids=["seq", "functional"])
def test_save_load_round_trip(make, tmp_path, rng):
    model = make()
    model.compile("adam", "mse")
    x = rng.standard_normal((6,) + model.input_shape).astype(model.dtype)
    model.train_on_batch(x, rng.standard_normal((6,) + model.output_shape))
    model.save(tmp_path / "m.dlfast")
    again = load_model(tmp_path / "m.dlfast")
    assert json.dumps(again.get_config()) == json.dumps(model.get_config())
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    kinds = {type(layer).__name__: layer for layer in again._leaf_layers()}
    assert kinds["LeakyReLU"].negative_slope in (0.05, 0.1)
    if "UpSampling2D" in kinds and make is sequential_model:
        assert kinds["UpSampling2D"].size == (1, 2)
        assert kinds["ZeroPadding2D"].padding == ((1, 0), (0, 2))
        assert kinds["Reshape"].target_shape == (-1, 3)


def test_configs_are_kerass_names():
    assert UpSampling2D((2, 3)).get_config()["size"] == (2, 3)
    assert UpSampling2D().get_config()["interpolation"] == "nearest"
    assert ZeroPadding2D(2).get_config()["padding"] == ((2, 2), (2, 2))
    assert Reshape((2, -1)).get_config()["target_shape"] == (2, -1)
    assert Concatenate(axis=2).get_config()["axis"] == 2
    config = LeakyReLU(0.25).get_config()
    assert config["negative_slope"] == 0.25 and "activation" not in config
    again = LeakyReLU.from_config(json.loads(json.dumps(config)))
    assert again.negative_slope == 0.25 and again.activation == "leaky_relu"


# --- the GPU path (NumPy stand-in of dlfast._cuda) ----------------------------------------

@pytest.mark.parametrize("make,name", [
    (lambda: Dense(3, activation="leaky_relu", name="lk"), r"layer 'lk' \(Dense\) uses the "
                                                           r"activation leaky_relu"),
    (lambda: LeakyReLU(name="lk"), r"layer 'lk' \(LeakyReLU\) uses the activation leaky_relu"),
    (lambda: Activation("leaky_relu", name="lk"), r"'lk' \(Activation\) uses the activation"),
    (lambda: Reshape((4,), name="rs"), r"layer 'rs' \(Reshape\) has no CUDA implementation"),
])
def test_model_to_cuda_refuses_what_it_cannot_run(standin, make, name):
    model = dlfast.Sequential([Input((4,)), make(), Dense(2)])
    with pytest.raises(NotImplementedError, match=name):
        model.to("cuda")
    assert model.device == "cpu" and model._runner is dlfast.backend.cpu
    conv = dlfast.Sequential([Input((4, 4, 1)), Conv2D(2, 3, activation="leaky_relu", name="cv")])
    with pytest.raises(NotImplementedError, match=r"'cv' \(Conv2D\) uses the activation "
                                                  r"leaky_relu, which has no CUDA"):
        conv.to("cuda")
    with pytest.raises(NotImplementedError, match="leaky_relu has no CUDA implementation"):
        cuda.ops.activation_forward(np.ones((2, 3), np.float32), "leaky_relu")
    with pytest.raises(NotImplementedError, match="leaky_relu has no CUDA implementation"):
        cuda.ops.dense_forward(np.ones((2, 3)), np.ones((3, 2)), None, "leaky_relu")
    # a model without leaky_relu still moves
    ok = dlfast.Sequential([Input((4,)), Dense(3, activation="relu"), Dense(2)])
    assert ok.to("cuda").device == "cuda"
