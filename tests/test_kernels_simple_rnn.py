"""SimpleRNN kernels (_core.simple_rnn_forward / simple_rnn_backward, issue 15): Keras's
SimpleRNN with activation tanh, weights in Keras's layout (kernel (D, U), recurrent_kernel
(U, U), bias (U,)). The float64 NumPy reference is Keras 3's SimpleRNNCell.call written out
(h = x @ kernel + bias; output = tanh(h + prev_output @ recurrent_kernel)); backward against
central differences of it (odd T, batch 1, with and without h0) and against the naive C++
reference (_core.ref) on every ISA path and 1 and 2 threads."""

import numpy as np
import pytest

import dlfast
from dlfast import _core

from reference import central_diff


def keras_simple_rnn(x, kernel, recurrent_kernel, bias=None, h0=None):
    x, kernel, recurrent_kernel = (np.asarray(a, np.float64) for a in (x, kernel, recurrent_kernel))
    n, steps, _ = x.shape
    u = recurrent_kernel.shape[0]
    prev = np.zeros((n, u)) if h0 is None else np.asarray(h0, np.float64)
    out = []
    for t in range(steps):
        h = x[:, t] @ kernel
        if bias is not None:
            h = h + np.asarray(bias, np.float64)
        prev = np.tanh(h + prev @ recurrent_kernel)
        out.append(prev)
    return np.stack(out, 1)


def make(rng, n, steps, d, u, dtype, scale=0.8):
    x = rng.standard_normal((n, steps, d)).astype(dtype)
    W = (rng.standard_normal((d, u)) * scale / np.sqrt(d)).astype(dtype)
    R = (rng.standard_normal((u, u)) * scale / np.sqrt(u)).astype(dtype)
    b = (rng.standard_normal(u) * 0.3).astype(dtype)
    h0 = rng.standard_normal((n, u)).astype(dtype)
    return x, W, R, b, h0


def tol(dtype):
    return dict(rtol=1e-4, atol=3e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)


def call(mod, x, W, R, b, h0, dH, dhl, dw0=None, dr0=None, db0=None, accumulate=False):
    H = mod.simple_rnn_forward(x, W, R, b, h0)
    dw = np.zeros_like(W) if dw0 is None else dw0.copy()
    dr = np.zeros_like(R) if dr0 is None else dr0.copy()
    db = None if b is None else (np.zeros_like(b) if db0 is None else db0.copy())
    dx, dh0 = mod.simple_rnn_backward(dH, dhl, x, W, R, h0, H, dw, dr, db, True, True,
                                      accumulate)
    return H, dx, dw, dr, db, dh0


SHAPES = [(1, 1, 1, 1), (1, 5, 3, 4), (2, 1, 7, 16), (3, 7, 5, 7), (7, 3, 9, 17),
          (13, 6, 5, 33), (5, 3, 2, 70), (64, 8, 64, 128)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_simple_rnn_forward_is_keras(isa_threads, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x, W, R, b, h0 = make(rng, *shape, dtype)
    for bias, state in ((b, None), (b, h0), (None, h0)):
        H = _core.simple_rnn_forward(x, W, R, bias, state)
        want = keras_simple_rnn(x, W, R, bias, state)
        assert H.dtype == dtype and H.shape == want.shape
        np.testing.assert_allclose(H, want, **tol(dtype))


@pytest.mark.parametrize("with_h0", [False, True], ids=["zeros", "h0"])
@pytest.mark.parametrize("shape", [(1, 5, 3, 4), (2, 3, 2, 3), (1, 1, 2, 2)], ids=str)
def test_simple_rnn_backward_is_the_finite_difference_of_keras(isa_threads, shape, with_h0):
    rng = np.random.default_rng(40 + sum(shape))
    x, W, R, b, h0 = make(rng, *shape, np.float64)
    n, steps, _, u = shape
    P, q = rng.standard_normal((n, steps, u)), rng.standard_normal((n, u))
    state = h0 if with_h0 else None
    params = [x, W, R, b] + ([h0] if with_h0 else [])

    def loss():
        H = keras_simple_rnn(x, W, R, b, state)
        return (H * P).sum() + (H[:, -1] * q).sum()

    numeric = central_diff(loss, params)
    for mod in (_core, _core.ref):
        _, dx, dw, dr, db, dh0 = call(mod, x, W, R, b, state, P, q)
        got = [dx, dw, dr, db] + ([dh0] if with_h0 else [])
        for name, g, w in zip(("dx", "dkernel", "drecurrent", "dbias", "dh0"), got, numeric):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8, err_msg=f"{mod.__name__} {name}")


def test_simple_rnn_backward_from_one_source_only():
    rng = np.random.default_rng(8)
    x, W, R, b, h0 = make(rng, 2, 3, 3, 5, np.float64)
    q = rng.standard_normal((2, 5))
    numeric = central_diff(lambda: (keras_simple_rnn(x, W, R, b, h0)[:, -1] * q).sum(),
                           [x, W, R, b, h0])
    _, dx, dw, dr, db, dh0 = call(_core, x, W, R, b, h0, None, q)
    for g, w in zip((dx, dw, dr, db, dh0), numeric):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)
    P = rng.standard_normal((2, 3, 5))
    numeric = central_diff(lambda: (keras_simple_rnn(x, W, R) * P).sum(), [x, W, R])
    _, dx, dw, dr, db, _ = call(_core, x, W, R, None, None, P, None)
    assert db is None
    for g, w in zip((dx, dw, dr), numeric):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", SHAPES[:-1] + [(9, 11, 16, 40)], ids=str)
def test_fast_simple_rnn_matches_ref(isa_threads, dtype, shape):
    rng = np.random.default_rng(3 + sum(shape))
    x, W, R, b, h0 = make(rng, *shape, dtype)
    n, steps, _, u = shape
    dH = rng.standard_normal((n, steps, u)).astype(dtype)
    dhl = rng.standard_normal((n, u)).astype(dtype)
    grads0 = [rng.standard_normal(a.shape).astype(dtype) for a in (W, R, b)]
    names = ("H", "dx", "dkernel", "drecurrent", "dbias", "dh0")
    for state, accumulate in ((h0, True), (None, False)):
        got = call(_core, x, W, R, b, state, dH, dhl, *grads0, accumulate)
        want = call(_core.ref, x, W, R, b, state, dH, dhl, *grads0, accumulate)
        for name, g, w in zip(names, got, want):
            scale = max(1.0, np.abs(w).max())
            np.testing.assert_allclose(g / scale, w / scale, **tol(dtype),
                                       err_msg=f"{name} h0={state is not None} acc={accumulate}")


def test_simple_rnn_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    x, W, R, b, h0 = make(rng, 64, 10, 64, 128, np.float32)
    dH = rng.standard_normal((64, 10, 128)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        runs.append(call(_core, x, W, R, b, h0, dH, None))
    for a, b_ in zip(*runs):
        np.testing.assert_array_equal(a, b_)


def test_simple_rnn_empty_batch_overwrites_and_extremes_saturate():
    W, R, b = np.ones((5, 6)), np.ones((6, 6)), np.ones(6)
    for mod in (_core, _core.ref):
        sevens = [np.full_like(a, 7.0) for a in (W, R, b)]
        _, dx, dw, dr, db, dh0 = call(mod, np.zeros((0, 3, 5)), W, R, b, None,
                                      np.zeros((0, 3, 6)), None, *sevens, accumulate=False)
        assert dx.shape == (0, 3, 5) and dh0.shape == (0, 6)
        for g in (dw, dr, db):
            np.testing.assert_array_equal(g, 0.0)
    x = np.array([[[1e4], [-1e4], [3e3]]], np.float32)
    H = _core.simple_rnn_forward(x, np.ones((1, 2), np.float32), np.zeros((2, 2), np.float32),
                                 None, None)
    np.testing.assert_allclose(H, keras_simple_rnn(x, np.ones((1, 2)), np.zeros((2, 2))),
                               atol=1e-6)


def test_simple_rnn_kernel_bad_input():
    rng = np.random.default_rng(0)
    x, W, R, b, h0 = make(rng, 2, 3, 4, 5, np.float32)
    with pytest.raises(ValueError, match="'x' must be 3-D"):
        _core.simple_rnn_forward(x[0], W, R, b, None)
    with pytest.raises(ValueError, match=r"'kernel' must have shape \(features, units\) = \(4, 5\)"):
        _core.simple_rnn_forward(x, W[:3], R, b, None)
    with pytest.raises(ValueError, match=r"'recurrent_kernel' must have shape \(units, units\)"):
        _core.simple_rnn_forward(x, W, np.ascontiguousarray(R[:, :4]), b, None)
    with pytest.raises(ValueError, match=r"bias.shape\[0\] \(units\).*expected 5, got 4"):
        _core.simple_rnn_forward(x, W, R, b[:4], None)
    with pytest.raises(ValueError, match=r"'h0' must have shape \(batch, units\) = \(2, 5\)"):
        _core.simple_rnn_forward(x, W, R, b, h0[:1])
    with pytest.raises(TypeError, match="'recurrent_kernel' must be a float32"):
        _core.simple_rnn_forward(x, W, R.astype(np.float64), b, None)
    H = _core.simple_rnn_forward(x, W, R, b, None)
    dw, dr, db = np.zeros_like(W), np.zeros_like(R), np.zeros_like(b)
    with pytest.raises(ValueError, match="'H' must have shape"):
        _core.simple_rnn_backward(None, None, x, W, R, None, H[:1], dw, dr, db)
    with pytest.raises(ValueError, match="'drecurrent_kernel' must have the recurrent"):
        _core.simple_rnn_backward(None, None, x, W, R, None, H, dw, dw, db)
    with pytest.raises(ValueError, match="'dh_last' must have shape"):
        _core.simple_rnn_backward(None, h0[:1], x, W, R, None, H, dw, dr, db)


def test_ops_wrappers():
    from dlfast import ops
    rng = np.random.default_rng(13)
    x, W, R, b, h0 = make(rng, 2, 3, 4, 5, np.float64)
    np.testing.assert_allclose(ops.simple_rnn_forward(x, W, R, b, h0),
                               keras_simple_rnn(x, W, R, b, h0), rtol=1e-12, atol=1e-12)
    dH, q = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 5))
    got = ops.simple_rnn_backward(dH, x, W, R, b, h0, q)
    _, dx, dw, dr, db, dh0 = call(_core.ref, x, W, R, b, h0, dH, q)
    for g, w in zip(got, (dx, dw, dr, db, dh0)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
