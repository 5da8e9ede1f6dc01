"""LSTM kernels (dlfast.ops.lstm_* / _core.lstm_*) against the SPEC's equations in float64 NumPy,
a hand-written backward through time, and finite differences; every ISA path, 1 and 2 threads."""

import numpy as np
import pytest

from dlfast import _core, ops

from reference import central_diff


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow


def ref_forward(x, W, R, b, h0=None, c0=None):
    """The LSTM with forget gate, step by step, gates stacked i, f, c~, o (Keras): float64.
    Returns every h and c (N, L, U) and the gates of every step (for ref_backward)."""
    x, W, R = (np.asarray(a, np.float64) for a in (x, W, R))
    n, steps, _ = x.shape
    u = R.shape[0]
    b = np.zeros(4 * u) if b is None else np.asarray(b, np.float64)
    h = np.zeros((n, u)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((n, u)) if c0 is None else np.asarray(c0, np.float64)
    hs, cs, gates = [], [], []
    for t in range(steps):
        z = x[:, t] @ W + h @ R + b
        i = sigmoid(z[:, :u])
        f = sigmoid(z[:, u:2 * u])
        g = np.tanh(z[:, 2 * u:3 * u])
        o = sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
        gates.append((i, f, g, o))
    return np.stack(hs, 1), np.stack(cs, 1), gates


def ref_backward(dH, dh_last, dc_last, x, W, R, b, h0=None, c0=None):
    """Backward through time of ref_forward, written out by hand (float64)."""
    x, W, R = (np.asarray(a, np.float64) for a in (x, W, R))
    n, steps, _ = x.shape
    u = R.shape[0]
    H, C, gates = ref_forward(x, W, R, b, h0, c0)
    h_init = np.zeros((n, u)) if h0 is None else np.asarray(h0, np.float64)
    c_init = np.zeros((n, u)) if c0 is None else np.asarray(c0, np.float64)
    dx, dW, dR, db = np.zeros(x.shape), np.zeros(W.shape), np.zeros(R.shape), np.zeros(4 * u)
    dh_next = np.zeros((n, u)) if dh_last is None else np.asarray(dh_last, np.float64).copy()
    dc_next = np.zeros((n, u)) if dc_last is None else np.asarray(dc_last, np.float64).copy()
    for t in reversed(range(steps)):
        i, f, g, o = gates[t]
        c_prev = C[:, t - 1] if t > 0 else c_init
        h_prev = H[:, t - 1] if t > 0 else h_init
        dh = dh_next + (0 if dH is None else dH[:, t])
        tc = np.tanh(C[:, t])
        dc = dc_next + dh * o * (1 - tc ** 2)
        dz = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dc * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=1)
        dx[:, t] = dz @ W.T
        dW += x[:, t].T @ dz
        dR += h_prev.T @ dz
        db += dz.sum(0)
        dh_next = dz @ R.T
        dc_next = dc * f
    return dx, dW, dR, db, dh_next, dc_next


def make(rng, n, steps, d, u, dtype, scale=0.5):
    x = rng.standard_normal((n, steps, d)).astype(dtype)
    W = (rng.standard_normal((d, 4 * u)) * scale / np.sqrt(d)).astype(dtype)
    R = (rng.standard_normal((u, 4 * u)) * scale / np.sqrt(u)).astype(dtype)
    b = (rng.standard_normal(4 * u) * 0.2).astype(dtype)
    h0 = rng.standard_normal((n, u)).astype(dtype)
    c0 = rng.standard_normal((n, u)).astype(dtype)
    return x, W, R, b, h0, c0


def tol(dtype):
    return dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)


# (batch, time, features, units): batch 1, time 1, units below / at / above / off the 16- and
# 8-lane panels, rows off the 6-row tile, and a large case.
SHAPES = [(1, 1, 1, 1), (1, 5, 3, 4), (2, 1, 7, 16), (3, 4, 5, 7), (7, 3, 9, 17), (13, 6, 5, 33),
          (6, 9, 16, 8), (64, 8, 64, 128), (5, 3, 2, 70)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_lstm_forward_matches_reference(isa_threads, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x, W, R, b, h0, c0 = make(rng, *shape, dtype)
    for with_state in (False, True):
        s0 = (h0, c0) if with_state else (None, None)
        h, c = ops.lstm_forward(x, W, R, b, *s0)
        h_ref, c_ref, _ = ref_forward(x, W, R, b, *s0)
        assert h.dtype == dtype and h.shape == h_ref.shape
        np.testing.assert_allclose(h, h_ref, **tol(dtype))
        np.testing.assert_allclose(c, c_ref, **tol(dtype))


def test_lstm_forward_without_bias(dtype):
    rng = np.random.default_rng(1)
    x, W, R, _, _, _ = make(rng, 4, 5, 3, 6, dtype)
    h, c = ops.lstm_forward(x, W, R)
    h_ref, c_ref, _ = ref_forward(x, W, R, None)
    np.testing.assert_allclose(h, h_ref, **tol(dtype))
    np.testing.assert_allclose(c, c_ref, **tol(dtype))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_lstm_backward_matches_reference(isa_threads, dtype, shape):
    rng = np.random.default_rng(100 + sum(shape))
    x, W, R, b, h0, c0 = make(rng, *shape, dtype)
    n, _, _, u = shape
    dH = rng.standard_normal((n, shape[1], u)).astype(dtype)
    dh_last = rng.standard_normal((n, u)).astype(dtype)
    dc_last = rng.standard_normal((n, u)).astype(dtype)
    cases = [(dH, None, None, None, None), (None, dh_last, None, None, None),
             (dH, dh_last, dc_last, h0, c0)]
    for dH_, dhl, dcl, h0_, c0_ in cases:
        got = ops.lstm_backward(dH_, x, W, R, b, h0_, c0_, dhl, dcl)
        want = ref_backward(dH_, dhl, dcl, x, W, R, b, h0_, c0_)
        for name, g, w in zip(("dx", "dkernel", "drecurrent", "dbias", "dh0", "dc0"), got, want):
            assert g.dtype == dtype and g.shape == w.shape, name
            scale = max(1.0, np.abs(w).max())
            np.testing.assert_allclose(g / scale, w / scale, **tol(dtype), err_msg=name)


def test_lstm_backward_finite_differences():
    """The hand-written reference backward is itself checked against central differences of the
    reference forward, and the kernel against both (float64)."""
    rng = np.random.default_rng(7)
    x, W, R, b, h0, c0 = make(rng, 3, 4, 5, 6, np.float64)
    P = rng.standard_normal((3, 4, 6))
    q, qc = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))

    def loss(x, W, R, b, h0, c0):
        H, C, _ = ref_forward(x, W, R, b, h0, c0)
        return (H * P).sum() + (H[:, -1] * q).sum() + (C[:, -1] * qc).sum()

    params = [x, W, R, b, h0, c0]
    numeric = central_diff(lambda: loss(*params), params)
    kernel = ops.lstm_backward(P, x, W, R, b, h0, c0, q, qc)
    order = (0, 1, 2, 3, 4, 5)  # x, W, R, b, h0, c0 <-> dx, dkernel, drec, dbias, dh0, dc0
    for k in order:
        np.testing.assert_allclose(kernel[k], numeric[k], rtol=1e-6, atol=1e-8)


def test_lstm_long_sequence_gradients_stay_finite_and_exact(isa_threads):
    """T = 150 steps: gradients through time neither explode nor vanish to NaN, and match the
    float64 reference."""
    rng = np.random.default_rng(3)
    x, W, R, b, _, _ = make(rng, 4, 150, 6, 20, np.float64, scale=1.0)
    dh_last = rng.standard_normal((4, 20))
    got = ops.lstm_backward(None, x, W, R, b, dh_last=dh_last)
    want = ref_backward(None, dh_last, None, x, W, R, b)
    for g, w in zip(got, want):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
    got32 = ops.lstm_backward(None, x.astype(np.float32), W.astype(np.float32),
                              R.astype(np.float32), b.astype(np.float32),
                              dh_last=dh_last.astype(np.float32))
    for g, w in zip(got32, want):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)


def test_lstm_results_do_not_depend_on_thread_count():
    import dlfast
    rng = np.random.default_rng(5)
    x, W, R, b, h0, c0 = make(rng, 64, 10, 64, 128, np.float32)
    dH = rng.standard_normal((64, 10, 128)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        runs.append(ops.lstm_forward(x, W, R, b, h0, c0) + ops.lstm_backward(dH, x, W, R, b, h0, c0))
    for a, b_ in zip(*runs):
        np.testing.assert_array_equal(a, b_)


def test_lstm_cell_is_one_step(isa_threads, dtype):
    rng = np.random.default_rng(11)
    x, W, R, b, h0, c0 = make(rng, 5, 1, 4, 9, dtype)
    h1, c1 = ops.lstm_cell_forward(x[:, 0], h0, c0, W, R, b)
    h_ref, c_ref, _ = ref_forward(x, W, R, b, h0, c0)
    np.testing.assert_allclose(h1, h_ref[:, 0], **tol(dtype))
    np.testing.assert_allclose(c1, c_ref[:, 0], **tol(dtype))
    dh1, dc1 = rng.standard_normal((2, 5, 9)).astype(dtype)
    dx, dh, dc, dk, dr, db = ops.lstm_cell_backward(dh1, dc1, x[:, 0], h0, c0, W, R, b)
    rx, rk, rr, rb, rh, rc = ref_backward(None, dh1, dc1, x, W, R, b, h0, c0)
    for g, w in ((dx, rx[:, 0]), (dh, rh), (dc, rc), (dk, rk), (dr, rr), (db, rb)):
        np.testing.assert_allclose(g, w, **tol(dtype))


def test_lstm_backward_accumulates_or_overwrites():
    rng = np.random.default_rng(2)
    x, W, R, b, _, _ = make(rng, 3, 4, 5, 6, np.float64)
    H, C, Z = _core.lstm_forward(x, W, R, b, None, None)
    dH = rng.standard_normal(H.shape)
    _, rk, rr, rb, _, _ = ref_backward(dH, None, None, x, W, R, b)
    dk, dr, db = np.ones_like(W), np.ones_like(R), np.ones_like(b)
    _core.lstm_backward(dH, None, None, x, W, R, None, None, H, C, Z, dk, dr, db, False, False, True)
    np.testing.assert_allclose(dk, 1 + rk, rtol=1e-10)
    np.testing.assert_allclose(dr, 1 + rr, rtol=1e-10)
    np.testing.assert_allclose(db, 1 + rb, rtol=1e-10)
    _core.lstm_backward(dH, None, None, x, W, R, None, None, H, C, Z, dk, dr, db, False, False,
                        False)
    np.testing.assert_allclose(dk, rk, rtol=1e-10)
    np.testing.assert_allclose(db, rb, rtol=1e-10)


def test_lstm_extreme_inputs_saturate_without_nan():
    """Pre-activations of +-1e4 saturate the gates (float32's vectorised exp is clamped)."""
    x = np.array([[[1e4], [-1e4], [3e3]]], np.float32)
    W = np.ones((1, 8), np.float32)
    R = np.zeros((2, 8), np.float32)
    h, c = ops.lstm_forward(x, W, R)
    h_ref, c_ref, _ = ref_forward(x, W, R, None)
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(c))
    np.testing.assert_allclose(h, h_ref, atol=1e-6)
    np.testing.assert_allclose(c, c_ref, atol=1e-6)


def test_lstm_kernel_bad_input():
    rng = np.random.default_rng(0)
    x, W, R, b, h0, c0 = make(rng, 2, 3, 4, 5, np.float32)
    with pytest.raises(ValueError, match="'x' must be 3-D"):
        ops.lstm_forward(x[0], W, R, b)
    with pytest.raises(ValueError, match="kernel"):
        ops.lstm_forward(x, W[:3], R, b)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        ops.lstm_forward(x, W, R[:, :7], b)
    with pytest.raises(ValueError, match="bias"):
        ops.lstm_forward(x, W, R, b[:7])
    with pytest.raises(ValueError, match="h0.*\\(2, 5\\)"):
        ops.lstm_forward(x, W, R, b, h0[:, :4], c0)
    with pytest.raises(ValueError, match="c0"):
        ops.lstm_forward(x, W, R, b, h0, c0[:1])
    with pytest.raises(ValueError, match="time step"):
        ops.lstm_forward(x[:, :0], W, R, b)
    with pytest.raises(TypeError):
        _core.lstm_forward(x, W.astype(np.float64), R, b, None, None)
    H, C, Z = _core.lstm_forward(x, W, R, b, None, None)
    dk, dr = np.zeros_like(W), np.zeros_like(R)
    with pytest.raises(ValueError, match="'Z'"):
        _core.lstm_backward(None, None, None, x, W, R, None, None, H, C, Z[:, :, :8], dk, dr,
                            None, True, False, True)
    with pytest.raises(ValueError, match="dkernel"):
        _core.lstm_backward(None, None, None, x, W, R, None, None, H, C, Z, dr, dr, None, True,
                            False, True)
    with pytest.raises(ValueError, match="dH"):
        _core.lstm_backward(H[:, :2], None, None, x, W, R, None, None, H, C, Z, dk, dr, None,
                            True, False, True)
