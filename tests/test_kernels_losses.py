"""Loss kernels (mse, binary / categorical / sparse categorical cross-entropy) against the
Keras formulas in float64 NumPy: mean over the batch (mse and bce also over the last axis),
probabilities clipped to [1e-7, 1 - 1e-7]; from_logits stable at logits of +-1e4."""

import numpy as np
import pytest

from dlfast import ops
import reference as ref

SHAPES = [(1, 1), (1, 3), (5, 1), (8, 3), (33, 10), (64, 17)]


def rtol(dtype):
    return 2e-6 if dtype == np.float32 else 1e-12


def probs(rng, shape, dtype, lo=0.02):
    z = rng.standard_normal(shape)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return np.clip(p, lo, 1).astype(dtype) if shape[-1] == 1 else p.astype(dtype)


def check(value, grad, want_value, want_grad, dtype):
    assert isinstance(value, float)
    np.testing.assert_allclose(value, want_value, rtol=rtol(dtype), atol=rtol(dtype))
    assert grad.dtype == dtype
    scale = max(np.abs(want_grad).max(), 1e-30)
    np.testing.assert_allclose(grad, want_grad, rtol=0, atol=rtol(dtype) * 4 * scale)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_mse(isa_threads, dtype, shape, rng):
    t = rng.standard_normal(shape).astype(dtype)
    p = rng.standard_normal(shape).astype(dtype)
    check(ops.mse_forward(t, p), ops.mse_backward(t, p), *ref.mse(t, p), dtype)


def test_mse_averages_over_the_last_axis_then_the_batch(dtype):
    t = np.zeros((2, 4), dtype)
    p = np.array([[1, 1, 1, 1], [2, 0, 0, 0]], dtype)  # per-sample means 1 and 1
    assert ops.mse_forward(t, p) == pytest.approx(1.0)
    p3 = np.ones((2, 3, 5), dtype)
    assert ops.mse_forward(np.zeros_like(p3), 2 * p3) == pytest.approx(4.0)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_binary_crossentropy_from_probabilities(isa_threads, dtype, shape, rng):
    t = rng.integers(0, 2, shape).astype(dtype)
    t[..., 0] = rng.uniform(0, 1, shape[0])  # soft labels are allowed too
    p = rng.uniform(0.01, 0.99, shape).astype(dtype)
    check(ops.binary_crossentropy_forward(t, p), ops.binary_crossentropy_backward(t, p),
          *ref.bce(t, p), dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_binary_crossentropy_from_logits(isa_threads, dtype, shape, rng):
    t = rng.integers(0, 2, shape).astype(dtype)
    z = rng.uniform(-8, 8, shape).astype(dtype)
    check(ops.binary_crossentropy_forward(t, z, from_logits=True),
          ops.binary_crossentropy_backward(t, z, from_logits=True), *ref.bce_logits(t, z), dtype)


def test_binary_crossentropy_clips_probabilities(dtype):
    t = np.array([[1.0, 0.0, 1.0, 0.0]], dtype)
    p = np.array([[0.0, 1.0, 1.0, 0.0]], dtype)  # two maximally wrong, two exactly right
    value = ops.binary_crossentropy_forward(t, p)
    want = ref.bce(t, p)[0]
    assert np.isfinite(value)
    np.testing.assert_allclose(value, want, rtol=1e-5)
    lo, hi = ref.clip_bounds(dtype)
    np.testing.assert_allclose(value, -(np.log(lo) + np.log(1 - hi) + np.log(hi) + np.log(1 - lo)) / 4, rtol=1e-5)
    grad = ops.binary_crossentropy_backward(t, p)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_categorical_crossentropy_from_probabilities(isa_threads, dtype, shape, rng):
    C = shape[-1]
    labels = rng.integers(0, C, shape[0])
    t = ref.onehot(labels, C).astype(dtype)
    p = probs(rng, shape, dtype)
    p = (p / p.sum(axis=-1, keepdims=True)).astype(dtype)
    check(ops.categorical_crossentropy_forward(t, p), ops.categorical_crossentropy_backward(t, p),
          *ref.cce(t, p), dtype)
    # the sparse form with the same labels is the same loss
    check(ops.sparse_categorical_crossentropy_forward(labels, p),
          ops.sparse_categorical_crossentropy_backward(labels, p), *ref.cce(t, p), dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_categorical_crossentropy_from_logits(isa_threads, dtype, shape, rng):
    C = shape[-1]
    labels = rng.integers(0, C, shape[0])
    z = rng.uniform(-10, 10, shape).astype(dtype)
    soft = rng.uniform(0, 1, shape)
    soft = (soft / soft.sum(axis=-1, keepdims=True)).astype(dtype)
    for t in (ref.onehot(labels, C).astype(dtype), soft):
        check(ops.categorical_crossentropy_forward(t, z, from_logits=True),
              ops.categorical_crossentropy_backward(t, z, from_logits=True),
              *ref.cce_logits(t, z), dtype)
    t = ref.onehot(labels, C)
    check(ops.sparse_categorical_crossentropy_forward(labels, z, from_logits=True),
          ops.sparse_categorical_crossentropy_backward(labels, z, from_logits=True),
          *ref.cce_logits(t, z), dtype)


def test_categorical_crossentropy_clips_probabilities(dtype):
    t = np.array([[0, 1, 0], [1, 0, 0]], dtype)
    p = np.array([[1, 0, 0], [1, 0, 0]], dtype)
    lo, hi = ref.clip_bounds(dtype)
    value = ops.categorical_crossentropy_forward(t, p)
    np.testing.assert_allclose(value, -(np.log(lo) + np.log(hi)) / 2, rtol=1e-5)
    np.testing.assert_allclose(value, ref.cce(t, p)[0], rtol=1e-5)
    assert np.all(np.isfinite(ops.categorical_crossentropy_backward(t, p)))
    value = ops.sparse_categorical_crossentropy_forward(np.array([1, 0]), p)
    np.testing.assert_allclose(value, -(np.log(lo) + np.log(hi)) / 2, rtol=1e-5)


def test_categorical_crossentropy_normalizes_rows_like_keras(dtype):
    # Keras divides y_pred by its row sum before clipping: probabilities that do not sum to
    # one (e.g. a model without a final softmax) are rescaled, not taken as they are.
    t = np.array([[0, 1, 0], [0, 0, 1]], dtype)
    p = np.array([[0.2, 0.4, 0.2], [0.5, 0.25, 1.25]], dtype)
    pn = p.astype(np.float64) / p.astype(np.float64).sum(axis=-1, keepdims=True)
    want = -(np.log(pn[0, 1]) + np.log(pn[1, 2])) / 2
    np.testing.assert_allclose(ops.categorical_crossentropy_forward(t, p), want, rtol=1e-6)
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy_forward([1, 2], p), want,
                               rtol=1e-6)


@pytest.mark.parametrize("sparse", [False, True], ids=["categorical", "sparse"])
def test_crossentropy_from_huge_logits_is_stable(isa_threads, dtype, sparse):
    z = np.array([[-1e4, 1e4, 0.0], [1e4, -1e4, -1e4], [3.0, 1e4, 1e4]], dtype)
    labels = np.array([0, 0, 1])
    t = ref.onehot(labels, 3).astype(dtype)
    if sparse:
        value = ops.sparse_categorical_crossentropy_forward(labels, z, from_logits=True)
        grad = ops.sparse_categorical_crossentropy_backward(labels, z, from_logits=True)
    else:
        value = ops.categorical_crossentropy_forward(t, z, from_logits=True)
        grad = ops.categorical_crossentropy_backward(t, z, from_logits=True)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    # row 0: true logit -1e4, another +1e4 -> 2e4; row 1: right, 0; row 2: log 2
    np.testing.assert_allclose(value, (2e4 + 0.0 + np.log(2.0)) / 3, rtol=1e-6)
    softmax = np.array([[0, 1, 0], [1, 0, 0], [0, 0.5, 0.5]])
    np.testing.assert_allclose(grad, (softmax - ref.onehot(labels, 3)) / 3, atol=1e-6)


@pytest.mark.parametrize("sparse", [False, True], ids=["categorical", "sparse"])
def test_crossentropy_gradient_of_confident_rows_is_relatively_accurate(isa_threads, dtype,
                                                                        sparse):
    # The true class has p = 1 - tiny: its gradient (p - 1) / n must keep its relative
    # precision, not round to 0 as float32's 1 - tiny would (row 1: p - 1 ~ -7e-9).
    z = np.array([[12.0, -3.0, 0.5, 1.0], [20.0, 1.0, 2.0, -5.0], [0.3, 9.0, -1.0, 8.5]], dtype)
    labels = np.array([0, 0, 1])
    t = ref.onehot(labels, 4)
    if sparse:
        grad = ops.sparse_categorical_crossentropy_backward(labels, z, from_logits=True)
    else:
        grad = ops.categorical_crossentropy_backward(t.astype(dtype), z, from_logits=True)
    want = ref.cce_logits(t, z)[1]
    np.testing.assert_allclose(grad, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_single_huge_wrong_logit_loss_is_2e4(dtype):
    z = np.array([[-1e4, 1e4]], dtype)
    assert ops.sparse_categorical_crossentropy_forward([0], z, from_logits=True) == \
        pytest.approx(2e4, rel=1e-6)
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy_backward([0], z, True),
                               [[-1, 1]], atol=1e-6)


def test_binary_crossentropy_from_huge_logits_is_stable(isa_threads, dtype):
    z = np.array([[-1e4, 1e4, 1e4, -1e4]], dtype)
    t = np.array([[1, 0, 1, 0]], dtype)
    value = ops.binary_crossentropy_forward(t, z, from_logits=True)
    grad = ops.binary_crossentropy_backward(t, z, from_logits=True)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, 2e4 / 4, rtol=1e-6)
    np.testing.assert_allclose(grad, [[-0.25, 0.25, 0, 0]], atol=1e-6)


def test_sparse_labels_as_column_and_float(dtype, rng):
    z = rng.standard_normal((6, 4)).astype(dtype)
    labels = np.array([0, 3, 1, 2, 2, 0])
    want = ref.cce_logits(ref.onehot(labels, 4), z)[0]
    for lab in (labels, labels.reshape(-1, 1), labels.astype(np.float32), labels.astype(np.int32),
                list(labels)):
        np.testing.assert_allclose(
            ops.sparse_categorical_crossentropy_forward(lab, z, from_logits=True), want,
            rtol=rtol(dtype))


def test_loss_strided_inputs_give_the_right_answer(dtype, rng):
    base = rng.uniform(0.05, 0.95, (8, 10)).astype(dtype)
    t = (rng.uniform(0, 1, (8, 10)) > 0.5).astype(dtype)
    p, tv = base[:, ::2], t[:, 1::2]
    np.testing.assert_allclose(ops.binary_crossentropy_forward(tv, p), ref.bce(tv, p)[0],
                               rtol=rtol(dtype))
    np.testing.assert_allclose(ops.mse_backward(tv.T, p.T), ref.mse(tv.T, p.T)[1],
                               rtol=rtol(dtype), atol=1e-9)
