"""LayerNormalization kernels (_core.layernorm_forward / layernorm_backward, issue 15) against
Keras 3's definition in float64 NumPy (mean and biased variance over the last axis,
inv = 1/sqrt(var + epsilon), epsilon 1e-3), a hand-written backward checked by finite
differences, and the naive C++ reference (_core.ref); every ISA path, 1 and 2 threads."""

import numpy as np
import pytest

import dlfast
from dlfast import _core

from reference import central_diff


def np_forward(x, gamma=None, beta=None, epsilon=1e-3):
    """keras.layers.LayerNormalization(axis=-1) in float64: returns (y, mean, inv_std)."""
    x = np.asarray(x, np.float64)
    mean = x.mean(-1)
    var = ((x - mean[..., None]) ** 2).mean(-1)
    inv = 1.0 / np.sqrt(var + epsilon)
    y = (x - mean[..., None]) * inv[..., None]
    if gamma is not None:
        y = y * np.asarray(gamma, np.float64)
    if beta is not None:
        y = y + np.asarray(beta, np.float64)
    return y, mean, inv


def np_backward(dy, x, gamma=None, epsilon=1e-3):
    """(dx, dgamma, dbeta) of np_forward, written out by hand (float64)."""
    dy, x = np.asarray(dy, np.float64), np.asarray(x, np.float64)
    _, mean, inv = np_forward(x, None, None, epsilon)
    xhat = (x - mean[..., None]) * inv[..., None]
    g = dy * (1.0 if gamma is None else np.asarray(gamma, np.float64))
    dx = inv[..., None] * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    rows = dy.reshape(-1, dy.shape[-1])
    return dx, (rows * xhat.reshape(rows.shape)).sum(0), rows.sum(0)


def make(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    c = shape[-1]
    gamma = (1 + 0.3 * rng.standard_normal(c)).astype(dtype)
    beta = (0.2 * rng.standard_normal(c)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dy


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)


SHAPES = [(1, 1), (1, 5), (3, 7), (2, 5, 17), (64, 128), (257, 33), (4, 3, 2, 9), (9,)]


def run(mod, x, gamma, beta, dy, epsilon=1e-3, dgamma0=None, dbeta0=None, accumulate=True):
    y, mean, inv = mod.layernorm_forward(x, gamma, beta, epsilon)
    dg = None if dgamma0 is None else dgamma0.copy()
    db = None if dbeta0 is None else dbeta0.copy()
    dx = mod.layernorm_backward(dy, x, gamma, mean, inv, dg, db, True, accumulate)
    return y, mean, inv, dx, dg, db


def test_reference_backward_is_the_finite_difference_of_the_forward():
    rng = np.random.default_rng(0)
    x, gamma, beta, _ = make(rng, (3, 6), np.float64)
    P = rng.standard_normal((3, 6))
    numeric = central_diff(lambda: (np_forward(x, gamma, beta)[0] * P).sum(), [x, gamma, beta])
    dx, dg, db = np_backward(P, x, gamma)
    for got, want in zip((dx, dg, db), numeric):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("affine", [True, False], ids=["gamma_beta", "none"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_layernorm_matches_numpy(isa_threads, dtype, shape, affine):
    rng = np.random.default_rng(sum(shape))
    x, gamma, beta, dy = make(rng, shape, dtype)
    if not affine:
        gamma = beta = None
    c = shape[-1]
    y, mean, inv, dx, dg, db = run(_core, x, gamma, beta, dy, 1e-3, np.zeros(c, dtype),
                                   np.zeros(c, dtype), accumulate=False)
    want_y, want_mean, want_inv = np_forward(x, gamma, beta)
    assert y.dtype == dtype and y.shape == x.shape and mean.shape == x.shape[:-1]
    np.testing.assert_allclose(y, want_y, **tol(dtype))
    np.testing.assert_allclose(mean, want_mean, **tol(dtype))
    np.testing.assert_allclose(inv, want_inv, **tol(dtype))
    want_dx, want_dg, want_db = np_backward(dy, x, gamma)
    rows = int(np.prod(shape[:-1]))
    for name, g, w in (("dx", dx, want_dx), ("dgamma", dg, want_dg), ("dbeta", db, want_db)):
        scale = max(1.0, np.abs(w).max()) * (np.sqrt(rows) if name != "dx" else 1.0)
        np.testing.assert_allclose(g / scale, w / scale, **tol(dtype), err_msg=name)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 5, 17), (257, 33)], ids=str)
def test_fast_layernorm_matches_ref(isa_threads, dtype, shape):
    rng = np.random.default_rng(7 + sum(shape))
    x, gamma, beta, dy = make(rng, shape, dtype)
    c = shape[-1]
    dg0, db0 = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    for accumulate in (True, False):
        got = run(_core, x, gamma, beta, dy, 1e-3, dg0, db0, accumulate)
        want = run(_core.ref, x, gamma, beta, dy, 1e-3, dg0, db0, accumulate)
        for name, g, w in zip(("y", "mean", "inv_std", "dx", "dgamma", "dbeta"), got, want):
            scale = max(1.0, np.abs(w).max())
            np.testing.assert_allclose(g / scale, w / scale, **tol(dtype),
                                       err_msg=f"{name} accumulate={accumulate}")


def test_epsilon_is_keras_default_and_is_used():
    x = np.array([[1.0, 1.0 + 1e-3]])  # variance 2.5e-7: epsilon dominates
    y, _, inv = _core.layernorm_forward(x, None, None)
    np.testing.assert_allclose(inv, 1 / np.sqrt(2.5e-7 + 1e-3), rtol=1e-12)
    y2, _, inv2 = _core.layernorm_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(inv2, 1 / np.sqrt(2.5e-7 + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(y2, np_forward(x, epsilon=1e-5)[0], rtol=1e-12)


def test_accumulate_adds_into_the_gradients_and_need_dx_false():
    rng = np.random.default_rng(3)
    x, gamma, beta, dy = make(rng, (5, 8), np.float64)
    y, mean, inv = _core.layernorm_forward(x, gamma, beta)
    _, want_dg, want_db = np_backward(dy, x, gamma)
    dg, db = np.ones(8), np.full(8, 2.0)
    assert _core.layernorm_backward(dy, x, gamma, mean, inv, dg, db, False, True) is None
    np.testing.assert_allclose(dg, 1 + want_dg, rtol=1e-12)
    np.testing.assert_allclose(db, 2 + want_db, rtol=1e-12)
    dx = _core.layernorm_backward(dy, x, gamma, mean, inv, None, None)  # gradients not asked
    np.testing.assert_allclose(dx, np_backward(dy, x, gamma)[0], rtol=1e-11, atol=1e-12)


def test_layernorm_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    x, gamma, beta, dy = make(rng, (4096, 96), np.float32)
    runs = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        runs.append(run(_core, x, gamma, beta, dy, 1e-3, np.zeros(96, np.float32),
                        np.zeros(96, np.float32)))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_empty_rows_give_empty_outputs_and_zero_gradients():
    x = np.zeros((0, 4), np.float32)
    y, mean, inv = _core.layernorm_forward(x, None, None)
    assert y.shape == (0, 4) and mean.shape == (0,)
    dg, db = np.full(4, 7, np.float32), np.full(4, 7, np.float32)
    for mod in (_core, _core.ref):
        dx = mod.layernorm_backward(x, x, None, mean, inv, dg, db, True, False)
        assert dx.shape == (0, 4)
        np.testing.assert_array_equal(dg, 0)
        np.testing.assert_array_equal(db, 0)


def test_nan_in_a_row_stays_in_that_row():
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 4.0]], np.float32)
    y, _, _ = _core.layernorm_forward(x, None, None)
    assert np.isnan(y[0]).all()
    np.testing.assert_allclose(y[1], np_forward(x[1:])[0][0], rtol=1e-5)


def test_layernorm_bad_input():
    x = np.ones((2, 3), np.float32)
    g = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"gamma.shape\[0\] .*expected 3, got 4"):
        _core.layernorm_forward(x, np.ones(4, np.float32), None)
    with pytest.raises(TypeError, match="'beta' must be a float32"):
        _core.layernorm_forward(x, g, np.ones(3))
    with pytest.raises(TypeError, match="'x' must be a float32 or float64"):
        _core.layernorm_forward(np.ones((2, 3), np.int64), None, None)
    with pytest.raises(ValueError, match="'epsilon' must be a positive number"):
        _core.layernorm_forward(x, g, g, 0.0)
    with pytest.raises(ValueError, match="rank >= 1"):
        _core.layernorm_forward(np.ones((), np.float32), None, None)
    with pytest.raises(ValueError, match="at least one feature"):
        _core.layernorm_forward(np.ones((2, 0), np.float32), None, None)
    y, mean, inv = _core.layernorm_forward(x, g, g)
    with pytest.raises(ValueError, match=r"'dy' must have the shape of 'x' \(2, 3\)"):
        _core.layernorm_backward(x[:1], x, g, mean, inv, None, None)
    with pytest.raises(ValueError, match=r"'mean' must have shape \(2,\)"):
        _core.layernorm_backward(x, x, g, mean[:1], inv, None, None)
    with pytest.raises(ValueError, match="'dgamma' must be writable|dgamma"):
        _core.layernorm_backward(x, x, g, mean, inv, np.ones(2, np.float32), None)


def test_ops_wrappers():
    from dlfast import ops
    rng = np.random.default_rng(11)
    x, gamma, beta, dy = make(rng, (4, 3, 10), np.float64)
    np.testing.assert_allclose(ops.layernorm_forward(x, gamma, beta), np_forward(x, gamma, beta)[0],
                               rtol=1e-12, atol=1e-12)
    dx, dg, db = ops.layernorm_backward(dy, x, gamma, beta)
    for g, w in zip((dx, dg, db), np_backward(dy, x, gamma)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-11)
    assert ops.layernorm_backward(dy, x)[1:] == (None, None)
    with pytest.raises(TypeError, match="layernorm_forward: argument 'gamma'"):
        ops.layernorm_forward(x, "no")
