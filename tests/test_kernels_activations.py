"""Activation kernels (relu, sigmoid, tanh, softmax) forward and backward against float64
NumPy, every ISA path and 1 / 2 threads; softmax over the last axis; huge inputs stay finite."""

import numpy as np
import pytest

from dlfast import _core, ops
import reference as ref

# every activation the kernels list but leaky_relu (its slope has tests of its own): a new
# entry of DLFAST_ACTIVATIONS is tested here once tests/reference.py has its formula
ACTS = [n for n in _core.ACTIVATIONS if n not in ("linear", "leaky_relu")]
SHAPES = [(1,), (1, 1), (3, 1), (1, 7), (5, 17), (64, 10), (33, 129), (4, 3, 5), (2, 3, 4, 6)]


def fwd(name):
    return lambda x: ops.activation_forward(x, name)


def bwd(name):
    return lambda dy, y: ops.activation_backward(dy, y, name)


def tol(dtype):
    return 3e-7 if dtype == np.float32 else 1e-14


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ACTS)
def test_activation_forward_backward(isa_threads, dtype, name, shape, rng):
    x = rng.uniform(-6, 6, shape).astype(dtype)
    dy = rng.uniform(-1, 1, shape).astype(dtype)
    y = fwd(name)(x)
    assert y.shape == x.shape and y.dtype == dtype
    want = ref.act_forward(x, name)
    np.testing.assert_allclose(y, want, rtol=4 * tol(dtype), atol=tol(dtype))
    dx = bwd(name)(dy, y)
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_allclose(dx, ref.act_backward(dy, want, name), rtol=0, atol=8 * tol(dtype))
    # the named entry points, where dlfast.ops has them, agree with the generic ones
    if hasattr(ops, f"{name}_forward"):
        np.testing.assert_array_equal(getattr(ops, f"{name}_forward")(x), y)
        np.testing.assert_array_equal(getattr(ops, f"{name}_backward")(dy, y), dx)


def test_linear_activation_is_identity(dtype, rng):
    x = rng.standard_normal((4, 5)).astype(dtype)
    np.testing.assert_array_equal(ops.activation_forward(x, "linear"), x)
    np.testing.assert_array_equal(ops.activation_backward(x, x, "linear"), x)


def test_softmax_is_over_the_last_axis_of_3d(isa_threads, dtype, rng):
    x = rng.uniform(-5, 5, (3, 4, 7)).astype(dtype)
    y = ops.softmax_forward(x)
    np.testing.assert_allclose(y.sum(axis=-1), np.ones((3, 4)), rtol=0, atol=10 * tol(dtype))
    for i in range(3):  # each (4, 7) slice as a 2-D softmax
        np.testing.assert_allclose(y[i], ref.act_forward(x[i], "softmax"), rtol=0,
                                   atol=tol(dtype))


@pytest.mark.parametrize("name", ACTS)
def test_huge_inputs_stay_finite(isa_threads, dtype, name):
    x = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, -3.0, 50.0]],
                 dtype)
    y = fwd(name)(x)
    assert np.all(np.isfinite(y)), y
    np.testing.assert_allclose(y, ref.act_forward(x, name), rtol=1e-6, atol=tol(dtype))
    dx = bwd(name)(np.ones_like(x), y)
    assert np.all(np.isfinite(dx)), dx
    if name == "softmax":
        np.testing.assert_allclose(y[0], [1, 0, 0, 0], atol=tol(dtype))
        np.testing.assert_allclose(y[1], [0.25] * 4, atol=tol(dtype))
        np.testing.assert_allclose(y[2], [0.5, 0.5, 0, 0], atol=tol(dtype))


def test_activation_strided_input_gives_the_right_answer(dtype, rng):
    base = rng.uniform(-3, 3, (6, 20)).astype(dtype)
    for view in (base[:, ::2], base.T, base[::2, 3:9]):
        for name in ACTS:
            np.testing.assert_array_equal(fwd(name)(view), fwd(name)(np.ascontiguousarray(view)))
            y = fwd(name)(view)
            np.testing.assert_array_equal(bwd(name)(view, y),
                                          bwd(name)(np.ascontiguousarray(view), y))


def test_activation_empty(dtype):
    for name in ACTS:
        assert fwd(name)(np.zeros((0, 5), dtype)).shape == (0, 5)
        assert bwd(name)(np.zeros((0, 5), dtype), np.zeros((0, 5), dtype)).shape == (0, 5)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=60, deadline=None, database=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
                    elements=st.floats(-1e4, 1e4)),
       f32=st.booleans())
def test_softmax_property_rows_are_distributions(x, f32):
    x = x.astype(np.float32) if f32 else x
    y = ops.softmax_forward(x)
    assert y.shape == x.shape and np.all(np.isfinite(y)) and np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=0, atol=1e-5 if f32 else 1e-12)
    np.testing.assert_allclose(y, ref.act_forward(x, "softmax"), rtol=0,
                               atol=1e-6 if f32 else 1e-13)


# --- leaky_relu (code 5, with its slope) ---------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("slope", [0.2, 0.0, 0.3, 1.0, 2.5])
def test_leaky_relu_forward_backward(isa_threads, dtype, slope, shape, rng):
    x = rng.uniform(-6, 6, shape).astype(dtype)
    x.reshape(-1)[:: 5] = 0  # the kink itself: y = 0, gradient slope (TensorFlow's choice)
    dy = rng.uniform(-1, 1, shape).astype(dtype)
    y = ops.leaky_relu_forward(x, slope)
    assert y.shape == x.shape and y.dtype == dtype
    want = np.where(x.astype(np.float64) > 0, x, slope * x.astype(np.float64))
    np.testing.assert_allclose(y, want, rtol=tol(dtype), atol=0)
    dx = ops.leaky_relu_backward(dy, y, slope)
    want_dx = dy.astype(np.float64) * np.where(x > 0, 1.0, slope)  # from x, not y
    np.testing.assert_allclose(dx, want_dx, rtol=tol(dtype), atol=0)
    np.testing.assert_array_equal(ops.activation_forward(x, "leaky_relu", slope), y)
    np.testing.assert_array_equal(ops.activation_backward(dy, y, "leaky_relu", slope), dx)


def test_leaky_relu_default_slope_is_kerass_0_2(dtype):
    x = np.array([-5.0, -1.0, 0.0, 2.0], dtype)
    np.testing.assert_allclose(ops.activation_forward(x, "leaky_relu"), [-1.0, -0.2, 0.0, 2.0],
                               rtol=tol(dtype))
    np.testing.assert_allclose(ops.leaky_relu_forward(x), [-1.0, -0.2, 0.0, 2.0], rtol=tol(dtype))
    np.testing.assert_allclose(ref.act_forward(x, "leaky_relu"), [-1.0, -0.2, 0.0, 2.0])


def test_leaky_relu_propagates_nan_and_infinities(isa_threads, dtype):
    x = np.array([[np.nan, -np.inf, np.inf, -0.0, 3.0, -3.0, np.nan, 1e30]] * 9, dtype)
    y = ops.leaky_relu_forward(x, 0.25)
    assert np.isnan(y[:, 0]).all() and np.isnan(y[:, 6]).all()
    np.testing.assert_array_equal(y[0, 1:6], np.array([-np.inf, np.inf, -0.0, 3.0, -0.75], dtype))
    dy = np.ones_like(x)
    dy[:, 4] = np.nan
    dx = ops.leaky_relu_backward(dy, y, 0.25)
    assert np.isnan(dx[:, 4]).all()  # a NaN gradient stays NaN, also where the slope is 1
    np.testing.assert_array_equal(dx[0, [1, 2, 3, 5]], np.array([0.25, 1, 0.25, 0.25], dtype))


@pytest.mark.parametrize("slope", [-0.1, float("nan"), float("inf")])
def test_leaky_relu_refuses_a_bad_slope(slope):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"activation_forward: leaky_relu's 'negative_slope' "
                                         r"must be a finite number >= 0"):
        ops.leaky_relu_forward(x, slope)
    with pytest.raises(ValueError, match=r"activation_backward: leaky_relu's 'negative_slope'"):
        ops.leaky_relu_backward(x, x, slope)


def test_leaky_relu_is_not_fused_into_the_dense_and_conv_kernels():
    x, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"dense_forward: activation code 5 \(leaky_relu\) is "
                                         r"not fused into this kernel"):
        _core.dense_forward(x, w, None, 5)
    with pytest.raises(ValueError, match=r"conv2d_forward: activation code 5 \(leaky_relu\)"):
        _core.conv2d_forward(np.ones((1, 3, 3, 1), np.float32), np.ones((2, 2, 1, 1), np.float32),
                             None, (1, 1), "valid", (1, 1), 5)
    names, n = list(_core.ACTIVATIONS), len(_core.ACTIVATIONS)
    with pytest.raises(ValueError, match=rf"activation_forward: activation code must be "
                                         rf"0..{n - 1} \({', '.join(names)}\), got {n}"):
        _core.activation_forward(x, n)


# --- NaN and Inf (issue 18): propagated as NumPy does, on every ISA path -----------------

SPECIAL = np.array([np.nan, np.inf, -np.inf, -1.5, -0.0, 0.0, 2.5], np.float64)


@pytest.mark.parametrize("name", ACTS + ["leaky_relu"])
def test_nan_and_inf_forward_and_backward(isa_threads, dtype, name):
    # 7 specials x 7 specials, 49 cells: whole vectors and a scalar tail on every path. y
    # covers NaN, +-Inf, negative, zero and positive outputs; dy the same set.
    x = np.repeat(SPECIAL, 7).reshape(7, 7).astype(dtype)
    dy = np.tile(SPECIAL, 7).reshape(7, 7).astype(dtype)
    with np.errstate(all="ignore"):  # the references' own inf - inf, inf * 0
        want_y = ref.act_forward(x, name)
        y = want_y.astype(dtype)
        want = ref.act_backward(dy, y, name)
    np.testing.assert_allclose(fwd(name)(x), want_y, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(bwd(name)(dy, y), want, rtol=1e-6, equal_nan=True)


def test_relu_keeps_nan_and_masks_infinite_gradients(isa_threads):
    x = np.array([np.nan, np.inf, -np.inf, -1, 0, 2] * 11, np.float32)
    np.testing.assert_array_equal(ops.relu_forward(x), np.maximum(x, 0))  # NaN stays NaN
    # dx = y <= 0 ? 0 : dy (PyTorch's threshold_backward): an infinite dy where y <= 0 gives 0,
    # not inf * 0 = NaN; a NaN y passes dy on
    y = np.array([1, 0, 2, np.nan] * 9, np.float32)
    dy = np.array([np.inf, np.inf, np.nan, 1] * 9, np.float32)
    np.testing.assert_array_equal(ops.relu_backward(dy, y), [np.inf, 0, np.nan, 1] * 9)
