"""Embedding kernels (_core.embedding_forward / embedding_backward, issue 15): the lookup is
NumPy's fancy indexing W[ids], its weight gradient np.add.at's scatter-add by id (no dense
one-hot), deterministic for any thread count; ids out of range or negative are a ValueError
raised before any kernel runs. Every ISA path, 1 and 2 threads, and the C++ reference."""

import numpy as np
import pytest

import dlfast
from dlfast import _core

CASES = [((1,), 1, 1), ((5,), 3, 4), ((2, 7), 11, 16), ((3, 4), 50, 33), ((8, 9), 5, 70),
         ((64, 32), 1000, 64), ((), 4, 3)]


def make(rng, ids_shape, vocab, dim, dtype):
    ids = rng.integers(0, vocab, size=ids_shape)
    W = rng.standard_normal((vocab, dim)).astype(dtype)
    dy = rng.standard_normal(ids_shape + (dim,)).astype(dtype)
    return ids, W, dy


def np_backward(dy, ids, vocab):
    dW = np.zeros((vocab, dy.shape[-1]))
    np.add.at(dW, np.asarray(ids).reshape(-1), np.asarray(dy, np.float64).reshape(-1, dy.shape[-1]))
    return dW


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_embedding_matches_numpy(isa_threads, dtype, case):
    rng = np.random.default_rng(sum(case[0]) + case[1] + case[2])
    ids, W, dy = make(rng, *case, dtype)
    y = _core.embedding_forward(ids, W)
    assert y.dtype == dtype and y.shape == ids.shape + (W.shape[1],)
    np.testing.assert_array_equal(y, W[ids])
    dW0 = rng.standard_normal(W.shape).astype(dtype)
    dW = dW0.copy()
    assert _core.embedding_backward(dy, ids, dW, True) is None
    np.testing.assert_allclose(dW, dW0 + np_backward(dy, ids, case[1]), **tol(dtype))
    dW = dW0.copy()
    _core.embedding_backward(dy, ids, dW, False)
    np.testing.assert_allclose(dW, np_backward(dy, ids, case[1]), **tol(dtype))


def test_repeated_ids_add_up_and_unused_rows_are_untouched_or_zeroed():
    ids = np.array([[2, 2, 0], [2, 1, 2]])
    W = np.arange(20.0).reshape(5, 4)
    dy = np.ones((2, 3, 4))
    dW = np.full((5, 4), 10.0)
    _core.embedding_backward(dy, ids, dW)
    np.testing.assert_array_equal(dW[:, 0], [11, 11, 14, 10, 10])
    _core.embedding_backward(dy, ids, dW, False)
    np.testing.assert_array_equal(dW[:, 0], [1, 1, 4, 0, 0])


@pytest.mark.parametrize("ids_dtype", ["int8", "uint8", "int32", "uint32", "int64"])
def test_any_integer_dtype_is_accepted(ids_dtype):
    W = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    ids = np.array([[0, 6], [3, 3]], dtype=ids_dtype)
    np.testing.assert_array_equal(_core.embedding_forward(ids, W), W[ids.astype(np.int64)])
    np.testing.assert_array_equal(_core.embedding_forward(ids[:, ::-1], W),  # a strided view
                                  W[ids[:, ::-1].astype(np.int64)])


@pytest.mark.parametrize("case", [((3, 4), 50, 33), ((8, 9), 5, 70), ((2, 7), 11, 16)], ids=str)
def test_fast_embedding_matches_ref(isa_threads, dtype, case):
    rng = np.random.default_rng(3)
    ids, W, dy = make(rng, *case, dtype)
    np.testing.assert_array_equal(_core.embedding_forward(ids, W),
                                  _core.ref.embedding_forward(ids, W))
    dW0 = rng.standard_normal(W.shape).astype(dtype)
    for accumulate in (True, False):
        got, want = dW0.copy(), dW0.copy()
        _core.embedding_backward(dy, ids, got, accumulate)
        _core.ref.embedding_backward(dy, ids, want, accumulate)
        np.testing.assert_allclose(got, want, **tol(dtype))


def test_embedding_backward_is_deterministic_across_threads():
    rng = np.random.default_rng(9)
    ids, W, dy = make(rng, (256, 64), 50, 256, np.float32)  # many repeats of each id
    results = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        dW = np.zeros_like(W)
        _core.embedding_backward(dy, ids, dW, False)
        results.append(dW)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("mod", [_core, _core.ref], ids=["fast", "ref"])
def test_bad_ids_are_a_clear_error_before_any_kernel_runs(mod):
    W = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"embedding_forward: 'ids' must be in \[0, input_dim\) "
                                         r"= \[0, 4\), got 4 at flat index 2"):
        mod.embedding_forward(np.array([[0, 1], [4, 0]]), W)
    with pytest.raises(ValueError, match=r"got -1 at flat index 0"):
        mod.embedding_forward(np.array([-1, 0]), W)
    dW = np.full((4, 3), 5.0, np.float32)
    with pytest.raises(ValueError, match=r"embedding_backward: 'ids' must be in .* got -3"):
        mod.embedding_backward(np.ones((2, 3), np.float32), np.array([1, -3]), dW, False)
    np.testing.assert_array_equal(dW, 5.0)  # nothing was written
    with pytest.raises(TypeError, match="'ids' must be an integer numpy array"):
        mod.embedding_forward(np.array([0.0, 1.0]), W)
    with pytest.raises(TypeError, match="'ids' must be an integer numpy array"):
        mod.embedding_forward([0, 1], W)
    with pytest.raises(TypeError, match="'embeddings' must be a float32 or float64"):
        mod.embedding_forward(np.array([0]), np.ones((4, 3), np.int32))
    with pytest.raises(ValueError, match="'embeddings' must be 2-D"):
        mod.embedding_forward(np.array([0]), np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"'dy' must have shape ids.shape \+ \(output_dim,\) = "
                                         r"\(2, 3\), got \(2, 4\)"):
        mod.embedding_backward(np.ones((2, 4), np.float32), np.array([1, 2]), dW)
    with pytest.raises(TypeError, match="'dembeddings' must be a float32"):
        mod.embedding_backward(np.ones((2, 3), np.float32), np.array([1, 2]), np.ones((4, 3)))


def test_empty_ids():
    W = np.ones((4, 3))
    y = _core.embedding_forward(np.zeros((0, 5), np.int64), W)
    assert y.shape == (0, 5, 3)
    dW = np.full((4, 3), 2.0)
    _core.embedding_backward(np.zeros((0, 5, 3)), np.zeros((0, 5), np.int64), dW, False)
    np.testing.assert_array_equal(dW, 0.0)


def test_ops_wrappers():
    from dlfast import ops
    rng = np.random.default_rng(12)
    ids, W, dy = make(rng, (3, 5), 9, 4, np.float32)
    np.testing.assert_array_equal(ops.embedding_forward(ids.tolist(), W), W[ids])
    np.testing.assert_allclose(ops.embedding_backward(dy, ids, 9), np_backward(dy, ids, 9),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"got 9 at flat index"):
        ops.embedding_forward(np.array([9]), W)
