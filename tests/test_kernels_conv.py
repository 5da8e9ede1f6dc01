"""conv2d_forward / conv2d_backward (NHWC x HWIO, TensorFlow padding) against a float64 NumPy
reference written here (a loop over kernel offsets on an explicitly zero-padded input) and
against central finite differences, on every ISA path and 1 / 2 threads."""

import numpy as np
import pytest

import dlfast
from dlfast import _core, ops
import reference as ref

# every activation the kernels list but leaky_relu (its slope has tests of its own): a new
# entry of DLFAST_ACTIVATIONS is tested here once tests/reference.py has its formula
ACTS = [n for n in _core.ACTIVATIONS if n != "leaky_relu"]


# --- the reference ---------------------------------------------------------------------------

def out_and_pads(n, k, s, d, padding):
    """(output length, pad before, pad after) along one axis, TensorFlow's rules."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return (n - span) // s + 1, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + span - n, 0)
    return out, total // 2, total - total // 2


def ref_conv_pads(x, w, b, strides, pads, dilation, act):
    """act(conv + b) in float64 on x zero-padded by pads = ((top, bottom), (left, right))."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    (sh, sw), (dh, dw) = strides, dilation
    R, S, C, K = w.shape
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    P = (xp.shape[1] - ((R - 1) * dh + 1)) // sh + 1
    Q = (xp.shape[2] - ((S - 1) * dw + 1)) // sw + 1
    z = np.zeros((x.shape[0], P, Q, K))
    for r in range(R):
        for s in range(S):
            patch = xp[:, r * dh: r * dh + (P - 1) * sh + 1: sh, s * dw: s * dw + (Q - 1) * sw + 1: sw]
            z += patch @ w[r, s]
    if b is not None:
        z += np.asarray(b, np.float64)
    return ref.act_forward(z, act)


def ref_pads(x, w, strides, padding, dilation):
    (_, pt, pb) = out_and_pads(x.shape[1], w.shape[0], strides[0], dilation[0], padding)
    (_, pl, pr) = out_and_pads(x.shape[2], w.shape[1], strides[1], dilation[1], padding)
    return (pt, pb), (pl, pr)


def ref_conv(x, w, b, strides, padding, dilation, act):
    return ref_conv_pads(x, w, b, strides, ref_pads(x, w, strides, padding, dilation), dilation, act)


def ref_conv_backward(dy, x, w, b, strides, padding, dilation, act):
    """(dx, dw, db) in float64: the transpose of ref_conv's loop."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    (sh, sw), (dh, dw_) = strides, dilation
    R, S, C, K = w.shape
    pads = ref_pads(x, w, strides, padding, dilation)
    y = ref_conv_pads(x, w, b, strides, pads, dilation, act)
    dz = ref.act_backward(dy, y, act)
    P, Q = dz.shape[1:3]
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for r in range(R):
        for s in range(S):
            rows = slice(r * dh, r * dh + (P - 1) * sh + 1, sh)
            cols = slice(s * dw_, s * dw_ + (Q - 1) * sw + 1, sw)
            dw[r, s] = np.einsum("npqc,npqk->ck", xp[:, rows, cols], dz)
            dxp[:, rows, cols] += dz @ w[r, s].T
    H, W = x.shape[1:3]
    dx = dxp[:, pads[0][0]: pads[0][0] + H, pads[1][0]: pads[1][0] + W]
    return dx, dw, dz.sum(axis=(0, 1, 2))


def tol(dtype, n):
    return (3e-5 if dtype == np.float32 else 1e-12) * np.sqrt(max(n, 1))


# (N, H, W, C, R, S, K, strides, padding, dilation)
CASES = [
    (1, 5, 5, 2, 3, 3, 3, (1, 1), "valid", (1, 1)),      # batch 1, odd
    (2, 7, 7, 3, 3, 3, 4, (2, 2), "same", (1, 1)),       # TF 'same', stride 2, odd input
    (2, 8, 8, 3, 3, 3, 4, (2, 2), "same", (1, 1)),       # ... even input (pad 0 before, 1 after)
    (2, 9, 8, 2, 3, 3, 3, (1, 1), "valid", (2, 2)),      # dilation
    (1, 9, 10, 2, 3, 3, 3, (1, 1), "same", (2, 2)),      # dilation with 'same'
    (2, 6, 9, 3, 3, 5, 2, (1, 2), "valid", (1, 1)),      # 3x5 kernel, (1, 2) strides
    (3, 5, 7, 4, 1, 3, 5, (1, 1), "same", (1, 1)),       # 1x3 kernel
    (2, 5, 6, 4, 1, 1, 3, (1, 1), "valid", (1, 1)),      # 1x1, stride 1: the plain-GEMM path
    (2, 7, 7, 4, 1, 1, 3, (2, 2), "same", (1, 1)),       # 1x1 strided: im2col
    (1, 2, 3, 2, 3, 3, 2, (1, 1), "same", (1, 1)),       # input smaller than the kernel
    (1, 2, 2, 2, 5, 5, 2, (2, 3), "same", (2, 1)),       # ... with strides and dilation
    (5, 12, 11, 3, 3, 3, 8, (1, 1), "same", (1, 1)),     # 3 input channels, batch 5
    (5, 16, 16, 64, 3, 3, 8, (1, 1), "same", (1, 1)),    # whole-image chunks (f32), slices (f64)
    (2, 20, 20, 128, 3, 3, 4, (1, 1), "valid", (1, 1)),  # ... more slices (float64)
    (11, 6, 6, 8, 3, 3, 5, (1, 1), "same", (1, 1)),      # backward units of 1 and 2 images
    (40, 8, 8, 16, 3, 3, 4, (1, 1), "same", (1, 1)),     # several forward chunks of whole images
    # small L (dW straight from x): several chunks per image and a 4-filter tail (K = 20);
    # L = 8 = 6 + 2 taps (a 2-row tile) with strides, dilation and padding on both sides
    (3, 40, 12, 2, 3, 3, 20, (1, 1), "same", (1, 1)),
    (2, 9, 7, 2, 2, 2, 17, (2, 1), "same", (1, 2)),
    (2, 9, 8, 11, 3, 3, 20, (1, 2), "same", (1, 1)),     # L = 99, K = 20: in place too
]


def case_id(c):
    N, H, W, C, R, S, K, st, pad, dil = c
    return f"n{N}_{H}x{W}x{C}_k{R}x{S}x{K}_s{st[0]}{st[1]}_{pad}_d{dil[0]}{dil[1]}"


def make(case, dtype, rng, use_bias=True):
    N, H, W, C, R, S, K, strides, padding, dilation = case
    x = rng.uniform(-1, 1, (N, H, W, C)).astype(dtype)
    w = (rng.uniform(-1, 1, (R, S, C, K)) / np.sqrt(R * S * C)).astype(dtype)
    b = rng.uniform(-1, 1, K).astype(dtype) if use_bias else None
    P, _, _ = out_and_pads(H, R, strides[0], dilation[0], padding)
    Q, _, _ = out_and_pads(W, S, strides[1], dilation[1], padding)
    dy = rng.uniform(-1, 1, (N, P, Q, K)).astype(dtype)
    return x, w, b, dy, dict(strides=strides, padding=padding, dilation_rate=dilation)


def check_against_reference(case, dtype, act, use_bias, rng):
    x, w, b, dy, kw = make(case, dtype, rng, use_bias)
    st, pad, dil = kw["strides"], kw["padding"], kw["dilation_rate"]
    L = w.shape[0] * w.shape[1] * w.shape[2]
    y = ops.conv2d_forward(x, w, b, activation=act, **kw)
    want = ref_conv(x, w, b, st, pad, dil, act)
    assert y.shape == want.shape and y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=0, atol=tol(dtype, L), err_msg="forward y")
    want_dx, want_dw, want_db = ref_conv_backward(dy, x, w, b, st, pad, dil, act)
    dx, dw, db = ops.conv2d_backward(dy, x, w, b, activation=act, y=y, **kw)
    assert dx.shape == x.shape and dw.shape == w.shape and dx.dtype == dtype
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    np.testing.assert_allclose(dx, want_dx, rtol=0, atol=tol(dtype, w.size), err_msg="dx")
    np.testing.assert_allclose(dw, want_dw, rtol=0, atol=tol(dtype, M), err_msg="dkernel")
    if use_bias:
        np.testing.assert_allclose(db, want_db, rtol=0, atol=tol(dtype, M), err_msg="dbias")
    else:
        assert db is None


@pytest.mark.parametrize("act,use_bias", [("relu", True), ("linear", False)],
                         ids=["relu-bias", "linear-nobias"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_matches_reference(isa_threads, dtype, case, act, use_bias, rng):
    check_against_reference(case, dtype, act, use_bias, rng)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", [CASES[1], CASES[7]], ids=case_id)
def test_conv_activations(isa_threads, dtype, case, act, use_bias, rng):
    check_against_reference(case, dtype, act, use_bias, rng)


# --- finite differences (float64, central) ---------------------------------------------------

@pytest.mark.parametrize("act", ["linear", "tanh", "softmax"])
@pytest.mark.parametrize("case", CASES[:12], ids=case_id)
def test_conv_finite_differences(case, act, rng):
    x, w, b, dy, kw = make(case, np.float64, rng)

    def loss():
        return float(np.sum(dy * ops.conv2d_forward(x, w, b, activation=act, **kw)))

    dx, dw, db = ops.conv2d_backward(dy, x, w, b, activation=act, **kw)
    for name, arr, grad in (("dx", x, dx), ("dkernel", w, dw), ("dbias", b, db)):
        idx = rng.choice(arr.size, size=min(arr.size, 12), replace=False)
        np.testing.assert_allclose(grad.flat[idx], ref.central_diff_at(loss, arr, idx), rtol=1e-5,
                                   atol=1e-7, err_msg=name)


# --- TensorFlow's 'same' padding, checked on values --------------------------------------------

@pytest.mark.parametrize("H,k,s,P,pads", [(7, 3, 2, 4, (1, 1)), (8, 3, 2, 4, (0, 1)),
                                          (6, 4, 1, 6, (1, 2)), (5, 3, 3, 2, (0, 1)),
                                          (2, 5, 1, 2, (2, 2))])
def test_same_padding_is_tensorflows(H, k, s, P, pads, rng):
    """Output size ceil(H/s); total padding split with the smaller half before."""
    x = rng.uniform(-1, 1, (2, H, H + 1, 3))
    w = rng.uniform(-1, 1, (k, k, 3, 2))
    Q = -(-(H + 1) // s)
    pads_w = out_and_pads(H + 1, k, s, 1, "same")[1:]
    y = ops.conv2d_forward(x, w, None, strides=s, padding="same")
    assert y.shape == (2, P, Q, 2)
    want = ref_conv_pads(x, w, None, (s, s), (pads, pads_w), (1, 1), "linear")
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12)


# --- accumulate, need_dx, determinism, empty batch ---------------------------------------------

@pytest.mark.parametrize("case", [CASES[2], CASES[7], CASES[12], CASES[14]], ids=case_id)
def test_core_backward_accumulates_and_skips_dx(isa_threads, dtype, case, rng):
    x, w, b, dy, kw = make(case, dtype, rng)
    st, pad, dil = kw["strides"], kw["padding"], kw["dilation_rate"]
    code = ops.ACTIVATIONS["sigmoid"]
    y = _core.conv2d_forward(x, w, b, st, pad, dil, code)
    _, want_dw, want_db = ref_conv_backward(dy, x, w, b, st, pad, dil, "sigmoid")
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    dw0 = rng.uniform(-1, 1, w.shape).astype(dtype)
    db0 = rng.uniform(-1, 1, b.shape).astype(dtype)
    for accumulate in (True, False):
        dw, db = dw0.copy(), db0.copy()
        dx = _core.conv2d_backward(dy, x, w, y, st, pad, dil, code, dw, db, False, accumulate)
        assert dx is None
        base_w, base_b = (dw0, db0) if accumulate else (0, 0)
        np.testing.assert_allclose(dw, base_w + want_dw, rtol=0, atol=tol(dtype, M))
        np.testing.assert_allclose(db, base_b + want_db, rtol=0, atol=tol(dtype, M))
    dw = np.full_like(w, np.nan)  # accumulate=False must not read it
    dx = _core.conv2d_backward(dy, x, w, y, st, pad, dil, code, dw, None, True, False)
    assert dx.shape == x.shape and np.isfinite(dw).all()


@pytest.mark.parametrize("case", [CASES[11], CASES[12], CASES[13], CASES[14], CASES[15]],
                         ids=case_id)
def test_results_do_not_depend_on_thread_count(isa, case, rng):
    x, w, b, dy, kw = make(case, np.float32, rng)
    out = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        y = ops.conv2d_forward(x, w, b, activation="relu", **kw)
        out.append((y,) + ops.conv2d_backward(dy, x, w, b, activation="relu", y=y, **kw))
    for a, c, name in zip(out[0], out[1], ("y", "dx", "dkernel", "dbias")):
        np.testing.assert_array_equal(a, c, err_msg=name)


# The forward either reads x in place (direct tiles) or writes im2col straight into the GEMM's packed-A layout (MR-pixel panels, the
# reduction L = R*S*C cut in K blocks; csrc/cpu/conv_forward.cpp im2col_packed + gemm_prepacked_a).
# These shapes aim at its edges: windows straddling a K block boundary (L > KC), panels that
# cross output rows and images, M not a multiple of MR, border pixels with and without
# padding, strides, dilation, one channel, odd filter counts.
FWD_PACKED_CASES = [
    (3, 9, 7, 50, 3, 3, 17, (1, 1), "same", (1, 1)),     # L = 450 > KC: 2 blocks mid-window
    (2, 7, 11, 47, 3, 3, 5, (2, 1), "same", (1, 1)),     # L = 423, odd channels, stride
    (1, 5, 13, 1, 3, 3, 33, (1, 1), "valid", (1, 1)),    # C = 1, M = 33
    (3, 8, 9, 3, 3, 3, 32, (1, 1), "valid", (1, 1)),     # first-layer like, Q = 7
    (2, 11, 10, 5, 3, 2, 7, (1, 3), "same", (2, 1)),     # dilation + stride, right edge
    (1, 4, 4, 130, 3, 3, 3, (1, 1), "same", (1, 1)),     # L = 1170: 4 K blocks, M = 16
    (7, 6, 5, 9, 5, 5, 20, (1, 1), "same", (1, 1)),      # 5x5 'same': 2-wide borders
    # The direct path (S*C < 32, Q >= 2 tiles): whole interior tiles read x in place, border
    # and last-partial tiles gathered; odd filter counts leave a partial NR panel.
    (3, 10, 20, 3, 3, 3, 40, (1, 1), "same", (1, 1)),    # Q = 20: borders, 2-pixel tail
    (2, 9, 29, 2, 3, 3, 16, (1, 1), "valid", (1, 1)),    # Q = 27
    (2, 12, 31, 5, 3, 3, 7, (2, 1), "same", (2, 1)),     # stride_h 2, dilation_h 2
    (2, 9, 40, 3, 3, 3, 20, (1, 2), "valid", (1, 1)),    # stride_w 2 in place
    (2, 7, 30, 1, 5, 5, 18, (1, 1), "same", (1, 1)),     # C = 1, 5x5, 2-wide borders
    (1, 6, 26, 3, 3, 3, 33, (1, 1), "same", (1, 2)),     # dilation_w: gathered tiles only
]


@pytest.mark.parametrize("act,use_bias", [("relu", True), ("linear", False), ("tanh", True)],
                         ids=["relu-bias", "linear-nobias", "tanh-bias"])
@pytest.mark.parametrize("case", FWD_PACKED_CASES, ids=case_id)
def test_conv_forward_packed_im2col(isa_threads, dtype, case, act, use_bias, rng):
    x, w, b, _, kw = make(case, dtype, rng, use_bias)
    L = w.shape[0] * w.shape[1] * w.shape[2]
    y = ops.conv2d_forward(x, w, b, activation=act, **kw)
    want = ref_conv(x, w, b, kw["strides"], kw["padding"], kw["dilation_rate"], act)
    assert y.shape == want.shape and y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=0, atol=tol(dtype, L))


@pytest.mark.parametrize("case", FWD_PACKED_CASES, ids=case_id)
def test_conv_forward_packed_thread_independent(isa, case, rng):
    x, w, b, _, kw = make(case, np.float32, rng)
    out = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        out.append(ops.conv2d_forward(x, w, b, activation="relu", **kw))
    np.testing.assert_array_equal(out[0], out[1])


def test_conv_batch_zero(dtype):
    x = np.zeros((0, 5, 5, 2), dtype)
    w = np.ones((3, 3, 2, 4), dtype)
    b = np.ones(4, dtype)
    y = ops.conv2d_forward(x, w, b, padding="same", activation="relu")
    assert y.shape == (0, 5, 5, 4)
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 5, 5, 4), dtype), x, w, b, padding="same",
                                     activation="relu")
    assert dx.shape == (0, 5, 5, 2)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


@pytest.mark.parametrize("kernel", [(3, 3), (1, 1), (2, 3)])
@pytest.mark.parametrize("padding,strides", [("valid", 1), ("same", 2)])
def test_conv_zero_input_channels(isa_threads, dtype, kernel, padding, strides, rng):
    # Issue 18: 0 channels divided by zero (SIGFPE) outside the 1x1 path. y = act(bias),
    # dx and dkernel are empty, dbias = the sum of dz, as the float64 reference says.
    x = np.zeros((2, 6, 6, 0), dtype)
    w = np.zeros(kernel + (0, 4), dtype)
    b = rng.standard_normal(4).astype(dtype)
    for act in ("linear", "relu"):
        y = ops.conv2d_forward(x, w, b, strides, padding, activation=act)
        want = ref_conv(x, w, b, (strides,) * 2, padding, (1, 1), act)
        np.testing.assert_allclose(y, want, rtol=1e-6)
        dy = rng.standard_normal(y.shape).astype(dtype)
        got = ops.conv2d_backward(dy, x, w, b, strides, padding, activation=act)
        for g, r in zip(got, ref_conv_backward(dy, x, w, b, (strides,) * 2, padding, (1, 1), act)):
            assert g.shape == r.shape
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)


# --- bad input ---------------------------------------------------------------------------------

def core_args(**over):
    a = dict(x=np.zeros((1, 5, 5, 3), np.float32), kernel=np.zeros((3, 3, 3, 4), np.float32),
             bias=None, strides=(1, 1), padding="valid", dilation=(1, 1), activation=0)
    a.update(over)
    return a


@pytest.mark.parametrize("over,err,match", [
    (dict(x=np.zeros((1, 2, 5, 3), np.float32)), ValueError, r"kernel height 3.*dilation 1.*input height 2"),
    (dict(dilation=(1, 3)), ValueError, r"kernel width 3.*dilation 3.*spans 7.*input width 5"),
    (dict(strides=(0, 1)), ValueError, r"strides must be positive"),
    (dict(strides=(1, -2)), ValueError, r"strides must be positive"),
    (dict(dilation=(0, 1)), ValueError, r"dilation must be positive"),
    (dict(padding="full"), ValueError, r"padding must be 'valid' or 'same'.*full"),
    (dict(kernel=np.zeros((3, 3, 2, 4), np.float32)), ValueError, r"3 channels.*expects 2"),
    (dict(x=np.zeros((5, 5, 3), np.float32)), ValueError, r"'x' must be 4-D"),
    (dict(kernel=np.zeros((3, 3, 3), np.float32)), ValueError, r"'kernel' must be 4-D"),
    (dict(x=np.zeros((1, 5, 5, 3), np.int32)), TypeError, r"'x' must be a float32 or float64"),
    (dict(kernel=np.zeros((3, 3, 3, 4), np.float64)), TypeError, r"'kernel' must be a float32"),
    (dict(bias=np.zeros(5, np.float32)), ValueError, r"bias.*expected 4, got 5"),
    (dict(activation=len(_core.ACTIVATIONS) + 1), ValueError,
     rf"activation code must be 0..{len(_core.ACTIVATIONS) - 1} "),
])
def test_core_conv2d_forward_bad_input(over, err, match):
    with pytest.raises(err, match=match):
        _core.conv2d_forward(**core_args(**over))


def backward_args(**over):
    a = core_args()
    del a["bias"]
    a.update(dy=np.zeros((1, 3, 3, 4), np.float32), y=None,
             dkernel=np.zeros((3, 3, 3, 4), np.float32), dbias=np.zeros(4, np.float32),
             need_dx=True, accumulate=True)
    a.update(over)
    return a


ro = np.zeros((3, 3, 3, 4), np.float32)
ro.flags.writeable = False


@pytest.mark.parametrize("over,err,match", [
    (dict(dy=np.zeros((1, 4, 3, 4), np.float32)), ValueError, r"'dy' must have the output shape \(1, 3, 3, 4\)"),
    (dict(dkernel=np.zeros((3, 3, 3, 5), np.float32)), ValueError, r"'dkernel' must have the kernel's shape"),
    (dict(dkernel=np.zeros((3, 3, 3, 4), np.float64)), TypeError, r"'dkernel' must be a float32"),
    (dict(dkernel=ro), ValueError, r"'dkernel' is written to and must be writable"),
    (dict(dkernel=np.zeros((3, 3, 4, 3), np.float32).transpose(0, 1, 3, 2)), ValueError, r"C-contiguous"),
    (dict(dbias=np.zeros(3, np.float32)), ValueError, r"dbias.*expected 4, got 3"),
    (dict(activation=1), ValueError, r"'y'.*required"),
    (dict(activation=1, y=np.zeros((1, 3, 3, 5), np.float32)), ValueError, r"'y' must have the output shape"),
    (dict(padding="SAME"), ValueError, r"padding must be 'valid' or 'same'"),
    (dict(x=np.zeros((1, 5, 5, 4), np.float32)), ValueError, r"4 channels.*expects 3"),
])
def test_core_conv2d_backward_bad_input(over, err, match):
    with pytest.raises(err, match=match):
        _core.conv2d_backward(**backward_args(**over))


def test_ops_conv_bad_input_messages():
    x = np.zeros((1, 4, 4, 3), np.float32)
    w = np.zeros((5, 5, 3, 2), np.float32)
    with pytest.raises(ValueError, match=r"kernel height 5.*input height 4"):
        ops.conv2d_forward(x, w)
    with pytest.raises(ValueError, match=r"strides must be positive"):
        ops.conv2d_forward(x, w, strides=0, padding="same")
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same'"):
        ops.conv2d_forward(x, w, padding="causal")
    assert ops.conv2d_forward(x, w, padding="same").shape == (1, 4, 4, 2)


# --- random geometry (hypothesis): every padding / stride / dilation / size combination -----

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def conv_geometry(draw):
    R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["valid", "same"]))
    lo_h = (R - 1) * dil[0] + 1 if padding == "valid" else 1
    lo_w = (S - 1) * dil[1] + 1 if padding == "valid" else 1
    return (draw(st.integers(1, 3)), draw(st.integers(lo_h, lo_h + 8)),
            draw(st.integers(lo_w, lo_w + 8)), draw(st.integers(1, 5)), R, S,
            draw(st.integers(1, 20)), (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
            padding, dil)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_geometry(), act=st.sampled_from(["linear", "relu"]),
       seed=st.integers(0, 2 ** 31))
def test_random_geometry_against_the_reference(case, act, seed):
    """Small channel counts (L = R*S*C <= 80: mostly the small-L weight gradient read straight
    from x, with its runs of pixels cut where taps enter or leave the input), any strides,
    dilations and padding, K from 1 to 20 (tails of the 16-wide tiles); float64 reference."""
    check_against_reference(case, np.float32, act, True, np.random.default_rng(seed))
