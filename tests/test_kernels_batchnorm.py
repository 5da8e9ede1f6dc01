"""The batch-normalization kernels (dlfast._core.batchnorm_forward / batchnorm_backward) against a
float64 NumPy reference written from the formulas, on every ISA path x 1/2 threads, float32 and
float64, Dense-shaped (N, C) and NHWC (N, H, W, C) inputs; the backward also against central
finite differences; 1 and 2 threads give identical bits; bad input raises before writing."""

import numpy as np
import pytest

import dlfast
from dlfast import _core
from reference import central_diff

SHAPES = [(1, 5), (7, 3), (33, 1), (4, 5, 6, 8), (300, 37), (2, 3, 3, 130)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]
BIG = (256, 8, 8, 64)  # 1M elements: large enough for every pass to use two threads


def tol(dtype):
    return {"rtol": 1e-11, "atol": 1e-11} if dtype == np.float64 else {"rtol": 3e-5,
                                                                       "atol": 3e-5}


# --- the reference, in float64 over the rows (all axes but the last) ------------------------

def ref_forward(x, gamma, beta, mm, mv, momentum, eps, training):
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - 1))
    if training:
        mean = x.mean(axis=axes)
        var = ((x - mean) ** 2).mean(axis=axes)  # biased, as Keras/TF
        new_mm = mm * momentum + mean * (1 - momentum)
        new_mv = mv * momentum + var * (1 - momentum)
    else:
        mean, var, new_mm, new_mv = mm, mv, mm, mv
    xhat = (x - mean) / np.sqrt(var + eps)
    y = xhat * (1.0 if gamma is None else gamma) + (0.0 if beta is None else beta)
    return y, mean, 1 / np.sqrt(var + eps), new_mm, new_mv


def ref_backward(dy, x, gamma, mean, inv_std, training):
    """The gradient of sum(dy * y) written out: through the batch statistics in training."""
    dy, x = np.asarray(dy, np.float64), np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - 1))
    R = x.size // x.shape[-1]
    g = 1.0 if gamma is None else np.asarray(gamma, np.float64)
    xhat = (x - mean) * inv_std
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    if training:
        dx = g * inv_std / R * (R * dy - dbeta - xhat * dgamma)
    else:
        dx = g * inv_std * dy
    return dx, dgamma, dbeta


def make(rng, shape, dtype, affine=True):
    C = shape[-1]
    x = rng.normal(3.0, 2.0, shape).astype(dtype)  # off-centre, not unit scale
    gamma = rng.uniform(0.5, 1.5, C).astype(dtype) if affine else None
    beta = rng.uniform(-1, 1, C).astype(dtype) if affine else None
    mm = rng.uniform(-1, 1, C).astype(dtype)
    mv = rng.uniform(0.5, 2, C).astype(dtype)
    return x, gamma, beta, mm, mv


# --- forward ----------------------------------------------------------------------------------

@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward(isa_threads, dtype, shape, training, affine, rng):
    x, gamma, beta, mm, mv = make(rng, shape, dtype, affine)
    want = ref_forward(x, gamma, beta, mm.astype(np.float64), mv.astype(np.float64), 0.9,
                       1e-3, training)
    y, mean, inv_std = _core.batchnorm_forward(x, gamma, beta, mm, mv, 0.9, 1e-3, training)
    assert y.dtype == dtype and y.shape == x.shape
    for got, exp, what in zip((y, mean, inv_std, mm, mv), want,
                              ("y", "mean", "inv_std", "moving_mean", "moving_variance")):
        np.testing.assert_allclose(got, exp, **tol(dtype), err_msg=what)


def test_forward_statistics_of_a_large_mean(isa):
    """Two passes (mean, then squared deviations) keep the variance exact where
    E[x^2] - E[x]^2 would cancel: data 1e4 + N(0, 1e-2) in float64."""
    rng = np.random.default_rng(1)
    x = 1e4 + rng.normal(0, 1e-2, (1000, 3))
    mm, mv = np.zeros(3), np.ones(3)
    _, _, inv_std = _core.batchnorm_forward(x, None, None, mm, mv, 0.0, 1e-12, True)
    np.testing.assert_allclose(mv, x.var(axis=0), rtol=1e-9)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(x.var(axis=0) + 1e-12), rtol=1e-9)


# --- backward ---------------------------------------------------------------------------------

@pytest.mark.parametrize("accumulate", [True, False], ids=["acc", "set"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_backward(isa_threads, dtype, shape, training, accumulate, rng):
    x, gamma, beta, mm, mv = make(rng, shape, dtype)
    _, mean, inv_std = _core.batchnorm_forward(x, gamma, beta, mm, mv, 0.99, 1e-3, training)
    dy = rng.standard_normal(shape).astype(dtype)
    dgamma = rng.standard_normal(shape[-1]).astype(dtype)
    dbeta = rng.standard_normal(shape[-1]).astype(dtype)
    before = dgamma.astype(np.float64), dbeta.astype(np.float64)
    dx = _core.batchnorm_backward(dy, x, gamma, mean, inv_std, training, dgamma, dbeta,
                                  True, accumulate)
    want_dx, want_dg, want_db = ref_backward(dy, x, gamma, mean.astype(np.float64),
                                             inv_std.astype(np.float64), training)
    if accumulate:
        want_dg, want_db = want_dg + before[0], want_db + before[1]
    scale = {"atol": tol(dtype)["atol"] * max(1.0, np.abs(want_dg).max())}
    np.testing.assert_allclose(dx, want_dx, **tol(dtype), err_msg="dx")
    np.testing.assert_allclose(dgamma, want_dg, rtol=tol(dtype)["rtol"], **scale,
                               err_msg="dgamma")
    np.testing.assert_allclose(dbeta, want_db, rtol=tol(dtype)["rtol"], **scale,
                               err_msg="dbeta")


def test_backward_optional_outputs(rng):
    x, gamma, beta, mm, mv = make(rng, (6, 4), np.float64)
    _, mean, inv_std = _core.batchnorm_forward(x, gamma, beta, mm, mv, 0.99, 1e-3, True)
    dy = rng.standard_normal(x.shape)
    want_dx, want_dg, want_db = ref_backward(dy, x, gamma, mean, inv_std, True)
    dx = _core.batchnorm_backward(dy, x, gamma, mean, inv_std, True, None, None)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    dg, db = np.zeros(4), np.zeros(4)
    assert _core.batchnorm_backward(dy, x, gamma, mean, inv_std, True, dg, db, False) is None
    np.testing.assert_allclose(dg, want_dg, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, want_db, rtol=1e-12, atol=1e-12)
    # without gamma (scale=False) the scale is 1
    dx1 = _core.batchnorm_backward(dy, x, None, mean, inv_std, True, None, None)
    np.testing.assert_allclose(dx1, ref_backward(dy, x, None, mean, inv_std, True)[0],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 4)], ids=["5x3", "2x3x2x4"])
def test_backward_finite_differences(isa, shape, training, rng):
    """d sum(R * y) / d(x, gamma, beta) by central differences, in float64."""
    x, gamma, beta, mm, mv = make(rng, shape, np.float64)
    R = rng.standard_normal(shape)

    def objective():
        y, _, _ = _core.batchnorm_forward(x, gamma, beta, mm.copy(), mv.copy(), 0.9, 1e-3,
                                          training)
        return float(np.sum(y * R))

    _, mean, inv_std = _core.batchnorm_forward(x, gamma, beta, mm.copy(), mv.copy(), 0.9, 1e-3,
                                               training)
    dg, db = np.zeros_like(gamma), np.zeros_like(beta)
    dx = _core.batchnorm_backward(R, x, gamma, mean, inv_std, training, dg, db)
    num_x, num_g, num_b = central_diff(objective, [x, gamma, beta])
    np.testing.assert_allclose(dx, num_x, rtol=1e-6, atol=1e-8, err_msg="dx")
    np.testing.assert_allclose(dg, num_g, rtol=1e-6, atol=1e-8, err_msg="dgamma")
    np.testing.assert_allclose(db, num_b, rtol=1e-6, atol=1e-8, err_msg="dbeta")


# --- threads: a fixed-order reduction gives the same bits ---------------------------------------

def run_all(x, gamma, beta, mm, mv, dy, threads):
    dlfast.set_num_threads(threads)
    mm, mv = mm.copy(), mv.copy()
    y, mean, inv_std = _core.batchnorm_forward(x, gamma, beta, mm, mv, 0.99, 1e-3, True)
    dg, db = np.zeros_like(gamma), np.zeros_like(beta)
    dx = _core.batchnorm_backward(dy, x, gamma, mean, inv_std, True, dg, db)
    return y, mean, inv_std, mm, mv, dx, dg, db


def test_one_and_two_threads_give_identical_results(isa, dtype):
    rng = np.random.default_rng(7)
    x, gamma, beta, mm, mv = make(rng, BIG, dtype)
    dy = rng.standard_normal(BIG).astype(dtype)
    one = run_all(x, gamma, beta, mm, mv, dy, 1)
    two = run_all(x, gamma, beta, mm, mv, dy, 2)
    names = ("y", "mean", "inv_std", "moving_mean", "moving_variance", "dx", "dgamma", "dbeta")
    for a, b, what in zip(one, two, names):
        np.testing.assert_array_equal(a, b, err_msg=what)
    # and the big case is right too
    want = ref_forward(x, gamma, beta, mm.astype(np.float64), mv.astype(np.float64), 0.99,
                       1e-3, True)
    np.testing.assert_allclose(one[0], want[0], **tol(dtype))


# --- bad input ----------------------------------------------------------------------------------

def good_args(dtype=np.float32):
    rng = np.random.default_rng(0)
    x, gamma, beta, mm, mv = make(rng, (4, 3), dtype)
    return {"x": x, "gamma": gamma, "beta": beta, "moving_mean": mm, "moving_variance": mv,
            "momentum": 0.99, "epsilon": 1e-3, "training": True}


@pytest.mark.parametrize("change, exc, match", [
    ({"gamma": np.ones(4, np.float32)}, ValueError, "gamma.shape\\[0\\].*expected 3, got 4"),
    ({"beta": np.ones(3, np.float64)}, TypeError, "beta"),
    ({"moving_mean": np.ones((3, 1), np.float32)}, ValueError, "moving_mean"),
    ({"moving_variance": [1.0, 1.0, 1.0]}, TypeError, "moving_variance"),
    ({"x": np.ones((4, 0), np.float32)}, ValueError, "at least one channel"),
    ({"x": np.ones((0, 3), np.float32)}, ValueError, "at least one row"),
    ({"x": np.ones((3, 8), np.float32)[:, ::2]}, ValueError, "contiguous"),
    ({"x": np.float32(1.0)}, (TypeError, ValueError), "x"),
    ({"x": np.ones((4, 3), np.int32)}, TypeError, "float32 or float64"),
    ({"momentum": 1.5}, ValueError, "momentum"),
    ({"epsilon": 0.0}, ValueError, "epsilon"),
    ({"epsilon": float("nan")}, ValueError, "epsilon"),
])
def test_forward_bad_input_changes_nothing(change, exc, match):
    args = {**good_args(), **change}
    mm, mv = args["moving_mean"], args["moving_variance"]
    saved = [np.array(a, copy=True) for a in (mm, mv)]
    with pytest.raises(exc, match=match):
        _core.batchnorm_forward(**args)
    for a, s in zip((mm, mv), saved):
        np.testing.assert_array_equal(a, s)


def test_forward_readonly_moving_stats_refused_in_training_only():
    args = good_args()
    args["moving_mean"].flags.writeable = False
    with pytest.raises(ValueError, match="moving_mean.*writ"):
        _core.batchnorm_forward(**args)
    _core.batchnorm_forward(**{**args, "training": False})  # inference only reads them


@pytest.mark.parametrize("change, exc, match", [
    ({"dy": np.ones((4, 4), np.float32)}, ValueError, "'dy' must have the shape of 'x'"),
    ({"mean": np.ones(2, np.float32)}, ValueError, "mean"),
    ({"inv_std": None}, TypeError, "inv_std"),
    ({"dgamma": np.ones(3, np.float64)}, TypeError, "dgamma"),
    ({"dbeta": np.ones(5, np.float32)}, ValueError, "dbeta"),
])
def test_backward_bad_input_changes_nothing(change, exc, match):
    x = np.ones((4, 3), np.float32)
    args = {"dy": np.ones((4, 3), np.float32), "x": x, "gamma": np.ones(3, np.float32),
            "mean": np.zeros(3, np.float32), "inv_std": np.ones(3, np.float32),
            "training": True, "dgamma": np.zeros(3, np.float32),
            "dbeta": np.zeros(3, np.float32)}
    args.update(change)
    with pytest.raises(exc, match=match):
        _core.batchnorm_backward(**args)
    for name in ("dgamma", "dbeta"):
        if isinstance(args[name], np.ndarray) and args[name].dtype == np.float32 \
                and args[name].shape == (3,):
            assert not args[name].any()
