"""ops.dense_forward / ops.dense_backward against float64 NumPy, every activation, with and
without bias, on every ISA path and 1 / 2 threads."""

import numpy as np
import pytest

from dlfast import _core, ops
import reference as ref

# every activation the kernels list but leaky_relu (its slope has tests of its own): a new
# entry of DLFAST_ACTIVATIONS is tested here once tests/reference.py has its formula
ACTS = [n for n in _core.ACTIVATIONS if n != "leaky_relu"]
# (N, D, U): batch 1, odd sizes, sizes below and above the GEMM tile and K block, and one
# large enough to run the GEMMs on two threads.
SHAPES = [(1, 1, 1), (1, 4, 3), (7, 5, 3), (32, 4, 32), (33, 17, 19), (5, 300, 7),
          (128, 64, 10), (300, 200, 150)]


def tol(dtype, K):
    return (2e-5 if dtype == np.float32 else 1e-12) * np.sqrt(max(K, 1))


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dense_forward_backward(isa_threads, dtype, shape, act, use_bias, rng):
    N, D, U = shape
    x = rng.uniform(-1, 1, (N, D)).astype(dtype)
    w = rng.uniform(-1, 1, (D, U)).astype(dtype) / np.sqrt(D)
    b = rng.uniform(-1, 1, U).astype(dtype) if use_bias else None
    dy = rng.uniform(-1, 1, (N, U)).astype(dtype)

    y = ops.dense_forward(x, w, b, act)
    assert y.shape == (N, U) and y.dtype == dtype
    want_y = ref.dense_forward(x, w, b, act)
    np.testing.assert_allclose(y, want_y, rtol=0, atol=tol(dtype, D))

    want_dx, want_dw, want_db = ref.dense_backward(dy, x, w, b, act)
    for given_y in (None, y):
        dx, dw, db = ops.dense_backward(dy, x, w, b, act, y=given_y)
        assert dx.shape == (N, D) and dw.shape == (D, U) and dx.dtype == dtype
        np.testing.assert_allclose(dx, want_dx, rtol=0, atol=tol(dtype, U))
        np.testing.assert_allclose(dw, want_dw, rtol=0, atol=tol(dtype, N))
        if use_bias:
            assert db.shape == (U,)
            np.testing.assert_allclose(db, want_db, rtol=0, atol=tol(dtype, N))
        else:
            assert db is None


@pytest.mark.parametrize("act", ACTS)
def test_core_dense_backward_accumulates_and_skips_dx(isa_threads, dtype, act, rng):
    N, D, U = 9, 6, 5
    x = rng.uniform(-1, 1, (N, D)).astype(dtype)
    w = rng.uniform(-1, 1, (D, U)).astype(dtype)
    b = rng.uniform(-1, 1, U).astype(dtype)
    dy = rng.uniform(-1, 1, (N, U)).astype(dtype)
    code = ops.ACTIVATIONS[act]
    y = _core.dense_forward(x, w, b, code)
    dw0 = rng.uniform(-1, 1, (D, U)).astype(dtype)
    db0 = rng.uniform(-1, 1, U).astype(dtype)
    dw, db = dw0.copy(), db0.copy()
    dx = _core.dense_backward(dy, x, w, y, code, dw, db, False)
    assert dx is None
    _, want_dw, want_db = ref.dense_backward(dy, x, w, b, act)
    np.testing.assert_allclose(dw, dw0 + want_dw, rtol=0, atol=tol(dtype, N))
    np.testing.assert_allclose(db, db0 + want_db, rtol=0, atol=tol(dtype, N))


def test_dense_batch_zero(dtype):
    x = np.zeros((0, 4), dtype)
    w = np.ones((4, 3), dtype)
    b = np.ones(3, dtype)
    y = ops.dense_forward(x, w, b, "relu")
    assert y.shape == (0, 3)
    dx, dw, db = ops.dense_backward(np.zeros((0, 3), dtype), x, w, b, "relu")
    assert dx.shape == (0, 4)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


def test_dense_strided_inputs_give_the_right_answer(dtype, rng):
    xb = rng.uniform(-1, 1, (10, 16)).astype(dtype)
    wb = rng.uniform(-1, 1, (3, 8)).astype(dtype)
    x, w = xb[:, ::2], wb.T  # (10, 8) strided, (8, 3) Fortran order
    b = rng.uniform(-1, 1, 3).astype(dtype)
    want = ops.dense_forward(np.ascontiguousarray(x), np.ascontiguousarray(w), b, "tanh")
    np.testing.assert_array_equal(ops.dense_forward(x, w, b, "tanh"), want)
    np.testing.assert_allclose(want, ref.dense_forward(x, w, b, "tanh"), rtol=0, atol=tol(dtype, 8))
    dy = rng.uniform(-1, 1, (10, 6)).astype(dtype)[:, ::2]
    got = ops.dense_backward(dy, x, w, b, "tanh")
    exp = ref.dense_backward(dy, x, w, b, "tanh")
    for g, e in zip(got, exp):
        np.testing.assert_allclose(g, e, rtol=0, atol=tol(dtype, 10))


@pytest.mark.parametrize("accumulate", [False, True], ids=["overwrite", "accumulate"])
def test_dense_backward_same_bits_on_one_and_two_threads(dtype, accumulate, rng):
    # On two threads dense_backward runs its dW and dx products side by side, one per thread;
    # on one thread one after the other. Both must give the same bits (and match float64).
    import dlfast
    N, D, U = 64, 256, 128  # N*D*U large enough for the two-thread path
    x = rng.uniform(-1, 1, (N, D)).astype(dtype)
    w = (rng.uniform(-1, 1, (D, U)) / np.sqrt(D)).astype(dtype)
    b = rng.uniform(-1, 1, U).astype(dtype)
    dy = rng.uniform(-1, 1, (N, U)).astype(dtype)
    code = ops.ACTIVATIONS["relu"]
    y = _core.dense_forward(x, w, b, code)
    dw0 = rng.uniform(-1, 1, (D, U)).astype(dtype)
    db0 = rng.uniform(-1, 1, U).astype(dtype)
    got = {}
    old = dlfast.get_num_threads()
    try:
        for threads in (1, 2):
            dlfast.set_num_threads(threads)
            dw, db = dw0.copy(), db0.copy()
            dx = _core.dense_backward(dy, x, w, y, code, dw, db, True, accumulate)
            got[threads] = (dx, dw, db)
    finally:
        dlfast.set_num_threads(old)
    for one, two in zip(got[1], got[2]):
        np.testing.assert_array_equal(one, two)
    want_dx, want_dw, want_db = ref.dense_backward(dy, x, w, b, "relu")
    base_dw, base_db = (dw0, db0) if accumulate else (0, 0)
    np.testing.assert_allclose(got[2][0], want_dx, rtol=0, atol=tol(dtype, U))
    np.testing.assert_allclose(got[2][1], base_dw + want_dw, rtol=0, atol=tol(dtype, N))
    np.testing.assert_allclose(got[2][2], base_db + want_db, rtol=0, atol=tol(dtype, N))


@pytest.mark.parametrize("shape", [(37, 19, 45), (8, 16, 32), (3, 1, 5)])
def test_fused_relu_keeps_nan_and_inf(isa_threads, dtype, shape):
    # Issue 18: the ReLU in the GEMM's store (full register tiles and edge tiles) mapped NaN
    # to 0. A row of x holding NaN (or +-Inf) comes out as NumPy's float64 product says.
    n, d, u = shape
    rng = np.random.default_rng(n * 1000 + d)
    x = rng.standard_normal((n, d)).astype(dtype)
    x[::3, 0] = np.resize([np.nan, np.inf, -np.inf], len(x[::3, 0]))
    w = rng.standard_normal((d, u)).astype(dtype)
    b = rng.standard_normal(u).astype(dtype)
    with np.errstate(invalid="ignore"):  # inf - inf in the float64 reference
        want = ref.act_forward((x.astype(np.float64)[:, :, None] * w[None]).sum(1) + b, "relu")
    got = ops.dense_forward(x, w, b, "relu")
    assert np.isnan(got[0]).all() and np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, equal_nan=True)
