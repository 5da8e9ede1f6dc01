"""GRU kernels (_core.gru_forward / gru_backward, issue 15): Keras 3's GRU with reset_after=True
(its default), weights in Keras's layout: kernel (D, 3U), recurrent_kernel (U, 3U), bias
(2, 3U) = [input bias; recurrent bias], gates z, r, h~. The float64 NumPy reference is
Keras 3's GRUCell.call written out (keras/src/layers/rnn/gru.py, reset_after branch):

    matrix_x = x @ kernel + bias[0];            x_z, x_r, x_h = split(matrix_x, 3)
    matrix_inner = h_tm1 @ recurrent_kernel + bias[1]; rec_z, rec_r, rec_h = split(..., 3)
    z = sigmoid(x_z + rec_z);  r = sigmoid(x_r + rec_r);  hh = tanh(x_h + r * rec_h)
    h = z * h_tm1 + (1 - z) * hh

Backward: central differences of that forward (odd T, batch 1, with and without h0), and the
naive C++ reference (_core.ref, itself checked against the differences) on every ISA path and
1 and 2 threads."""

import numpy as np
import pytest

import dlfast
from dlfast import _core

from reference import central_diff


def sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def keras_gru(x, kernel, recurrent_kernel, bias=None, h0=None):
    """Every h_t (N, L, U) of Keras 3's GRU(reset_after=True), float64."""
    x, kernel, recurrent_kernel = (np.asarray(a, np.float64) for a in (x, kernel, recurrent_kernel))
    n, steps, _ = x.shape
    u = recurrent_kernel.shape[0]
    bias = np.zeros((2, 3 * u)) if bias is None else np.asarray(bias, np.float64)
    h = np.zeros((n, u)) if h0 is None else np.asarray(h0, np.float64)
    out = []
    for t in range(steps):
        matrix_x = x[:, t] @ kernel + bias[0]
        x_z, x_r, x_h = np.split(matrix_x, 3, axis=-1)
        matrix_inner = h @ recurrent_kernel + bias[1]
        rec_z, rec_r, rec_h = np.split(matrix_inner, 3, axis=-1)
        z = sigmoid(x_z + rec_z)
        r = sigmoid(x_r + rec_r)
        hh = np.tanh(x_h + r * rec_h)
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out, 1)


def make(rng, n, steps, d, u, dtype, scale=0.6):
    x = rng.standard_normal((n, steps, d)).astype(dtype)
    W = (rng.standard_normal((d, 3 * u)) * scale / np.sqrt(d)).astype(dtype)
    R = (rng.standard_normal((u, 3 * u)) * scale / np.sqrt(u)).astype(dtype)
    b = (rng.standard_normal((2, 3 * u)) * 0.3).astype(dtype)
    h0 = rng.standard_normal((n, u)).astype(dtype)
    return x, W, R, b, h0


def tol(dtype):
    return dict(rtol=1e-4, atol=3e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)


def call(mod, x, W, R, b, h0, dH, dhl, dw0=None, dr0=None, db0=None, accumulate=False):
    H, Z = mod.gru_forward(x, W, R, b, h0)
    dw = np.zeros_like(W) if dw0 is None else dw0.copy()
    dr = np.zeros_like(R) if dr0 is None else dr0.copy()
    db = None if b is None else (np.zeros_like(b) if db0 is None else db0.copy())
    dx, dh0 = mod.gru_backward(dH, dhl, x, W, R, h0, H, Z, dw, dr, db, True, True, accumulate)
    return H, Z, dx, dw, dr, db, dh0


# (batch, time, features, units): batch 1, time 1, odd T, units off the 8- and 16-lane panels,
# rows off the 6-row tile, and the bench's shape.
SHAPES = [(1, 1, 1, 1), (1, 5, 3, 4), (2, 1, 7, 16), (3, 7, 5, 7), (7, 3, 9, 17),
          (13, 6, 5, 33), (5, 3, 2, 70), (64, 8, 64, 128)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gru_forward_is_keras(isa_threads, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x, W, R, b, h0 = make(rng, *shape, dtype)
    for bias, state in ((b, None), (b, h0), (None, h0)):
        H, Z = _core.gru_forward(x, W, R, bias, state)
        want = keras_gru(x, W, R, bias, state)
        assert H.dtype == dtype and H.shape == want.shape and Z.shape == shape[:2] + (4 * shape[3],)
        np.testing.assert_allclose(H, want, **tol(dtype))


@pytest.mark.parametrize("with_h0", [False, True], ids=["zeros", "h0"])
@pytest.mark.parametrize("shape", [(1, 5, 3, 4), (2, 3, 2, 3), (1, 1, 2, 2)], ids=str)
def test_gru_backward_is_the_finite_difference_of_keras(isa_threads, shape, with_h0):
    rng = np.random.default_rng(40 + sum(shape))
    x, W, R, b, h0 = make(rng, *shape, np.float64)
    n, steps, _, u = shape
    P = rng.standard_normal((n, steps, u))  # dH: a loss sum(H * P) + sum(H[:, -1] * q)
    q = rng.standard_normal((n, u))
    state = h0 if with_h0 else None
    params = [x, W, R, b] + ([h0] if with_h0 else [])

    def loss():
        H = keras_gru(x, W, R, b, state)
        return (H * P).sum() + (H[:, -1] * q).sum()

    numeric = central_diff(loss, params)
    for mod in (_core, _core.ref):
        _, _, dx, dw, dr, db, dh0 = call(mod, x, W, R, b, state, P, q)
        got = [dx, dw, dr, db] + ([dh0] if with_h0 else [])
        for name, g, w in zip(("dx", "dkernel", "drecurrent", "dbias", "dh0"), got, numeric):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8, err_msg=f"{mod.__name__} {name}")


def test_gru_backward_from_the_last_state_only_and_from_the_sequence_only():
    rng = np.random.default_rng(8)
    x, W, R, b, h0 = make(rng, 2, 3, 3, 5, np.float64)
    q = rng.standard_normal((2, 5))
    numeric = central_diff(lambda: (keras_gru(x, W, R, b, h0)[:, -1] * q).sum(), [x, W, R, b, h0])
    _, _, dx, dw, dr, db, dh0 = call(_core, x, W, R, b, h0, None, q)
    for g, w in zip((dx, dw, dr, db, dh0), numeric):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)
    P = rng.standard_normal((2, 3, 5))
    numeric = central_diff(lambda: (keras_gru(x, W, R, None, None) * P).sum(), [x, W, R])
    _, _, dx, dw, dr, db, dh0 = call(_core, x, W, R, None, None, P, None)
    assert db is None
    for g, w in zip((dx, dw, dr), numeric):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", SHAPES[:-1] + [(9, 11, 16, 40)], ids=str)
def test_fast_gru_matches_ref(isa_threads, dtype, shape):
    rng = np.random.default_rng(3 + sum(shape))
    x, W, R, b, h0 = make(rng, *shape, dtype)
    n, steps, _, u = shape
    dH = rng.standard_normal((n, steps, u)).astype(dtype)
    dhl = rng.standard_normal((n, u)).astype(dtype)
    grads0 = [rng.standard_normal(a.shape).astype(dtype) for a in (W, R, b)]
    names = ("H", "Z", "dx", "dkernel", "drecurrent", "dbias", "dh0")
    for state, accumulate in ((h0, True), (None, False)):
        got = call(_core, x, W, R, b, state, dH, dhl, *grads0, accumulate)
        want = call(_core.ref, x, W, R, b, state, dH, dhl, *grads0, accumulate)
        for name, g, w in zip(names, got, want):
            scale = max(1.0, np.abs(w).max())
            np.testing.assert_allclose(g / scale, w / scale, **tol(dtype),
                                       err_msg=f"{name} h0={state is not None} acc={accumulate}")


def test_gru_long_sequence_float32_stays_close_to_float64(isa_threads):
    rng = np.random.default_rng(4)
    x, W, R, b, _ = make(rng, 4, 101, 6, 20, np.float64, scale=1.0)
    dhl = rng.standard_normal((4, 20))
    want = call(_core.ref, x, W, R, b, None, None, dhl)
    got = call(_core, *(a.astype(np.float32) for a in (x, W, R, b)), None, None,
               dhl.astype(np.float32))
    for g, w in zip(got, want):
        if w is not None:
            assert np.all(np.isfinite(g))
            np.testing.assert_allclose(g, w, rtol=1e-3, atol=2e-4)


def test_gru_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    x, W, R, b, h0 = make(rng, 64, 10, 64, 128, np.float32)
    dH = rng.standard_normal((64, 10, 128)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        runs.append(call(_core, x, W, R, b, h0, dH, None))
    for a, b_ in zip(*runs):
        np.testing.assert_array_equal(a, b_)


def test_gru_backward_accumulates_or_overwrites_and_empty_batch_overwrites():
    rng = np.random.default_rng(2)
    x, W, R, b, _ = make(rng, 3, 4, 5, 6, np.float64)
    dH = rng.standard_normal((3, 4, 6))
    _, _, _, rw, rr, rb, _ = call(_core.ref, x, W, R, b, None, dH, None)
    ones = [np.ones_like(a) for a in (W, R, b)]
    _, _, _, dw, dr, db, _ = call(_core, x, W, R, b, None, dH, None, *ones, accumulate=True)
    np.testing.assert_allclose(dw, 1 + rw, rtol=1e-10)
    np.testing.assert_allclose(dr, 1 + rr, rtol=1e-10)
    np.testing.assert_allclose(db, 1 + rb, rtol=1e-10)
    for mod in (_core, _core.ref):
        x0 = np.zeros((0, 3, 5))
        sevens = [np.full_like(a, 7.0) for a in (W, R, b)]
        _, _, dx, dw, dr, db, dh0 = call(mod, x0, W, R, b, None, np.zeros((0, 3, 6)), None,
                                         *sevens, accumulate=False)
        assert dx.shape == (0, 3, 5) and dh0.shape == (0, 6)
        for g in (dw, dr, db):
            np.testing.assert_array_equal(g, 0.0)


def test_gru_extreme_inputs_saturate_without_nan():
    x = np.array([[[1e4], [-1e4], [3e3]]], np.float32)
    W = np.ones((1, 6), np.float32)
    R = np.zeros((2, 6), np.float32)
    H, _ = _core.gru_forward(x, W, R, None, None)
    assert np.all(np.isfinite(H))
    np.testing.assert_allclose(H, keras_gru(x, W, R), atol=1e-6)


def test_gru_kernel_bad_input():
    rng = np.random.default_rng(0)
    x, W, R, b, h0 = make(rng, 2, 3, 4, 5, np.float32)
    with pytest.raises(ValueError, match="'x' must be 3-D"):
        _core.gru_forward(x[0], W, R, b, None)
    with pytest.raises(ValueError, match=r"'kernel' must have shape \(features, 3\*units\) = \(4, 15\)"):
        _core.gru_forward(x, W[:3], R, b, None)
    with pytest.raises(ValueError, match=r"'recurrent_kernel' must have shape \(units, 3\*units\)"):
        _core.gru_forward(x, W, np.ascontiguousarray(R[:, :7]), b, None)
    with pytest.raises(ValueError, match=r"'bias' must have shape \(2, 3\*units\) = \(2, 15\)"):
        _core.gru_forward(x, W, R, b[0], None)  # Keras's reset_after=False bias is (3U,)
    with pytest.raises(ValueError, match=r"'h0' must have shape \(batch, units\) = \(2, 5\)"):
        _core.gru_forward(x, W, R, b, np.ascontiguousarray(h0[:, :4]))
    with pytest.raises(ValueError, match="time step"):
        _core.gru_forward(x[:, :0], W, R, b, None)
    with pytest.raises(TypeError, match="'kernel' must be a float32"):
        _core.gru_forward(x, W.astype(np.float64), R, b, None)
    H, Z = _core.gru_forward(x, W, R, b, None)
    dw, dr, db = np.zeros_like(W), np.zeros_like(R), np.zeros_like(b)
    with pytest.raises(ValueError, match="'Z' must have shape"):
        _core.gru_backward(None, None, x, W, R, None, H, np.ascontiguousarray(Z[:, :, :15]), dw,
                           dr, db)
    with pytest.raises(ValueError, match="'dkernel' must have the kernel's shape"):
        _core.gru_backward(None, None, x, W, R, None, H, Z, dr, dr, db)
    with pytest.raises(ValueError, match="'dH' must have shape"):
        _core.gru_backward(H[:1], None, x, W, R, None, H, Z, dw, dr, db)
    with pytest.raises(ValueError, match="'dbias' must have shape"):
        _core.gru_backward(H, None, x, W, R, None, H, Z, dw, dr, db.reshape(-1))
    with pytest.raises(ValueError, match="'dh_last' must have shape"):
        _core.gru_backward(None, np.ascontiguousarray(H[:, 0, :3]), x, W, R, None, H, Z, dw, dr,
                           db)


def test_ops_wrappers():
    from dlfast import ops
    rng = np.random.default_rng(13)
    x, W, R, b, h0 = make(rng, 2, 3, 4, 5, np.float64)
    np.testing.assert_allclose(ops.gru_forward(x, W, R, b, h0), keras_gru(x, W, R, b, h0),
                               rtol=1e-12, atol=1e-12)
    dH, q = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 5))
    got = ops.gru_backward(dH, x, W, R, b, h0, q)
    _, _, dx, dw, dr, db, dh0 = call(_core.ref, x, W, R, b, h0, dH, q)
    for g, w in zip(got, (dx, dw, dr, db, dh0)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
