"""2-D max and average pooling (NHWC) forward and backward against float64 NumPy references,
every ISA path and 1 / 2 threads; TensorFlow's 'valid'/'same' arithmetic (max pads with -inf,
average excludes the padding from the count); first-maximum routing of ties; finite
differences; global average pooling; bad input."""

import math

import numpy as np
import pytest

import dlfast
from dlfast import _core, ops
import reference as ref

# (N, H, W, C), pool, strides, padding
CASES = [
    ((1, 4, 4, 1), (2, 2), (2, 2), "valid"),
    ((2, 5, 7, 3), (2, 2), (2, 2), "valid"),      # odd sizes, last row/column dropped
    ((3, 7, 6, 17), (3, 3), (1, 1), "same"),      # overlapping windows
    ((2, 6, 6, 3), (3, 3), (2, 2), "same"),       # even input, stride 2
    ((2, 7, 5, 3), (3, 3), (2, 2), "same"),       # odd input, stride 2
    ((1, 5, 5, 17), (2, 3), (1, 2), "valid"),     # rectangular pool and strides
    ((2, 9, 8, 3), (3, 2), (3, 1), "same"),
    ((1, 2, 1, 3), (3, 3), (2, 2), "same"),       # input smaller than the pool
    ((2, 8, 8, 17), (2, 2), (3, 3), "valid"),     # stride larger than the pool (gaps)
    ((2, 8, 7, 1), (2, 2), (3, 3), "same"),
    ((1, 1, 1, 1), (1, 1), (1, 1), "valid"),
    ((2, 6, 5, 1), (2, 3), (3, 2), "same"),
    ((1, 4, 5, 300), (2, 2), (1, 1), "same"),     # more channels than one kernel block (256)
    ((3, 10, 9, 3), (3, 3), (3, 3), "valid"),     # pool == stride, odd
    # windows tiling the input exactly (max backward's register path), channels = whole
    # vectors plus a scalar tail, square and rectangular windows
    ((2, 6, 9, 19), (2, 3), (2, 3), "valid"),
    ((3, 9, 9, 8), (3, 3), (3, 3), "same"),
]


def case_id(case):
    shape, pool, strides, padding = case
    return (f"{'x'.join(map(str, shape))}-p{pool[0]}{pool[1]}-s{strides[0]}{strides[1]}-"
            f"{padding}")


def geometry(n, k, s, padding):
    """(output length, padding before, padding after) along one axis, TensorFlow's way."""
    if padding == "valid":
        return (n - k) // s + 1, 0, 0
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def padded(x, pool, strides, padding, value):
    """x (float64) padded with `value`, and the output size and window steps."""
    (P, pt, pb), (Q, pl, pr) = (geometry(x.shape[1], pool[0], strides[0], padding),
                                geometry(x.shape[2], pool[1], strides[1], padding))
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)),
                constant_values=value)
    return xp, P, Q, (pt, pl)


def ref_max_forward(x, pool, strides, padding):
    xp, P, Q, _ = padded(x, pool, strides, padding, -np.inf)
    R, S = pool
    y = np.empty((x.shape[0], P, Q, x.shape[3]))
    for p in range(P):
        for q in range(Q):
            h, w = p * strides[0], q * strides[1]
            y[:, p, q, :] = xp[:, h:h + R, w:w + S, :].max(axis=(1, 2))
    return y


def ref_max_backward(dy, x, pool, strides, padding):
    """Each dy to the first maximum (in (r, s) scan order) of its -inf-padded window."""
    xp, P, Q, (pt, pl) = padded(x, pool, strides, padding, -np.inf)
    N, C = x.shape[0], x.shape[3]
    R, S = pool
    dxp = np.zeros_like(xp)
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for p in range(P):
        for q in range(Q):
            h, w = p * strides[0], q * strides[1]
            first = xp[:, h:h + R, w:w + S, :].reshape(N, R * S, C).argmax(axis=1)  # (N, C)
            r, s = np.divmod(first, S)
            np.add.at(dxp, (n_idx, h + r, w + s, c_idx), np.asarray(dy, np.float64)[:, p, q, :])
    return dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2], :]


def ref_avg_forward(x, pool, strides, padding):
    xp, P, Q, _ = padded(x, pool, strides, padding, 0.0)
    ones, _, _, _ = padded(np.ones((1,) + x.shape[1:3] + (1,)), pool, strides, padding, 0.0)
    R, S = pool
    y = np.empty((x.shape[0], P, Q, x.shape[3]))
    for p in range(P):
        for q in range(Q):
            h, w = p * strides[0], q * strides[1]
            count = ones[0, h:h + R, w:w + S, 0].sum()
            y[:, p, q, :] = xp[:, h:h + R, w:w + S, :].sum(axis=(1, 2)) / count
    return y


def ref_avg_backward(dy, x_shape, pool, strides, padding):
    ones, P, Q, (pt, pl) = padded(np.ones((1,) + tuple(x_shape[1:3]) + (1,)), pool, strides,
                                  padding, 0.0)
    R, S = pool
    dxp = np.zeros((x_shape[0],) + ones.shape[1:3] + (x_shape[3],))
    for p in range(P):
        for q in range(Q):
            h, w = p * strides[0], q * strides[1]
            cell = ones[0, h:h + R, w:w + S, 0][None, :, :, None]  # 1 inside the input
            dxp[:, h:h + R, w:w + S, :] += (cell * np.asarray(dy, np.float64)[:, p, q, None, None, :]
                                            / cell.sum())
    return dxp[:, pt:pt + x_shape[1], pl:pl + x_shape[2], :]


def tol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-13


# --- forward and backward against the references ------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_maxpool_forward_backward(isa_threads, dtype, case, rng):
    shape, pool, strides, padding = case
    x = rng.standard_normal(shape).astype(dtype)
    y = ops.maxpool2d_forward(x, pool, strides, padding)
    want = ref_max_forward(x, pool, strides, padding)
    assert y.shape == want.shape and y.dtype == dtype
    np.testing.assert_array_equal(y, want.astype(dtype))  # a max is exact
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.maxpool2d_backward(dy, x, pool, strides, padding)
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_allclose(dx, ref_max_backward(dy, x, pool, strides, padding), rtol=0,
                               atol=4 * tol(dtype) * max(1, pool[0] * pool[1]))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_avgpool_forward_backward(isa_threads, dtype, case, rng):
    shape, pool, strides, padding = case
    x = rng.standard_normal(shape).astype(dtype)
    y = ops.avgpool2d_forward(x, pool, strides, padding)
    want = ref_avg_forward(x, pool, strides, padding)
    assert y.shape == want.shape and y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=0, atol=4 * tol(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.avgpool2d_backward(dy, x, pool, strides, padding)
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_allclose(dx, ref_avg_backward(dy, shape, pool, strides, padding), rtol=0,
                               atol=8 * tol(dtype))


@pytest.mark.parametrize("pool, strides", [((3, 3), (1, 1)), ((2, 2), (2, 2))],
                         ids=["overlapping", "disjoint"])
def test_large_enough_for_two_threads_and_independent_of_thread_count(isa, pool, strides, rng):
    """Big enough that two threads run (split by image when windows overlap along h, by
    output row otherwise); bit-identical to one thread."""
    x = rng.standard_normal((4, 32, 32, 64) if pool == (3, 3) else (8, 64, 64, 64))
    x = x.astype(np.float32)
    y = ops.maxpool2d_forward(x, pool, strides, "same")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    results = {}
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        results[threads] = (ops.maxpool2d_forward(x, pool, strides, "same"),
                            ops.maxpool2d_backward(dy, x, pool, strides, "same"),
                            ops.avgpool2d_forward(x, pool, strides, "same"),
                            ops.avgpool2d_backward(dy, x, pool, strides, "same"))
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(results[2][0], ref_max_forward(x, pool, strides, "same"))
    np.testing.assert_allclose(results[2][1], ref_max_backward(dy, x, pool, strides, "same"),
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(results[2][2], ref_avg_forward(x, pool, strides, "same"),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(results[2][3], ref_avg_backward(dy, x.shape, pool, strides,
                                                               "same"), rtol=0, atol=1e-6)


# --- ties, padding, finite differences -----------------------------------------------------

@pytest.mark.parametrize("strides", [(2, 2), (1, 1)])
def test_maxpool_ties_go_to_the_first_cell(isa_threads, dtype, strides):
    x = np.full((2, 4, 4, 3), 0.5, dtype)
    dy = np.arange(1, 1 + 2 * 3 * 3 * 3 if strides == (1, 1) else 1 + 2 * 2 * 2 * 3,
                   dtype=dtype)
    y_shape = (2, 3, 3, 3) if strides == (1, 1) else (2, 2, 2, 3)
    dy = dy.reshape(y_shape)
    dx = ops.maxpool2d_backward(dy, x, (2, 2), strides, "valid")
    want = np.zeros(x.shape)
    for p in range(y_shape[1]):
        for q in range(y_shape[2]):  # the window's top-left cell takes all of dy
            want[:, p * strides[0], q * strides[1], :] += dy[:, p, q, :]
    np.testing.assert_array_equal(dx, want)
    np.testing.assert_array_equal(dx, ref_max_backward(dy, x, (2, 2), strides, "valid"))


def test_maxpool_same_pads_with_minus_infinity(isa_threads, dtype):
    x = -np.arange(1, 1 + 3 * 3, dtype=dtype).reshape(1, 3, 3, 1) * 100  # all negative
    y = ops.maxpool2d_forward(x, 2, 2, "same")  # 3 -> 2: padding 1, all after
    np.testing.assert_array_equal(y[0, :, :, 0], [[-100, -300], [-700, -900]])
    y = ops.maxpool2d_forward(x, 3, 1, "same")  # padding 1 before and after
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, ref_max_forward(x, (3, 3), (1, 1), "same").astype(dtype))


def test_avgpool_same_excludes_padding_from_the_count(isa_threads, dtype):
    x = np.ones((1, 3, 3, 2), dtype)
    np.testing.assert_allclose(ops.avgpool2d_forward(x, 3, 1, "same"), 1.0, rtol=0,
                               atol=tol(dtype))
    dx = ops.avgpool2d_backward(np.ones((1, 3, 3, 2), dtype), x, 3, 1, "same")
    # windows hold 2, 3, 2 rows (and columns): a cell gets the sum of 1/count over its windows
    per_axis = np.array([1 / 2 + 1 / 3, 1 / 2 + 1 / 3 + 1 / 2, 1 / 3 + 1 / 2])
    for c in range(2):
        np.testing.assert_allclose(dx[0, :, :, c], np.outer(per_axis, per_axis), rtol=0,
                                   atol=4 * tol(dtype))


@pytest.mark.parametrize("case", [((2, 5, 4, 2), (2, 2), (1, 1), "same"),
                                  ((1, 5, 5, 3), (3, 2), (2, 3), "valid"),
                                  ((1, 3, 4, 2), (3, 3), (2, 2), "same")], ids=case_id)
def test_avgpool_backward_finite_differences(isa, case, rng):
    shape, pool, strides, padding = case
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(ops.avgpool2d_forward(x, pool, strides, padding).shape)
    f = lambda: float(np.sum(ops.avgpool2d_forward(x, pool, strides, padding) * dy))
    (num,) = ref.central_diff(f, [x])
    np.testing.assert_allclose(ops.avgpool2d_backward(dy, x, pool, strides, padding), num,
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", [((2, 5, 4, 2), (2, 2), (1, 1), "same"),
                                  ((1, 6, 5, 3), (3, 2), (2, 3), "valid")], ids=case_id)
def test_maxpool_backward_finite_differences(isa, case, rng):
    shape, pool, strides, padding = case
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.1
    dy = rng.standard_normal(ops.maxpool2d_forward(x, pool, strides, padding).shape)
    f = lambda: float(np.sum(ops.maxpool2d_forward(x, pool, strides, padding) * dy))
    (num,) = ref.central_diff(f, [x])  # distinct values 0.1 apart: eps 1e-6 keeps the argmax
    np.testing.assert_allclose(ops.maxpool2d_backward(dy, x, pool, strides, padding), num,
                               rtol=1e-6, atol=1e-7)


# --- global average pooling ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 5, 7, 3), (3, 4, 4, 17)],
                         ids=lambda s: "x".join(map(str, s)))
def test_global_avgpool(isa_threads, dtype, shape, rng):
    x = rng.standard_normal(shape).astype(dtype)
    y = ops.global_avgpool2d_forward(x)
    assert y.shape == (shape[0], shape[3]) and y.dtype == dtype
    np.testing.assert_allclose(y, np.asarray(x, np.float64).mean(axis=(1, 2)), rtol=0,
                               atol=4 * tol(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.global_avgpool2d_backward(dy, x)
    assert dx.shape == x.shape and dx.dtype == dtype
    want = np.broadcast_to(np.asarray(dy, np.float64)[:, None, None, :] / (shape[1] * shape[2]),
                           shape)
    np.testing.assert_allclose(dx, want, rtol=0, atol=tol(dtype))


# --- bad input -------------------------------------------------------------------------------

X = np.ones((2, 4, 4, 3), np.float32)


@pytest.mark.parametrize("op", ["maxpool2d_forward", "avgpool2d_forward"])
def test_pool_larger_than_valid_input(op):
    with pytest.raises(ValueError, match=r"pool window height 5 is larger than the input "
                                         r"height 4 with padding 'valid'"):
        getattr(_core, op)(X, (5, 2), (1, 1), "valid")
    with pytest.raises(ValueError, match=r"pool window width 6 is larger than the input width 4"):
        getattr(_core, op)(X, (2, 6), (1, 1), "valid")
    assert getattr(_core, op)(X, (5, 6), (1, 1), "same").shape == (2, 4, 4, 3)


@pytest.mark.parametrize("arg, value", [("pool", (0, 2)), ("pool", (2, -1)),
                                        ("strides", (0, 1)), ("strides", (1, -2))])
def test_nonpositive_pool_or_strides(arg, value):
    kw = {"pool": (2, 2), "strides": (2, 2), arg: value}
    with pytest.raises(ValueError, match=rf"argument '{arg}' must be a pair of positive ints.*"
                                         rf"got \({value[0]}, {value[1]}\)"):
        _core.maxpool2d_forward(X, kw["pool"], kw["strides"], "valid")
    with pytest.raises(ValueError, match=rf"argument '{arg}' must be a pair of positive ints"):
        _core.avgpool2d_backward(np.ones((2, 2, 2, 3), np.float32), (2, 4, 4, 3), kw["pool"],
                                 kw["strides"], "valid")
    # the ops layer says so too (pool_size / strides, Keras's names)
    with pytest.raises(ValueError, match=r"must be positive"):
        ops.maxpool2d_forward(X, **{"pool_size" if arg == "pool" else arg: value})


def test_pool_and_strides_must_be_int_pairs():
    with pytest.raises(ValueError, match=r"argument 'pool' must be a pair of ints.*got 3 values"):
        _core.maxpool2d_forward(X, (2, 2, 2), (1, 1), "valid")
    with pytest.raises(TypeError, match=r"argument 'strides' must be a pair of ints.*got int"):
        _core.maxpool2d_forward(X, (2, 2), 1, "valid")
    with pytest.raises(TypeError, match=r"argument 'pool' must be a pair of ints"):
        _core.avgpool2d_forward(X, (2.0, 2), (1, 1), "valid")


@pytest.mark.parametrize("padding", ["full", "causal", "", "SAME "])
def test_unknown_padding(padding):
    with pytest.raises(ValueError, match=rf"argument 'padding' must be 'valid' or 'same', "
                                         rf"got '{padding}'"):
        _core.maxpool2d_forward(X, (2, 2), (2, 2), padding)
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same'"):
        ops.avgpool2d_forward(X, 2, None, padding)
    with pytest.raises(TypeError, match=r"argument 'padding' must be 'valid' or 'same', got int"):
        _core.avgpool2d_forward(X, (2, 2), (2, 2), 0)


@pytest.mark.parametrize("shape", [(4, 4, 3), (2, 4, 4, 3, 1), (16,)])
def test_wrong_rank(shape):
    x = np.ones(shape, np.float32)
    for op in ("maxpool2d_forward", "avgpool2d_forward"):
        with pytest.raises(ValueError, match=r"argument 'x' must be 4-D, got shape"):
            getattr(_core, op)(x, (2, 2), (2, 2), "valid")
    with pytest.raises(ValueError, match=r"argument 'dy' must be 4-D, got shape"):
        _core.maxpool2d_backward(x, X, (2, 2), (2, 2), "valid")
    with pytest.raises(ValueError, match=r"argument 'x' must be 4-D"):
        _core.maxpool2d_backward(np.ones((2, 2, 2, 3), np.float32), x, (2, 2), (2, 2), "valid")


def test_wrong_dy_shape():
    for dy_shape in [(2, 2, 2, 4), (1, 2, 2, 3), (2, 3, 2, 3)]:
        dy = np.ones(dy_shape, np.float32)
        with pytest.raises(ValueError, match=r"'dy' must have the pooling output's shape "
                                             r"\(2, 2, 2, 3\) \(N, P, Q, C\), got"):
            _core.maxpool2d_backward(dy, X, (2, 2), (2, 2), "valid")
        with pytest.raises(ValueError, match=r"'dy' must have the pooling output's shape "
                                             r"\(2, 2, 2, 3\)"):
            _core.avgpool2d_backward(dy, (2, 4, 4, 3), (2, 2), (2, 2), "valid")


@pytest.mark.parametrize("shape", [(2, 4, 4), (2, 4, -1, 3), [2, 4, 4, 3.0]])
def test_bad_input_shape(shape):
    dy = np.ones((2, 2, 2, 3), np.float32)
    with pytest.raises((ValueError, TypeError), match=r"argument 'input_shape' must be a tuple "
                                                      r"of 4 non-negative ints"):
        _core.avgpool2d_backward(dy, shape, (2, 2), (2, 2), "valid")


def test_empty_input_shape_is_checked_like_the_forward():
    # A size of 0 is a shape the forward takes (issue 18), so it is no longer refused as a
    # shape; a 2x2 'valid' window still does not fit 0 rows.
    dy = np.ones((2, 2, 2, 3), np.float32)
    with pytest.raises(ValueError, match="avgpool2d_backward"):
        _core.avgpool2d_backward(dy, (2, 0, 4, 3), (2, 2), (2, 2), "valid")


def test_wrong_dtype():
    for bad in (X.astype(np.int64), X.astype(np.float16), X.astype(bool)):
        with pytest.raises(TypeError, match=r"argument 'x' must be a float32 or float64 numpy "
                                            r"array, got"):
            _core.maxpool2d_forward(bad, (2, 2), (2, 2), "valid")
    dy = np.ones((2, 2, 2, 3), np.float64)
    with pytest.raises(TypeError, match=r"argument 'x' must be a float64 numpy array"):
        _core.maxpool2d_backward(dy, X, (2, 2), (2, 2), "valid")  # mixed float dtypes
    with pytest.raises(TypeError, match=r"argument 'dy' must be a float32 or float64"):
        _core.avgpool2d_backward(dy.astype(np.int32), (2, 4, 4, 3), (2, 2), (2, 2), "valid")


# --- NaN (issue 18): a NaN is its window's maximum and takes the gradient ----------------

@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_max_pool_propagates_nan_and_inf(isa_threads, dtype, case, rng):
    # NumPy's max and argmax: a window holding NaN gives NaN, and its first NaN (scan order)
    # gets dy; +-Inf compare as numbers. The float64 references say the same.
    shape, pool, strides, padding = case
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < 0.25
    x[mask] = rng.choice([np.nan, np.inf, -np.inf], int(mask.sum()))
    x = x.astype(dtype)
    y = ops.maxpool2d_forward(x, pool, strides, padding)
    np.testing.assert_array_equal(y, ref_max_forward(x, pool, strides, padding).astype(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(ops.maxpool2d_backward(dy, x, pool, strides, padding),
                               ref_max_backward(dy, x, pool, strides, padding), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((2, 4, 4, 3), np.complex64),
                                 np.zeros((2, 4, 4, 3), object), None, "x"])
def test_avgpool_backward_checks_x_like_any_argument(bad):
    # Issue 18: only x's shape is read, so an object or complex x went through.
    dy = np.ones((2, 2, 2, 3), np.float32)
    with pytest.raises(TypeError, match="argument 'x'"):
        ops.avgpool2d_backward(dy, bad)
    with pytest.raises(TypeError, match="argument 'x'"):
        ops.global_avgpool2d_backward(np.ones((2, 3), np.float32), bad)
