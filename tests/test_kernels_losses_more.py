"""Loss kernels mean absolute error, Huber and KL divergence (ops.mae_*, ops.huber_*,
ops.kl_divergence_*) against Keras 3's formulas in float64 NumPy (tests/reference.py):
mae and huber are means over the last axis and then the batch; kl_divergence clips y_true and
y_pred to [1e-7, 1], sums over the last axis and averages the rest. Gradients against central
differences (float64); every ISA path x 1 and 2 threads; bad input raises."""

import re

import numpy as np
import pytest

from dlfast import _core, ops
import reference as ref

SHAPES = [(1, 1), (1, 3), (5, 1), (8, 3), (33, 10), (64, 17), (2, 3, 5)]
IDS = ["x".join(map(str, s)) for s in SHAPES]


def rtol(dtype):
    return 2e-6 if dtype == np.float32 else 1e-12


def check(value, grad, want_value, want_grad, dtype):
    assert isinstance(value, float)
    np.testing.assert_allclose(value, want_value, rtol=rtol(dtype), atol=rtol(dtype))
    assert grad.dtype == dtype and grad.shape == want_grad.shape
    scale = max(np.abs(want_grad).max(), 1e-30)
    np.testing.assert_allclose(grad, want_grad, rtol=0, atol=rtol(dtype) * 4 * scale)


def probs(rng, shape, dtype):
    z = rng.standard_normal(shape)
    return (np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_mae(isa_threads, dtype, shape, rng):
    t = rng.standard_normal(shape).astype(dtype)
    p = rng.standard_normal(shape).astype(dtype)
    check(ops.mae_forward(t, p), ops.mae_backward(t, p), *ref.mae(t, p), dtype)


@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_huber(isa_threads, dtype, shape, delta, rng):
    t = rng.standard_normal(shape).astype(dtype)
    p = (t + rng.standard_normal(shape) * 2).astype(dtype)  # errors on both sides of delta
    check(ops.huber_forward(t, p, delta), ops.huber_backward(t, p, delta),
          *ref.huber(t, p, delta), dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_kl_divergence(isa_threads, dtype, shape, rng):
    t = probs(rng, shape, dtype)
    p = probs(rng, shape, dtype)
    check(ops.kl_divergence_forward(t, p), ops.kl_divergence_backward(t, p),
          *ref.kl_divergence(t, p), dtype)


SHAPE_LOSSES = ["mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy",
                "kl_divergence"]


@pytest.mark.parametrize("name", SHAPE_LOSSES)
@pytest.mark.parametrize("t_shape,p_shape", [((3, 4), (4, 3)), ((1, 4, 3), (4, 3)),
                                             ((4, 3), (1, 4, 3)), ((12,), (4, 3)),
                                             ((4, 3), (4,)), ((4, 1, 3), (4, 3))])
def test_loss_shapes_must_match(name, t_shape, p_shape):
    # Issue 18: these were reshaped silently, pairing the wrong elements.
    t, p = np.full(t_shape, 0.5, np.float32), np.full(p_shape, 0.25, np.float32)
    with pytest.raises(ValueError, match=rf"'y_true' must have the shape of 'y_pred' "
                                         rf"{re.escape(str(p_shape))}, got "
                                         rf"{re.escape(str(t_shape))}"):
        getattr(ops, f"{name}_forward")(t, p)


@pytest.mark.parametrize("t_shape,p_shape", [((4,), (4, 1)), ((4, 1), (4,)),
                                             ((4, 3, 1), (4, 3)), ((4, 3), (4, 3, 1))])
def test_loss_trailing_axis_of_one_is_squeezed(t_shape, p_shape, rng):
    t = rng.random(t_shape).astype(np.float32)
    p = rng.random(p_shape).astype(np.float32)
    value, _ = ref.mse(t.reshape(p.shape), p)
    np.testing.assert_allclose(ops.mse_forward(t, p), value, rtol=1e-5)


@pytest.mark.parametrize("name", SHAPE_LOSSES + ["sparse_categorical_crossentropy"])
@pytest.mark.parametrize("shape", [(0, 3), (0,), (4, 0)])
def test_loss_of_an_empty_batch_is_refused(name, shape):
    if name == "sparse_categorical_crossentropy":
        if len(shape) != 2:
            return
        t = np.zeros(shape[0], np.int64)
    else:
        t = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=r"'y_pred' is empty"):
        getattr(ops, f"{name}_forward")(t, np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=r"'y_pred' is empty"):
        getattr(ops, f"{name}_backward")(t, np.zeros(shape, np.float32))


def test_reductions_by_hand(dtype):
    t = np.zeros((2, 4), dtype)
    p = np.array([[1, -1, 1, -1], [4, 0, 0, 0]], dtype)  # per-sample mean |e|: 1 and 1
    assert ops.mae_forward(t, p) == pytest.approx(1.0)
    # Keras's documented example: huber([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) = 0.155
    assert ops.huber_forward(np.array([[0, 1], [0, 0]], dtype),
                             np.array([[0.6, 0.4], [0.4, 0.6]], dtype)) == pytest.approx(0.155)
    # |e| = 3 > delta = 1: delta*|e| - delta^2/2 = 2.5; |e| = 0.5: e^2/2 = 0.125
    assert ops.huber_forward(np.zeros((1, 2), dtype), np.array([[3, -0.5]], dtype)) == \
        pytest.approx((2.5 + 0.125) / 2)
    # KL sums over the last axis and averages the rows: rows (N, 3) of a (2, 3, 2) batch
    t3 = np.tile(np.array([0.5, 0.5], dtype), (2, 3, 1))
    p3 = np.tile(np.array([0.25, 0.75], dtype), (2, 3, 1))
    want = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert ops.kl_divergence_forward(t3, p3) == pytest.approx(want, rel=1e-6)
    assert ops.kl_divergence_forward(t3, t3) == 0.0


def test_gradients_at_the_kinks(dtype):
    # Keras's gradients: d|e|/de = sign(e) = 0 at e = 0; Huber's quadratic piece includes
    # |e| = delta (gradient e there, which equals delta*sign(e): the function is C1).
    t = np.zeros((1, 4), dtype)
    p = np.array([[0.0, 1.0, -1.0, 2.0]], dtype)
    np.testing.assert_array_equal(ops.mae_backward(t, p), np.array([[0, 1, -1, 1]]) / 4)
    np.testing.assert_allclose(ops.huber_backward(t, p, 1.0), np.array([[0, 1, -1, 1]]) / 4)
    np.testing.assert_allclose(ops.huber_backward(t, p, 2.0), np.array([[0, 1, -1, 2]]) / 4)


def test_kl_divergence_clips_to_eps_and_one(dtype):
    eps = float(np.dtype(dtype).type(1e-7))
    t = np.array([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]], dtype)
    p = np.array([[0.5, 0.0, 1.5], [1e-9, 0.5, 0.5]], dtype)  # 0 and 1e-9 -> eps, 1.5 -> 1
    tc, pc = np.clip(t.astype(np.float64), eps, 1), np.clip(p.astype(np.float64), eps, 1)
    want = np.sum(tc * np.log(tc / pc)) / 2
    assert ops.kl_divergence_forward(t, p) == pytest.approx(want, rel=1e-6)
    g = ops.kl_divergence_backward(t, p)
    assert g[0, 1] == 0 and g[0, 2] == 0 and g[1, 0] == 0  # clipped: no gradient
    np.testing.assert_allclose(g[1, 1:], -eps / 0.5 / 2, rtol=1e-6)
    assert g[0, 0] == pytest.approx(-eps / 0.5 / 2, rel=1e-6)  # y_true = 0 counts as eps


@pytest.mark.parametrize("name", ["mae", "huber", "kl_divergence"])
def test_gradient_matches_central_differences(name, rng):
    shape = (5, 4)
    t = probs(rng, shape, np.float64) if name == "kl_divergence" else rng.standard_normal(shape)
    p = probs(rng, shape, np.float64) if name == "kl_divergence" else rng.standard_normal(shape)
    if name != "kl_divergence":  # keep |e| away from the kinks (0, and delta = 0.7)
        e = p - t
        e = np.where(np.abs(e) < 0.05, 0.05, e)
        e = np.where(np.abs(np.abs(e) - 0.7) < 0.05, e * 1.2, e)
        p = t + e
    args = (0.7,) if name == "huber" else ()
    fwd = lambda: getattr(ops, f"{name}_forward")(t, p, *args)  # noqa: E731
    bwd = lambda: getattr(ops, f"{name}_backward")(t, p, *args)  # noqa: E731
    numeric = ref.central_diff(fwd, [p])[0]
    np.testing.assert_allclose(bwd(), numeric, rtol=1e-6, atol=1e-9)


def test_nan_stays_visible(dtype):
    t = np.zeros((1, 2), dtype)
    p = np.array([[np.nan, 1.0]], dtype)
    for f, b in [(ops.mae_forward, ops.mae_backward), (ops.huber_forward, ops.huber_backward)]:
        assert np.isnan(f(t, p))
        assert np.isnan(b(t, p)[0, 0]) and b(t, p)[0, 1] == 0.5
    assert np.isnan(ops.kl_divergence_forward(np.full((1, 2), 0.5, dtype), p))


def test_float64_targets_against_float32_predictions_use_the_predictions_dtype(rng):
    t = rng.standard_normal((4, 3))
    p = rng.standard_normal((4, 3)).astype(np.float32)
    g = ops.huber_backward(t, p)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, ref.huber(t.astype(np.float32), p)[1], rtol=1e-6)


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mae", "huber", "kl_divergence"])
def test_shape_mismatch_is_a_value_error(name):
    fwd = getattr(ops, f"{name}_forward")
    with pytest.raises(ValueError, match=r"'y_true' must have the shape of 'y_pred' \(4, 3\), "
                                         r"got \(4, 2\)"):
        fwd(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"'y_pred' must have a batch axis"):
        fwd(np.zeros(()), np.zeros(()))
    with pytest.raises(TypeError, match=r"y_pred"):
        fwd(np.zeros((4, 3)), np.array([["a"] * 3] * 4))


def test_bad_huber_delta_and_kinds():
    t = p = np.zeros((2, 3))
    for delta in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"loss: Huber's delta must be a finite number > 0"):
            ops.huber_forward(t, p, delta)
    for kind in (4, 5, 6):
        with pytest.raises(ValueError, match=rf"from_logits=True has no meaning .* \(kind "
                                             rf"{kind}\)"):
            _core.loss(kind, t, p, True)
    assert _core.loss(5, t, p, False, True, 0.5)[0] == 0.0  # delta by keyword's position
