"""Upsampling (nearest) and zero-padding kernels, forward and backward, against float64 NumPy
(np.repeat, block sums, np.pad, slicing) on every ISA path and 1 / 2 threads: odd sizes,
batch 1, one channel, sizes big enough for two threads (the same bits as one thread), and
bad arguments raising TypeError/ValueError that name what was expected."""

import numpy as np
import pytest

import dlfast
from dlfast import _core, ops

# (N, H, W, C), (size_h, size_w)
UP_CASES = [
    ((1, 1, 1, 1), (1, 1)),
    ((1, 3, 5, 1), (2, 2)),
    ((2, 4, 3, 7), (3, 1)),
    ((3, 5, 7, 3), (2, 3)),
    ((1, 2, 9, 17), (4, 2)),
    ((4, 7, 5, 33), (2, 2)),
    ((2, 64, 48, 16), (2, 2)),  # 393k outputs... and
    ((2, 64, 64, 32), (2, 2)),  # 1M: a second thread
]
# (N, H, W, C), ((top, bottom), (left, right))
PAD_CASES = [
    ((1, 1, 1, 1), ((1, 1), (1, 1))),
    ((1, 3, 5, 1), ((0, 0), (0, 0))),
    ((2, 4, 3, 7), ((2, 0), (0, 3))),
    ((3, 5, 7, 3), ((1, 2), (3, 1))),
    ((1, 2, 9, 17), ((0, 5), (4, 0))),
    ((2, 128, 128, 16), ((1, 1), (2, 2))),  # 1.1M outputs: a second thread
]


def case_id(case):
    shape, arg = case
    return "x".join(map(str, shape)) + "-" + str(arg).replace(" ", "")


def upsample_ref(x, size):
    return np.repeat(np.repeat(x.astype(np.float64), size[0], axis=1), size[1], axis=2)


def upsample_grad_ref(dy, size):
    n, hp, wp, c = dy.shape
    blocks = dy.astype(np.float64).reshape(n, hp // size[0], size[0], wp // size[1], size[1], c)
    return blocks.sum(axis=(2, 4))


def pad_ref(x, padding):
    return np.pad(x.astype(np.float64), ((0, 0),) + tuple(padding) + ((0, 0),))


def tol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-14


@pytest.mark.parametrize("case", UP_CASES, ids=case_id)
def test_upsampling2d_matches_numpy(isa_threads, dtype, case, rng):
    shape, size = case
    x = rng.standard_normal(shape).astype(dtype)
    y = ops.upsampling2d_forward(x, size)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert y.shape == (shape[0], shape[1] * size[0], shape[2] * size[1], shape[3])
    np.testing.assert_array_equal(y, upsample_ref(x, size))  # a copy: exact
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.upsampling2d_backward(dy, size)
    assert dx.shape == shape and dx.dtype == dtype
    np.testing.assert_allclose(dx, upsample_grad_ref(dy, size), rtol=4 * tol(dtype),
                               atol=4 * tol(dtype))


@pytest.mark.parametrize("case", PAD_CASES, ids=case_id)
def test_zeropadding2d_matches_numpy(isa_threads, dtype, case, rng):
    shape, padding = case
    x = rng.standard_normal(shape).astype(dtype)
    y = ops.zeropadding2d_forward(x, padding)
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_array_equal(y, pad_ref(x, padding))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.zeropadding2d_backward(dy, padding)
    (top, bottom), (left, right) = padding
    want = dy[:, top:dy.shape[1] - bottom, left:dy.shape[2] - right, :]
    assert dx.shape == shape
    np.testing.assert_array_equal(dx, want)


def test_the_result_does_not_depend_on_the_thread_count(rng):
    """Two threads split the rows: the same bits as one (each dx sum has a fixed order)."""
    x = rng.standard_normal((2, 64, 64, 32)).astype(np.float32)
    dy = rng.standard_normal((2, 128, 192, 32)).astype(np.float32)
    out = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        out.append((ops.upsampling2d_forward(x, (2, 3)), ops.upsampling2d_backward(dy, (2, 3)),
                    ops.zeropadding2d_forward(x, 3), ops.zeropadding2d_backward(dy, 2)))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_int_and_pair_arguments_as_keras_reads_them(rng):
    x = rng.standard_normal((2, 3, 4, 2))
    np.testing.assert_array_equal(ops.upsampling2d_forward(x), upsample_ref(x, (2, 2)))
    np.testing.assert_array_equal(ops.upsampling2d_forward(x, 3), upsample_ref(x, (3, 3)))
    np.testing.assert_array_equal(ops.zeropadding2d_forward(x), pad_ref(x, ((1, 1), (1, 1))))
    np.testing.assert_array_equal(ops.zeropadding2d_forward(x, (2, 0)),
                                  pad_ref(x, ((2, 2), (0, 0))))
    np.testing.assert_array_equal(ops.zeropadding2d_forward(x, [[0, 1], [2, 3]]),
                                  pad_ref(x, ((0, 1), (2, 3))))
    assert ops.padding_pairs(np.int64(2), "f") == ((2, 2), (2, 2))


def test_strided_and_empty_inputs(dtype, rng):
    base = rng.standard_normal((3, 6, 8, 4)).astype(dtype)
    view = base[:, ::2, 1::2]
    np.testing.assert_array_equal(ops.upsampling2d_forward(view, 2), upsample_ref(view, (2, 2)))
    np.testing.assert_array_equal(ops.zeropadding2d_forward(view, 1), pad_ref(view, ((1, 1),) * 2))
    empty = np.zeros((0, 3, 4, 2), dtype)
    assert ops.upsampling2d_forward(empty, 2).shape == (0, 6, 8, 2)
    assert ops.upsampling2d_backward(np.zeros((0, 6, 8, 2), dtype), 2).shape == (0, 3, 4, 2)
    assert ops.zeropadding2d_forward(empty, 1).shape == (0, 5, 6, 2)
    # a padded empty image is all zeros; its interior is empty
    y = ops.zeropadding2d_forward(np.zeros((2, 0, 3, 1), dtype), ((1, 2), (0, 0)))
    assert y.shape == (2, 3, 3, 1) and not y.any()
    assert ops.zeropadding2d_backward(y, ((1, 2), (0, 0))).shape == (2, 0, 3, 1)


BAD = [
    (lambda: _core.upsampling2d_forward(np.zeros((2, 3, 4, 1), np.int32), (2, 2)), TypeError,
     r"upsampling2d_forward: argument 'x' must be a float32 or float64 numpy array, got int32"),
    (lambda: _core.upsampling2d_forward(np.zeros((3, 4, 1), np.float32), (2, 2)), ValueError,
     r"argument 'x' must be 4-D, got shape \(3, 4, 1\)"),
    (lambda: _core.upsampling2d_forward(np.zeros((2, 4, 4, 2), np.float32)[:, ::2], (2, 2)),
     ValueError, r"must be C-contiguous"),
    (lambda: _core.upsampling2d_forward(np.zeros((1, 2, 2, 1), np.float32), (0, 2)), ValueError,
     r"'size' must be a pair \(size_h, size_w\) of positive ints, got \(0, 2\)"),
    (lambda: _core.upsampling2d_forward(np.zeros((1, 2, 2, 1), np.float32), (2,)), ValueError,
     r"'size' must be a pair"),
    (lambda: _core.upsampling2d_forward(np.zeros((1, 2, 2, 1), np.float32), 2), TypeError,
     r"'size' must be a pair .* got int"),
    (lambda: _core.upsampling2d_forward(np.zeros((1, 2, 2, 1), np.float32), (True, 2)),
     TypeError, r"'size' must be a pair"),
    (lambda: _core.upsampling2d_forward(np.zeros((1, 2, 2, 1), np.float32), (2 ** 62, 4)),
     ValueError, r"more than 2\^63 elements"),
    (lambda: _core.upsampling2d_backward(np.zeros((1, 5, 4, 1), np.float32), (2, 2)), ValueError,
     r"'dy' .* height divisible by size_h = 2 and a width divisible by size_w = 2, got shape "
     r"\(1, 5, 4, 1\)"),
    (lambda: _core.upsampling2d_backward(np.zeros((1, 4, 4), np.float64), (2, 2)), ValueError,
     r"argument 'dy' must be 4-D"),
    (lambda: ops.upsampling2d_forward(np.zeros((1, 2, 2, 1)), -1), ValueError,
     r"upsampling2d_forward: size must be positive, got \(-1, -1\)"),
    (lambda: _core.zeropadding2d_forward(np.zeros((1, 2, 2, 1), np.float32), ((1, -1), (0, 0))),
     ValueError, r"'padding' must be \(\(top, bottom\), \(left, right\)\) of non-negative ints, "
     r"got \(1, -1\)"),
    (lambda: _core.zeropadding2d_forward(np.zeros((1, 2, 2, 1), np.float32), (1, 1)), TypeError,
     r"'padding' must be \(\(top, bottom\), \(left, right\)\)"),
    (lambda: _core.zeropadding2d_forward(np.zeros((1, 2, 2, 1), np.float32), ((1, 1),)),
     ValueError, r"'padding' must be"),
    (lambda: _core.zeropadding2d_forward(np.zeros((2, 2, 1), np.float32), ((1, 1), (1, 1))),
     ValueError, r"argument 'x' must be 4-D"),
    (lambda: _core.zeropadding2d_forward(np.zeros((1, 2, 2, 1), np.float32),
                                         ((2 ** 62, 2 ** 62), (0, 0))),
     ValueError, r"more than 2\^63 elements|does not fit in int64"),
    (lambda: _core.zeropadding2d_backward(np.zeros((1, 3, 4, 1), np.float32), ((2, 2), (0, 0))),
     ValueError, r"'dy' .* must be at least the padding 2 \+ 2 high and 0 \+ 0 wide, got shape "
     r"\(1, 3, 4, 1\)"),
    (lambda: _core.zeropadding2d_backward(np.zeros((1, 3, 4, 1), np.float32),
                                          ((1, 2 ** 63 - 1), (0, 0))),
     ValueError, r"must be at least the padding"),
    (lambda: _core.zeropadding2d_backward(np.zeros((1, 3, 4, 1), np.float32), ((0, 0), (3, 2))),
     ValueError, r"must be at least the padding 0 \+ 0 high and 3 \+ 2 wide"),
    (lambda: ops.zeropadding2d_forward(np.zeros((1, 2, 2, 1)), -1), ValueError,
     r"padding must be an int, a pair of ints \(height, width\) or a pair of pairs"),
    (lambda: ops.zeropadding2d_forward(np.zeros((1, 2, 2, 1)), (1, 2, 3)), ValueError,
     r"padding must be an int"),
    (lambda: ops.zeropadding2d_forward(np.zeros((1, 2, 2, 1)), ((1, 1), 2)), ValueError,
     r"padding must be an int"),
    (lambda: ops.zeropadding2d_forward(np.zeros((1, 2, 2, 1)), 1.5), ValueError,
     r"padding must be an int"),
    (lambda: ops.zeropadding2d_backward("dy", 1), TypeError, r"zeropadding2d_backward"),
]


@pytest.mark.parametrize("call,error,match", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
