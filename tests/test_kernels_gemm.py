"""GEMM (dlfast.ops.matmul and dlfast._core.gemm) against a float64 NumPy reference and the
scalar reference kernel, on every ISA path this CPU can run, with 1 and 2 threads."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlfast
from dlfast import _core, ops
from conftest import ISAS

TRANS = [(False, False), (True, False), (False, True), (True, True)]
TRANS_IDS = ["NN", "TN", "NT", "TT"]

# (M, N, K). The register tile is 6x16 (avx2 float32), the K block 256, the small-matrix
# path is M*N*K <= 64^3 and the work gate for threads ~1e6 multiply-adds.
SHAPES = [
    (1, 1, 1),
    (1, 7, 3),
    (7, 1, 3),
    (5, 17, 33),
    (6, 16, 256),
    (6, 16, 257),
    (5, 15, 300),       # M, N below the tile, K over one block
    (2, 3, 1000),       # small path with several K blocks
    (64, 64, 64),       # the largest small product
    (65, 64, 64),       # the smallest packed one
    (63, 65, 257),
    (13, 200, 129),
    (100, 37, 513),     # packed, last row panel 4 rows (the 4-row register tile)
    (62, 70, 130),      # packed, last row panel 2 rows
    (97, 1, 700),       # a matrix-vector product
    (1, 300, 700),
    (300, 250, 40),     # parallel over N
    (700, 20, 100),     # parallel over M
    # narrow N (< the tile's NR): row tiles masked to N, or (A transposed, N <= 16) tiles of
    # rows of C by N broadcast columns; every column-count branch, ragged last row tiles
    (128, 10, 16),
    (129, 10, 128),
    (33, 16, 7),
    (77, 4, 65),
    (50, 8, 3),
    (300, 13, 50),
    (45, 24, 20),
    (70, 31, 9),
    (1000, 10, 300),    # narrow, parallel over rows
]


def shape_id(s):
    return "x".join(map(str, s))


def operands(rng, M, N, K, trans_a, trans_b, dtype):
    a = rng.uniform(-1, 1, (K, M) if trans_a else (M, K)).astype(dtype)
    b = rng.uniform(-1, 1, (N, K) if trans_b else (K, N)).astype(dtype)
    return a, b


def ref_product(a, b, trans_a, trans_b, bias=None, relu=False):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    c = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    if bias is not None:
        c = c + bias.astype(np.float64)
    if relu:
        c = np.maximum(c, 0)
    return c


def atol_for(dtype, K, magnitude=1.0):
    """Rounding bound for a K-term dot product of entries <= 1: ~eps * sqrt(K), generously."""
    base = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    return base * np.sqrt(max(K, 1)) * magnitude


@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_matmul_matches_float64(isa_threads, dtype, shape, trans, rng):
    M, N, K = shape
    a, b = operands(rng, M, N, K, *trans, dtype)
    c = ops.matmul(a, b, *trans)
    assert c.shape == (M, N) and c.dtype == dtype and c.flags.c_contiguous
    np.testing.assert_allclose(c, ref_product(a, b, *trans), rtol=0, atol=atol_for(dtype, K))


@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
def test_matmul_large_odd_shape(isa_threads, dtype, trans, rng):
    M, N, K = 517, 333, 1025
    a, b = operands(rng, M, N, K, *trans, dtype)
    c = ops.matmul(a, b, *trans)
    np.testing.assert_allclose(c, ref_product(a, b, *trans), rtol=0, atol=atol_for(dtype, K))


@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 17, 33), (6, 16, 257), (63, 65, 257),
                                   (70, 90, 300)], ids=shape_id)
def test_gemm_matches_reference_kernel(isa_threads, dtype, shape, trans, rng):
    M, N, K = shape
    a, b = operands(rng, M, N, K, *trans, dtype)
    bias = rng.uniform(-1, 1, N).astype(dtype)
    fast = _core.gemm(a, b, *trans, bias=bias, relu=True)
    slow = _core.reference_gemm(a, b, *trans, bias=bias, relu=True)
    want = ref_product(a, b, *trans, bias=bias, relu=True)
    tol = atol_for(dtype, K, 2.0)
    np.testing.assert_allclose(slow, want, rtol=0, atol=tol)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=tol)


@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("shape", [(1, 7, 3), (5, 17, 33), (6, 16, 300), (63, 65, 257),
                                   (130, 100, 260)], ids=shape_id)
def test_gemm_bias_relu_out_accumulate(isa_threads, dtype, shape, trans, rng):
    M, N, K = shape
    a, b = operands(rng, M, N, K, *trans, dtype)
    bias = rng.uniform(-1, 1, N).astype(dtype)
    tol = atol_for(dtype, K, 3.0)
    prod = ref_product(a, b, *trans)

    np.testing.assert_allclose(_core.gemm(a, b, *trans, bias=bias), prod + bias, rtol=0, atol=tol)
    np.testing.assert_allclose(_core.gemm(a, b, *trans, relu=True), np.maximum(prod, 0),
                               rtol=0, atol=tol)
    relu_out = _core.gemm(a, b, *trans, bias=bias, relu=True)
    assert np.all(relu_out >= 0)
    np.testing.assert_allclose(relu_out, np.maximum(prod + bias, 0), rtol=0, atol=tol)

    # out=: written in place, the same object returned, old contents ignored
    out = np.full((M, N), np.nan, dtype)
    ret = _core.gemm(a, b, *trans, bias=bias, out=out)
    assert ret is out
    np.testing.assert_allclose(out, prod + bias, rtol=0, atol=tol)

    # accumulate=True: out += op(a) op(b) (+ bias), then ReLU of the sum
    c0 = rng.uniform(-1, 1, (M, N)).astype(dtype)
    out = c0.copy()
    _core.gemm(a, b, *trans, out=out, accumulate=True)
    np.testing.assert_allclose(out, c0 + prod, rtol=0, atol=tol)
    out = c0.copy()
    _core.gemm(a, b, *trans, bias=bias, relu=True, out=out, accumulate=True)
    np.testing.assert_allclose(out, np.maximum(c0 + prod + bias, 0), rtol=0, atol=tol)


def test_gemm_k_zero_gives_zeros_or_bias(isa_threads, dtype):
    a = np.zeros((3, 0), dtype)
    b = np.zeros((0, 5), dtype)
    c = ops.matmul(a, b)
    assert c.shape == (3, 5)
    np.testing.assert_array_equal(c, np.zeros((3, 5)))
    # garbage in a fresh allocation must not leak through
    c = _core.gemm(np.zeros((0, 40), dtype), np.zeros((0, 33), dtype), True, False)
    np.testing.assert_array_equal(c, np.zeros((40, 33)))
    bias = np.array([1, -2, 3, -4, 5], dtype)
    np.testing.assert_array_equal(_core.gemm(a, b, bias=bias), np.tile(bias, (3, 1)))
    np.testing.assert_array_equal(_core.gemm(a, b, bias=bias, relu=True),
                                  np.tile(np.maximum(bias, 0), (3, 1)))
    out = np.ones((3, 5), dtype)
    _core.gemm(a, b, bias=bias, out=out, accumulate=True)
    np.testing.assert_array_equal(out, 1 + np.tile(bias, (3, 1)))
    out = np.full((3, 5), 7, dtype)
    _core.gemm(a, b, out=out)
    np.testing.assert_array_equal(out, np.zeros((3, 5)))


@pytest.mark.parametrize("shape", [(0, 5, 3), (4, 0, 3), (0, 0, 0), (0, 5, 0)], ids=shape_id)
@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
def test_gemm_empty_output(isa_threads, dtype, shape, trans):
    M, N, K = shape
    a = np.zeros((K, M) if trans[0] else (M, K), dtype)
    b = np.zeros((N, K) if trans[1] else (K, N), dtype)
    c = ops.matmul(a, b, *trans)
    assert c.shape == (M, N) and c.dtype == dtype
    assert _core.gemm(a, b, *trans, bias=np.ones(N, dtype), relu=True).shape == (M, N)


@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("shape", [(517, 333, 1025), (300, 250, 40), (700, 20, 100),
                                   (1000, 300, 70), (2000, 10, 200), (999, 16, 150)],
                         ids=shape_id)
def test_gemm_thread_count_does_not_change_result(isa, dtype, shape, trans, rng):
    M, N, K = shape
    a, b = operands(rng, M, N, K, *trans, dtype)
    bias = rng.uniform(-1, 1, N).astype(dtype)
    results = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        results.append(_core.gemm(a, b, *trans, bias=bias, relu=True))
    # By design the split is over whole output panels, so each element is computed the same
    # way whatever the thread count: agreement to the last bit is expected, at most rounding.
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(results[0], results[1], rtol=4 * eps, atol=4 * eps)


@pytest.mark.slow
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_gemm_2048_cubed(dtype_name):
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng(2048)
    n = 2048
    a = rng.uniform(-1, 1, (n, n)).astype(dtype)
    b = rng.uniform(-1, 1, (n, n)).astype(dtype)
    dlfast.set_num_threads(2)
    c = ops.matmul(a, b, trans_b=dtype == np.float64)
    want = a.astype(np.float64) @ (b.T if dtype == np.float64 else b).astype(np.float64)
    np.testing.assert_allclose(c, want, rtol=0, atol=atol_for(dtype, n))


def test_matmul_strided_views_give_the_right_answer(dtype, rng):
    base_a = rng.uniform(-1, 1, (40, 66)).astype(dtype)
    base_b = rng.uniform(-1, 1, (33, 50)).astype(dtype)
    a, b = base_a[:, ::2], base_b[:, 5:45]           # (40, 33) strided, (33, 40) offset rows
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    want = np.ascontiguousarray(a) @ np.ascontiguousarray(b)
    np.testing.assert_allclose(ops.matmul(a, b), ops.matmul(np.ascontiguousarray(a),
                                                            np.ascontiguousarray(b)),
                               rtol=0, atol=0)
    np.testing.assert_allclose(ops.matmul(a, b), want.astype(np.float64), rtol=0,
                               atol=atol_for(dtype, 33))
    # a transposed view (Fortran order) is read as the matrix it shows
    np.testing.assert_allclose(ops.matmul(b.T, a.T), want.T, rtol=0, atol=atol_for(dtype, 33))


def test_matmul_backward_matches_float64(dtype, rng):
    a = rng.uniform(-1, 1, (9, 21)).astype(dtype)
    b = rng.uniform(-1, 1, (21, 13)).astype(dtype)
    dy = rng.uniform(-1, 1, (9, 13)).astype(dtype)
    da, db = ops.matmul_backward(dy, a, b)
    d64, a64, b64 = dy.astype(np.float64), a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(da, d64 @ b64.T, rtol=0, atol=atol_for(dtype, 13))
    np.testing.assert_allclose(db, a64.T @ d64, rtol=0, atol=atol_for(dtype, 9))


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(M=st.integers(0, 80), N=st.integers(0, 80), K=st.integers(0, 600),
       trans_a=st.booleans(), trans_b=st.booleans(), f64=st.booleans(),
       with_bias=st.booleans(), relu=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gemm_property_random_shapes(M, N, K, trans_a, trans_b, f64, with_bias, relu, seed):
    dtype = np.dtype(np.float64 if f64 else np.float32)
    rng = np.random.default_rng(seed)
    a, b = operands(rng, M, N, K, trans_a, trans_b, dtype)
    bias = rng.uniform(-1, 1, N).astype(dtype) if with_bias else None
    want = ref_product(a, b, trans_a, trans_b, bias, relu)
    old = _core.cpu_capability()
    try:
        for isa in ISAS:
            assert _core.set_cpu_capability(isa)
            got = _core.gemm(a, b, trans_a, trans_b, bias=bias, relu=relu)
            assert got.shape == (M, N)
            np.testing.assert_allclose(got, want, rtol=0, atol=atol_for(dtype, K, 2.0),
                                       err_msg=f"isa={isa}")
    finally:
        _core.set_cpu_capability(old)
