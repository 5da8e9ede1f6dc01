"""conv2d_transpose_forward / conv2d_transpose_backward (Keras's Conv2DTranspose: NHWC input,
kernel (kh, kw, filters, in_channels)) against a float64 NumPy reference written here from the
definition (every input pixel scatter-adds its kernel-weighted window into a full-size output,
which is then cropped), against central finite differences, and against conv2d's own data
gradient; on every ISA path and 1 / 2 threads.

Keras 3's output size (keras/src/backend/common/backend_utils.py,
_get_output_shape_given_tf_padding), span = (k - 1) * d + 1:
  'valid': (n - 1) * s + max(span, s), or with output_padding op: (n - 1) * s + span + op
  'same':  n * s,                      or with output_padding op: (n - 1) * s + span % 2 + op
and the placement of the cropped window as Keras's JAX backend computes its padding
(_convert_conv_transpose_padding_args_from_keras_to_jax): the output starts at row
span - 1 - left_pad of the full scatter, left_pad = min(ceil(pad_len / 2), span - 1),
pad_len = s + span - 2 (no output_padding) or span + span % 2 - 2 + op; 'valid' starts at 0.
(TensorFlow's conv2d_transpose gives the same rows: tested below against conv2d's data
gradient with TensorFlow's 'same' padding.)"""

import numpy as np
import pytest

import dlfast
from dlfast import _core, ops
import reference as ref

# every activation the kernels list but leaky_relu (its slope has tests of its own): a new
# entry of DLFAST_ACTIVATIONS is tested here once tests/reference.py has its formula
ACTS = [n for n in _core.ACTIVATIONS if n != "leaky_relu"]


# --- the reference ---------------------------------------------------------------------------

def keras_length(n, k, s, d, padding, op):
    span = (k - 1) * d + 1
    if padding == "valid":
        return (n - 1) * s + (max(span, s) if op is None else span + op)
    return n * s if op is None else (n - 1) * s + span % 2 + op


def keras_start(k, s, d, padding, op):
    """First row of the full scatter that the output keeps (Keras's JAX padding)."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return 0
    pad_len = s + span - 2 if op is None else span + span % 2 - 2 + op
    left = min(pad_len // 2 + pad_len % 2, span - 1)
    return span - 1 - left


def ref_transpose(x, w, b, strides, padding, output_padding, dilation, act="linear"):
    """act(conv2d_transpose(x, w) + b) in float64, by definition: a full output of
    (n - 1) * s + span (+ room for output_padding) rows, each input pixel adding
    x[n, i, j] @ w[r, t].T at (i*s + r*d, j*s + t*d), then the Keras window of it."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, h, wd, _ = x.shape
    R, S, F, _ = w.shape
    (sh, sw), (dh, dw) = strides, dilation
    oph, opw = (None, None) if output_padding is None else output_padding
    H, W = keras_length(h, R, sh, dh, padding, oph), keras_length(wd, S, sw, dw, padding, opw)
    top, left = keras_start(R, sh, dh, padding, oph), keras_start(S, sw, dw, padding, opw)
    full = np.zeros((N, max((h - 1) * sh + (R - 1) * dh + 1, top + H) + 1,
                     max((wd - 1) * sw + (S - 1) * dw + 1, left + W) + 1, F))
    for r in range(R):
        for t in range(S):
            contrib = np.einsum("nijc,fc->nijf", x, w[r, t])
            full[:, r * dh: r * dh + (h - 1) * sh + 1: sh,
                 t * dw: t * dw + (wd - 1) * sw + 1: sw] += contrib
    z = full[:, top:top + H, left:left + W]
    if b is not None:
        z = z + np.asarray(b, np.float64)
    return ref.act_forward(z, act)


def ref_transpose_backward(dy, x, w, b, strides, padding, output_padding, dilation, act):
    """(dx, dkernel, dbias) in float64: the transpose of ref_transpose's scatter (gather the
    full-size gradient back at each pixel's taps)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, h, wd, _ = x.shape
    R, S, F, _ = w.shape
    (sh, sw), (dh, dw_) = strides, dilation
    y = ref_transpose(x, w, b, strides, padding, output_padding, dilation, act)
    dz = ref.act_backward(dy, y, act)
    H, W = dz.shape[1:3]
    oph, opw = (None, None) if output_padding is None else output_padding
    top, left = keras_start(R, sh, dh, padding, oph), keras_start(S, sw, dw_, padding, opw)
    full = np.zeros((N, max((h - 1) * sh + (R - 1) * dh + 1, top + H) + 1,
                     max((wd - 1) * sw + (S - 1) * dw_ + 1, left + W) + 1, F))
    full[:, top:top + H, left:left + W] = dz
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for r in range(R):
        for t in range(S):
            g = full[:, r * dh: r * dh + (h - 1) * sh + 1: sh,
                     t * dw_: t * dw_ + (wd - 1) * sw + 1: sw]
            dx += np.einsum("nijf,fc->nijc", g, w[r, t])
            dw[r, t] = np.einsum("nijf,nijc->fc", g, x)
    return dx, dw, dz.sum(axis=(0, 1, 2))


def tol(dtype, n):
    return (3e-5 if dtype == np.float32 else 1e-12) * np.sqrt(max(n, 1))


# (N, h, w, Cin, kh, kw, filters, strides, padding, output_padding, dilation)
# Filters of 32 or 64 take the direct kernels (a multiple of the register tile's width on every
# path and dtype); 3, 5, 20 the GEMM + col2im forward and conv2d's backward; batch 1 likewise.
CASES = [
    (2, 5, 4, 3, 3, 3, 4, (2, 2), "same", None, (1, 1)),       # odd sizes, col2im
    (3, 8, 8, 64, 4, 4, 32, (2, 2), "same", None, (1, 1)),     # the GAN upsampling layer
    (2, 7, 6, 17, 4, 4, 32, (2, 2), "same", (1, 1), (1, 1)),   # output_padding, K % MR tail
    (2, 4, 5, 5, 3, 2, 64, (3, 2), "valid", (2, 1), (1, 1)),   # valid + output_padding
    (2, 5, 7, 6, 3, 3, 32, (3, 3), "same", (2, 0), (1, 1)),    # stride 3
    (1, 5, 5, 5, 3, 3, 32, (2, 2), "same", None, (1, 1)),      # batch 1 (GEMM + col2im path)
    (1, 6, 7, 4, 3, 3, 3, (2, 1), "valid", None, (1, 1)),      # batch 1, 3 filters
    (2, 6, 6, 4, 3, 3, 32, (1, 1), "same", None, (1, 1)),      # stride 1 'same': flipped fwd
    (2, 6, 5, 4, 3, 3, 32, (1, 1), "valid", None, (2, 1)),     # stride 1 'valid', dilation
    (3, 5, 6, 7, 3, 3, 32, (1, 1), "same", None, (2, 2)),      # dilation with 'same'
    (2, 4, 4, 35, 2, 3, 64, (2, 2), "same", (1, 0), (2, 2)),   # strides and dilation (ops)
    (3, 5, 5, 7, 1, 1, 6, (1, 1), "valid", None, (1, 1)),      # 1x1 stride 1: a plain GEMM
    (2, 5, 4, 6, 1, 1, 32, (2, 3), "valid", (1, 2), (1, 1)),   # 1x1 strided: gaps of bias
    (2, 3, 3, 9, 5, 5, 32, (2, 2), "same", None, (1, 1)),      # kernel larger than input
    (2, 2, 1, 3, 4, 4, 5, (3, 2), "same", (2, 1), (1, 1)),     # tiny input, col2im
    (9, 3, 4, 10, 3, 3, 32, (2, 2), "valid", (1, 1), (1, 1)),  # 9 images: groups of 1 and 2
    (5, 7, 7, 20, 4, 4, 20, (2, 2), "same", None, (1, 1)),     # 20 filters: col2im / conv2d
]


def case_id(c):
    N, h, w, C, R, S, F, st, pad, op, dil = c
    o = "" if op is None else f"_op{op[0]}{op[1]}"
    return f"n{N}_{h}x{w}x{C}_k{R}x{S}x{F}_s{st[0]}{st[1]}_{pad}{o}_d{dil[0]}{dil[1]}"


def make(case, dtype, rng, use_bias=True):
    N, h, wd, C, R, S, F, strides, padding, op, dilation = case
    x = rng.uniform(-1, 1, (N, h, wd, C)).astype(dtype)
    w = (rng.uniform(-1, 1, (R, S, F, C)) / np.sqrt(R * S * C)).astype(dtype)
    b = rng.uniform(-1, 1, F).astype(dtype) if use_bias else None
    H = keras_length(h, R, strides[0], dilation[0], padding, None if op is None else op[0])
    W = keras_length(wd, S, strides[1], dilation[1], padding, None if op is None else op[1])
    dy = rng.uniform(-1, 1, (N, H, W, F)).astype(dtype)
    return x, w, b, dy, dict(strides=strides, padding=padding, output_padding=op,
                             dilation_rate=dilation)


def check_against_reference(case, dtype, act, use_bias, rng):
    x, w, b, dy, kw = make(case, dtype, rng, use_bias)
    args = (kw["strides"], kw["padding"], kw["output_padding"], kw["dilation_rate"])
    n_terms = w.shape[0] * w.shape[1] * w.shape[3]
    y = ops.conv2d_transpose_forward(x, w, b, activation=act, **kw)
    want = ref_transpose(x, w, b, *args, act)
    assert y.shape == want.shape and y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=0, atol=tol(dtype, n_terms), err_msg="forward y")
    want_dx, want_dw, want_db = ref_transpose_backward(dy, x, w, b, *args, act)
    dx, dw, db = ops.conv2d_transpose_backward(dy, x, w, b, activation=act, y=y, **kw)
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
def test_conv_transpose_matches_reference(isa_threads, dtype, case, act, use_bias, rng):
    check_against_reference(case, dtype, act, use_bias, rng)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[6]], ids=case_id)
def test_conv_transpose_activations(isa_threads, dtype, case, act, rng):
    check_against_reference(case, dtype, act, True, rng)


def test_conv_transpose_several_chunks_per_group(dtype, rng):
    """Images of 64x64x32 outputs (512 KiB of float32 dz each): the direct backward's chunks
    of one image, two or three per group of 20 images."""
    check_against_reference((20, 32, 32, 4, 4, 4, 32, (2, 2), "same", None, (1, 1)), dtype,
                            "tanh", True, rng)


# --- finite differences (float64, central) ---------------------------------------------------

@pytest.mark.parametrize("act", ["linear", "tanh", "softmax"])
@pytest.mark.parametrize("case", CASES[:11], ids=case_id)
def test_conv_transpose_finite_differences(case, act, rng):
    x, w, b, dy, kw = make(case, np.float64, rng)

    def loss():
        return float(np.sum(dy * ops.conv2d_transpose_forward(x, w, b, activation=act, **kw)))

    dx, dw, db = ops.conv2d_transpose_backward(dy, x, w, b, activation=act, **kw)
    for name, arr, grad in (("dx", x, dx), ("dkernel", w, dw), ("dbias", b, db)):
        idx = rng.choice(arr.size, size=min(arr.size, 10), replace=False)
        np.testing.assert_allclose(grad.flat[idx], ref.central_diff_at(loss, arr, idx),
                                   rtol=1e-5, atol=1e-7, err_msg=name)


# --- Keras's shapes and TensorFlow's placement -------------------------------------------------

@pytest.mark.parametrize("n,k,s,d,padding,op,want", [
    # worked by hand from Keras 3's formula (see the module docstring)
    (8, 4, 2, 1, "same", None, 16),    # n*s
    (7, 3, 2, 1, "same", 1, 14),       # (7-1)*2 + 3%2 + 1
    (7, 3, 2, 1, "same", 0, 13),       # (7-1)*2 + 1 + 0
    (5, 4, 2, 1, "same", 1, 9),        # (5-1)*2 + 0 + 1
    (5, 3, 1, 2, "same", None, 5),     # n*s; dilation does not change it
    (5, 3, 2, 1, "valid", None, 11),   # (5-1)*2 + max(3, 2)
    (5, 1, 3, 1, "valid", None, 15),   # (5-1)*3 + max(1, 3): stride larger than the kernel
    (5, 3, 3, 1, "valid", 2, 17),      # (5-1)*3 + 3 + 2
    (4, 3, 1, 3, "valid", None, 10),   # (4-1)*1 + max(7, 1)
])
def test_output_length_is_keras(n, k, s, d, padding, op, want):
    assert keras_length(n, k, s, d, padding, op) == want
    assert ops.conv_transpose_output_length(n, k, s, d, padding, op) == want
    x = np.ones((1, n, 2, 1))
    w = np.ones((k, 1, 1, 1))
    opp = None if op is None else (op, 0)
    y = ops.conv2d_transpose_forward(x, w, strides=(s, 1), padding=padding,
                                     output_padding=opp, dilation_rate=(d, 1))
    assert y.shape == (1, want, 2, 1)


@pytest.mark.parametrize("n,k,s,op", [(8, 4, 2, None), (7, 3, 2, None), (7, 3, 2, 1),
                                      (6, 5, 2, 1), (5, 4, 3, 2), (6, 3, 3, 2), (4, 2, 3, None),
                                      (5, 1, 2, 1), (6, 6, 4, 3)])
def test_same_is_the_data_gradient_of_conv2d_same(n, k, s, op, rng):
    """Where Keras's 'same' output length O has ceil(O/s) = n, conv2d_transpose is exactly
    conv2d_backward's dx for a 'same' convolution of an O-long input with these strides
    (TensorFlow's definition of conv2d_transpose), so the placement of the rows is TF's."""
    O = keras_length(n, k, s, 1, "same", op)
    assert -(-O // s) == n
    x = rng.uniform(-1, 1, (2, n, n + 1, 3))
    w = rng.uniform(-1, 1, (k, k, 4, 3))
    Ow = keras_length(n + 1, k, s, 1, "same", op)
    y = ops.conv2d_transpose_forward(x, w, strides=s, padding="same",
                                     output_padding=None if op is None else (op, op))
    dx, _, _ = ops.conv2d_backward(x, np.zeros((2, O, Ow, 4)), w, strides=s, padding="same")
    assert y.shape == dx.shape == (2, O, Ow, 4)
    np.testing.assert_allclose(y, dx, rtol=0, atol=1e-12)


# --- accumulate, need_dx, determinism, empty sizes ---------------------------------------------

@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[5], CASES[15]], ids=case_id)
def test_core_backward_accumulates_and_skips_dx(isa_threads, dtype, case, rng):
    x, w, b, dy, kw = make(case, dtype, rng)
    args = (kw["strides"], kw["padding"], kw["output_padding"], kw["dilation_rate"])
    code = ops.ACTIVATIONS["sigmoid"]
    y = _core.conv2d_transpose_forward(x, w, b, *args, code)
    _, want_dw, want_db = ref_transpose_backward(dy, x, w, b, *args, "sigmoid")
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    dw0 = rng.uniform(-1, 1, w.shape).astype(dtype)
    db0 = rng.uniform(-1, 1, b.shape).astype(dtype)
    for accumulate in (True, False):
        dw, db = dw0.copy(), db0.copy()
        dx = _core.conv2d_transpose_backward(dy, x, w, y, *args, code, dw, db, False, accumulate)
        assert dx is None
        base_w, base_b = (dw0, db0) if accumulate else (0, 0)
        np.testing.assert_allclose(dw, base_w + want_dw, rtol=0, atol=tol(dtype, M))
        np.testing.assert_allclose(db, base_b + want_db, rtol=0, atol=tol(dtype, M))
    dw = np.full_like(w, np.nan)  # accumulate=False must not read it
    dx = _core.conv2d_transpose_backward(dy, x, w, y, *args, code, dw, None, True, False)
    assert dx.shape == x.shape and np.isfinite(dw).all()


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[5], CASES[7], CASES[15], CASES[16]],
                         ids=case_id)
def test_results_do_not_depend_on_thread_count(isa, case, rng):
    x, w, b, dy, kw = make(case, np.float32, rng)
    out = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        y = ops.conv2d_transpose_forward(x, w, b, activation="relu", **kw)
        out.append((y,) + ops.conv2d_transpose_backward(dy, x, w, b, activation="relu", y=y,
                                                        **kw))
    for a, c, name in zip(out[0], out[1], ("y", "dx", "dkernel", "dbias")):
        np.testing.assert_array_equal(a, c, err_msg=name)


@pytest.mark.parametrize("x_shape,w_shape,kw,y_shape", [
    ((0, 3, 3, 2), (3, 3, 4, 2), dict(strides=2, padding="same"), (0, 6, 6, 4)),  # no batch
    ((2, 0, 3, 2), (3, 3, 4, 2), dict(strides=2, padding="same"), (2, 0, 6, 4)),  # no rows
    ((2, 0, 3, 2), (4, 3, 4, 2), dict(strides=2), (2, 2, 7, 4)),  # 'valid': max(4,2)-2 rows
    ((2, 3, 3, 0), (3, 3, 4, 0), dict(strides=2, padding="same"), (2, 6, 6, 4)),  # no channels
    ((2, 3, 3, 2), (3, 3, 0, 2), dict(strides=2, padding="same"), (2, 6, 6, 0)),  # no filters
])
def test_empty_sizes_work(dtype, x_shape, w_shape, kw, y_shape):
    """Empty inputs give the Keras-sized output: act(bias) where no input pixel reaches;
    backward gives zero gradients of the right shapes."""
    x = np.ones(x_shape, dtype)
    w = np.ones(w_shape, dtype)
    b = np.full(w_shape[2], 0.5, dtype)
    y = ops.conv2d_transpose_forward(x, w, b, activation="sigmoid", **kw)
    assert y.shape == y_shape
    if y.size and x.size == 0:
        np.testing.assert_allclose(y, 1 / (1 + np.exp(-0.5)), rtol=1e-6)
    dx, dw, db = ops.conv2d_transpose_backward(np.ones(y_shape, dtype), x, w, b,
                                               activation="sigmoid", y=y, **kw)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    if x.size == 0:
        np.testing.assert_array_equal(dw, 0)


# --- bad input ---------------------------------------------------------------------------------

def core_args(**over):
    a = dict(x=np.zeros((1, 5, 5, 3), np.float32), kernel=np.zeros((3, 3, 4, 3), np.float32),
             bias=None, strides=(2, 2), padding="same", output_padding=None, dilation=(1, 1),
             activation=0)
    a.update(over)
    return a


@pytest.mark.parametrize("over,err,match", [
    (dict(strides=(0, 1)), ValueError, r"strides must be positive"),
    (dict(dilation=(1, -1)), ValueError, r"dilation must be positive"),
    (dict(padding="full"), ValueError, r"padding must be 'valid' or 'same'.*full"),
    (dict(output_padding=(2, 0)), ValueError, r"output_padding must be >= 0 and less than the "
                                              r"strides.*\(2, 0\) with strides \(2, 2\)"),
    (dict(output_padding=(0, -1)), ValueError, r"output_padding must be >= 0"),
    (dict(kernel=np.zeros((3, 3, 4, 2), np.float32)), ValueError,
     r"'x' has 3 channels.*'kernel' expects 2 input channels.*\(kh, kw, filters, in_channels\)"),
    (dict(kernel=np.zeros((0, 3, 4, 3), np.float32)), ValueError, r"nonzero height and width"),
    (dict(x=np.zeros((5, 5, 3), np.float32)), ValueError, r"'x' must be 4-D"),
    (dict(kernel=np.zeros((3, 3, 3), np.float32)), ValueError, r"'kernel' must be 4-D"),
    (dict(x=np.zeros((1, 5, 5, 3), np.int32)), TypeError, r"'x' must be a float32 or float64"),
    (dict(kernel=np.zeros((3, 3, 4, 3), np.float64)), TypeError, r"'kernel' must be a float32"),
    (dict(bias=np.zeros(3, np.float32)), ValueError, r"bias.*filters.*expected 4, got 3"),
    (dict(activation=len(_core.ACTIVATIONS) + 3), ValueError,
     rf"activation code must be 0..{len(_core.ACTIVATIONS) - 1} "),
])
def test_core_forward_bad_input(over, err, match):
    with pytest.raises(err, match=match):
        _core.conv2d_transpose_forward(**core_args(**over))


def backward_args(**over):
    a = core_args()
    del a["bias"]
    a.update(dy=np.zeros((1, 10, 10, 4), np.float32), y=None,
             dkernel=np.zeros((3, 3, 4, 3), np.float32), dbias=np.zeros(4, np.float32),
             need_dx=True, accumulate=True)
    a.update(over)
    return a


ro = np.zeros((3, 3, 4, 3), np.float32)
ro.flags.writeable = False


@pytest.mark.parametrize("over,err,match", [
    (dict(dy=np.zeros((1, 9, 10, 4), np.float32)), ValueError,
     r"'dy' must have the output shape \(1, 10, 10, 4\)"),
    (dict(dkernel=np.zeros((3, 3, 3, 4), np.float32)), ValueError, r"'dkernel' must have the kernel's"),
    (dict(dkernel=np.zeros((3, 3, 4, 3), np.float64)), TypeError, r"'dkernel' must be a float32"),
    (dict(dkernel=ro), ValueError, r"'dkernel' is written to and must be writable"),
    (dict(dbias=np.zeros(3, np.float32)), ValueError, r"dbias.*expected 4, got 3"),
    (dict(activation=1), ValueError, r"'y'.*required"),
    (dict(activation=1, y=np.zeros((1, 10, 10, 5), np.float32)), ValueError,
     r"'y' must have the output shape"),
    (dict(dy=np.zeros((1, 10, 10, 4), np.float64)), TypeError, r"'x' must be a float64"),
    (dict(output_padding=(0, 0), dy=np.zeros((1, 10, 10, 4), np.float32)), ValueError,
     r"'dy' must have the output shape \(1, 9, 9, 4\)"),
])
def test_core_backward_bad_input(over, err, match):
    with pytest.raises(err, match=match):
        _core.conv2d_transpose_backward(**backward_args(**over))


def test_ops_bad_input_messages():
    x = np.zeros((1, 4, 4, 3), np.float32)
    w = np.zeros((3, 3, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"output_padding must be None, an int or a pair"):
        ops.conv2d_transpose_forward(x, w, strides=2, output_padding="1")
    with pytest.raises(ValueError, match=r"output_padding must be >= 0"):
        ops.conv2d_transpose_forward(x, w, strides=2, output_padding=-1)
    with pytest.raises(ValueError, match=r"less than the strides"):
        ops.conv2d_transpose_forward(x, w, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same'"):
        ops.conv2d_transpose_forward(x, w, padding="causal")
    with pytest.raises(ValueError, match=r"strides must be positive"):
        ops.conv2d_transpose_forward(x, w, strides=0)
    assert ops.conv2d_transpose_forward(x, w, strides=2, padding="same").shape == (1, 8, 8, 2)
    assert ops.conv2d_transpose_forward(x, w, strides=2, output_padding=1).shape == (1, 10, 10, 2)


# --- random geometry (hypothesis) ------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def transpose_geometry(draw):
    R, S = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["valid", "same"]))
    op = draw(st.one_of(st.none(), st.tuples(st.integers(0, strides[0] - 1),
                                             st.integers(0, strides[1] - 1))))
    F = draw(st.sampled_from([1, 3, 8, 16, 32, 40, 64]))
    return (draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(1, 7)),
            draw(st.integers(1, 20)), R, S, F, strides, padding, op, dil)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=transpose_geometry(), act=st.sampled_from(["linear", "relu"]),
       seed=st.integers(0, 2 ** 31))
def test_random_geometry_against_the_reference(case, act, seed):
    """Any kernel, strides, dilation, padding and output_padding; filter counts on and off the
    direct kernels' tile width, in-channel counts with every tail; float64 reference."""
    check_against_reference(case, np.float32, act, True, np.random.default_rng(seed))
