"""dlfast._core.ref (csrc/ref, issue 14): the naive C++ reference of every layer kernel, checked
(a) against the float64 NumPy definitions the kernel tests already hold, and (b) as the
reference each fast kernel is compared with, on every ISA path and 1 and 2 threads, in float32
and float64. _core.ref.X takes _core.X's arguments, so each fast/ref pair is one call twice."""

import numpy as np
import pytest

from dlfast import _core
import reference as npref
import test_kernels_batchnorm as bn_np
import test_kernels_conv as conv_np
import test_kernels_conv_transpose as convt_np
import test_kernels_lstm as lstm_np
import test_kernels_pool as pool_np
import test_kernels_resample as resample_np

# every activation the kernels list but leaky_relu (its slope has tests of its own): a new
# entry of DLFAST_ACTIVATIONS is tested here once tests/reference.py has its formula
ACTS = {n: code for n, code in _core.ACTIVATIONS.items() if n != "leaky_relu"}


def close(got, want, dtype, terms=1, what=""):
    """got ~ want for a result that sums `terms` products: float32 to its rounding of such a
    sum, float64 to ~1e-12 of the result's scale. NaN must match NaN."""
    want = np.asarray(want, np.float64)
    finite = want[np.isfinite(want)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    if np.dtype(dtype) == np.float32:
        rtol, atol = 1e-5, 3e-6 * np.sqrt(terms) * scale
    else:
        rtol, atol = 1e-11, 1e-12 * np.sqrt(terms) * scale
    assert np.shape(got) == want.shape, what
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


# --- every fast op has its reference ---------------------------------------------------------

# The kernels of dlfast._core: a new op must be added here, which the test below demands.
OPS = ["gemm", "dense_forward", "dense_backward", "activation_forward", "activation_backward",
       "loss", "sgd_update", "adam_update", "adamax_update", "adadelta_update", "rmsprop_update",
       "nadam_update", "sgdg2_probe", "sgdg2_dots", "sgdg2_step", "regularizer_penalty",
       "conv2d_forward", "conv2d_backward", "conv2d_transpose_forward",
       "conv2d_transpose_backward", "maxpool2d_forward", "maxpool2d_backward",
       "avgpool2d_forward", "avgpool2d_backward", "lstm_forward", "lstm_backward",
       "batchnorm_forward", "batchnorm_backward", "upsampling2d_forward",
       "upsampling2d_backward", "zeropadding2d_forward", "zeropadding2d_backward",
       "layernorm_forward", "layernorm_backward", "embedding_forward", "embedding_backward",
       "gru_forward", "gru_backward", "simple_rnn_forward", "simple_rnn_backward"]
NOT_OPS = {"build_info", "cpu_capability", "set_cpu_capability", "get_num_threads",
           "set_num_threads", "reference_gemm", "ref",
           "window_axis", "conv2d_paths", "conv2d_path_names",  # geometry and path choice
           "ACTIVATIONS", "LOSSES", "KERNELS"}  # the lists of csrc/common/dispatch.h


def test_every_fast_kernel_has_a_reference_with_its_signature():
    fast = {n for n in dir(_core) if not n.startswith("_")} - NOT_OPS
    assert fast == set(OPS), "an op was added to (or removed from) _core: list it in OPS"
    assert {n for n in dir(_core.ref) if not n.startswith("_")} == set(OPS)
    for name in OPS:
        # pybind11's first docstring line is the signature: name(arg: type = default, ...) -> ret
        assert (getattr(_core.ref, name).__doc__.splitlines()[0]
                == getattr(_core, name).__doc__.splitlines()[0]), name


def test_reference_gemm_is_the_reference(rng):
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    np.testing.assert_array_equal(_core.reference_gemm(a, b), _core.ref.gemm(a, b))
    close(_core.ref.gemm(a, b), a @ b, np.float64, 7)


def test_ref_relu_propagates_nan_as_the_fast_kernels(isa_threads, dtype):
    """NaN through ReLU is NaN (issue 18): the GEMM's fused ReLU, Dense's and the element-wise
    one, fast and reference alike."""
    x = np.array([[np.nan], [1.0], [-1.0]], dtype)  # one feature: a NaN spoils only its row
    w = np.array([[1.0, 2.0]], dtype)
    want = np.array([[np.nan, np.nan], [1.0, 2.0], [0.0, 0.0]])
    for mod in (_core, _core.ref):
        np.testing.assert_array_equal(mod.gemm(x, w, relu=True), want, err_msg=str(mod))
        np.testing.assert_array_equal(mod.dense_forward(x, w, None, ACTS["relu"]), want)
        np.testing.assert_array_equal(mod.activation_forward(x * w, ACTS["relu"]), want)


# --- dense and activations -------------------------------------------------------------------

DENSE_SHAPES = [(1, 1, 1), (3, 5, 7), (17, 33, 9), (2, 0, 4), (64, 70, 10)]


def dense_args(rng, shape, dtype):
    n, d, u = shape
    x = rng.uniform(-1, 1, (n, d)).astype(dtype)
    w = (rng.uniform(-1, 1, (d, u)) / np.sqrt(max(d, 1))).astype(dtype)
    b = rng.uniform(-1, 1, u).astype(dtype)
    dy = rng.uniform(-1, 1, (n, u)).astype(dtype)
    return x, w, b, dy


def dense_backward(mod, dy, x, w, y, code, dw0, db0, accumulate):
    dw, db = dw0.copy(), db0.copy()
    dx = mod.dense_backward(dy, x, w, y, code, dw, db, True, accumulate)
    return dx, dw, db


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=str)
def test_ref_dense_is_the_numpy_definition(dtype, shape, act, rng):
    x, w, b, dy = dense_args(rng, shape, dtype)
    y = _core.ref.dense_forward(x, w, b, ACTS[act])
    close(y, npref.dense_forward(x, w, b, act), dtype, shape[1])
    dx, dw, db = dense_backward(_core.ref, dy, x, w, y, ACTS[act], np.zeros_like(w),
                                np.zeros_like(b), False)
    want_dx, want_dw, want_db = npref.dense_backward(dy, x, w, b, act)
    close(dx, want_dx, dtype, shape[2], "dx")
    close(dw, want_dw, dtype, shape[0], "dkernel")
    close(db, want_db, dtype, shape[0], "dbias")


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=str)
def test_fast_dense_matches_ref(isa_threads, dtype, shape, act, rng):
    x, w, b, dy = dense_args(rng, shape, dtype)
    y = _core.dense_forward(x, w, b, ACTS[act])
    close(y, _core.ref.dense_forward(x, w, b, ACTS[act]), dtype, shape[1], "y")
    dw0, db0 = (rng.standard_normal(a.shape).astype(dtype) for a in (w, b))
    for accumulate in (True, False):
        got = dense_backward(_core, dy, x, w, y, ACTS[act], dw0, db0, accumulate)
        want = dense_backward(_core.ref, dy, x, w, y, ACTS[act], dw0, db0, accumulate)
        for name, g, r, terms in zip(("dx", "dkernel", "dbias"), got, want, shape[::-1]):
            close(g, r, dtype, terms, f"{name} accumulate={accumulate}")


ELEMENTWISE = dict(ACTS, leaky_relu=5)


@pytest.mark.parametrize("act", ELEMENTWISE)
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (3, 0), (2, 3, 129)], ids=str)
def test_activations_fast_ref_numpy(isa_threads, dtype, shape, act, rng):
    x = rng.uniform(-3, 3, shape).astype(dtype)
    x.flat[::7] = 0.0  # the kinks
    dy = rng.uniform(-1, 1, shape).astype(dtype)
    slope = 0.3
    code = ELEMENTWISE[act]
    y_ref = _core.ref.activation_forward(x, code, slope)
    close(_core.activation_forward(x, code, slope), y_ref, dtype, what="fast vs ref")
    dx_ref = _core.ref.activation_backward(dy, y_ref, code, slope)
    close(_core.activation_backward(dy, y_ref, code, slope), dx_ref, dtype, what="fast vs ref")
    if x.size == 0:
        return  # NumPy's softmax has no max of an empty row
    want = npref.leaky_relu(x, slope) if act == "leaky_relu" else npref.act_forward(x, act)
    close(y_ref, want, dtype, what="ref vs numpy")
    want = (npref.leaky_relu_grad(dy, y_ref, slope) if act == "leaky_relu"
            else npref.act_backward(dy, y_ref, act))
    close(dx_ref, want, dtype, what="backward ref vs numpy")


# --- conv2d ----------------------------------------------------------------------------------

# A handful of conv_np.CASES (valid/same, strides, dilation, 1x1, input smaller than the
# kernel, the small-L dW path) and strides larger than the kernel.
CONV_CASES = [conv_np.CASES[i] for i in (0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 17)] + [
    (2, 9, 9, 3, 2, 2, 4, (3, 3), "valid", (1, 1)),
    (2, 8, 7, 3, 1, 2, 5, (3, 4), "same", (1, 1)),
]


def conv_call(mod, x, w, b, dy, kw, code, dw0, db0, accumulate):
    st, pad, dil = kw["strides"], kw["padding"], kw["dilation_rate"]
    y = mod.conv2d_forward(x, w, b, st, pad, dil, code)
    dw, db = dw0.copy(), db0.copy()
    dx = mod.conv2d_backward(dy, x, w, y, st, pad, dil, code, dw, db, True, accumulate)
    return y, dx, dw, db


@pytest.mark.parametrize("act", ["linear", "relu", "softmax"])
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_np.case_id)
def test_ref_conv2d_is_the_numpy_definition(dtype, case, act, rng):
    x, w, b, dy, kw = conv_np.make(case, dtype, rng)
    y, dx, dw, db = conv_call(_core.ref, x, w, b, dy, kw, ACTS[act], np.zeros_like(w),
                              np.zeros_like(b), False)
    args = (kw["strides"], kw["padding"], kw["dilation_rate"], act)
    close(y, conv_np.ref_conv(x, w, b, *args), dtype, w[..., 0].size, "y")
    want_dx, want_dw, want_db = conv_np.ref_conv_backward(dy, x, w, b, *args)
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    close(dx, want_dx, dtype, w.size // w.shape[2], "dx")
    close(dw, want_dw, dtype, M, "dkernel")
    close(db, want_db, dtype, M, "dbias")


@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_np.case_id)
def test_fast_conv2d_matches_ref(isa_threads, dtype, case, act, rng):
    x, w, b, dy, kw = conv_np.make(case, dtype, rng)
    dw0, db0 = (rng.standard_normal(a.shape).astype(dtype) for a in (w, b))
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    for accumulate in (True, False):
        got = conv_call(_core, x, w, b, dy, kw, ACTS[act], dw0, db0, accumulate)
        want = conv_call(_core.ref, x, w, b, dy, kw, ACTS[act], dw0, db0, accumulate)
        for name, g, r, terms in zip(("y", "dx", "dkernel", "dbias"), got, want,
                                     (w[..., 0].size, w.size // w.shape[2], M, M)):
            close(g, r, dtype, terms, f"{name} accumulate={accumulate}")


# --- conv2d_transpose ------------------------------------------------------------------------

CONVT_CASES = [convt_np.CASES[i] for i in (0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14)]


def convt_call(mod, x, w, b, dy, kw, code, dw0, db0, accumulate):
    args = (kw["strides"], kw["padding"], kw["output_padding"], kw["dilation_rate"], code)
    y = mod.conv2d_transpose_forward(x, w, b, *args)
    dw, db = dw0.copy(), db0.copy()
    dx = mod.conv2d_transpose_backward(dy, x, w, y, *args, dw, db, True, accumulate)
    return y, dx, dw, db


@pytest.mark.parametrize("act", ["linear", "sigmoid"])
@pytest.mark.parametrize("case", CONVT_CASES, ids=convt_np.case_id)
def test_ref_conv2d_transpose_is_the_numpy_definition(dtype, case, act, rng):
    x, w, b, dy, kw = convt_np.make(case, dtype, rng)
    y, dx, dw, db = convt_call(_core.ref, x, w, b, dy, kw, ACTS[act], np.zeros_like(w),
                               np.zeros_like(b), False)
    args = (kw["strides"], kw["padding"], kw["output_padding"], kw["dilation_rate"])
    close(y, convt_np.ref_transpose(x, w, b, *args, act), dtype, w[:, :, 0].size, "y")
    want_dx, want_dw, want_db = convt_np.ref_transpose_backward(dy, x, w, b, *args, act)
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    close(dx, want_dx, dtype, w.size // w.shape[3], "dx")
    close(dw, want_dw, dtype, M, "dkernel")
    close(db, want_db, dtype, M, "dbias")


@pytest.mark.parametrize("act", ["linear", "relu"])
@pytest.mark.parametrize("case", CONVT_CASES + [convt_np.CASES[1], convt_np.CASES[15]],
                         ids=convt_np.case_id)
def test_fast_conv2d_transpose_matches_ref(isa_threads, dtype, case, act, rng):
    x, w, b, dy, kw = convt_np.make(case, dtype, rng)
    dw0, db0 = (rng.standard_normal(a.shape).astype(dtype) for a in (w, b))
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    for accumulate in (True, False):
        got = convt_call(_core, x, w, b, dy, kw, ACTS[act], dw0, db0, accumulate)
        want = convt_call(_core.ref, x, w, b, dy, kw, ACTS[act], dw0, db0, accumulate)
        for name, g, r, terms in zip(("y", "dx", "dkernel", "dbias"), got, want,
                                     (w[:, :, 0].size, w.size // w.shape[3], M, M)):
            close(g, r, dtype, terms, f"{name} accumulate={accumulate}")


# --- pooling ---------------------------------------------------------------------------------

POOL_CASES = pool_np.CASES


def pool_call(mod, x, dy, pool, strides, padding):
    return (mod.maxpool2d_forward(x, pool, strides, padding),
            mod.maxpool2d_backward(dy, x, pool, strides, padding),
            mod.avgpool2d_forward(x, pool, strides, padding),
            mod.avgpool2d_backward(dy, x.shape, pool, strides, padding))


def pool_args(case, dtype, rng, nan=False):
    shape, pool, strides, padding = case
    x = rng.uniform(-1, 1, shape).astype(dtype)
    x.flat[::5] = x.flat[0]  # ties: the first cell of a window takes the gradient
    if nan:
        x.flat[rng.choice(x.size, max(1, x.size // 6), replace=False)] = np.nan
    y = _core.ref.maxpool2d_forward(x, pool, strides, padding)
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    return x, dy, pool, strides, padding


@pytest.mark.parametrize("case", POOL_CASES, ids=pool_np.case_id)
def test_ref_pools_are_the_numpy_definition(dtype, case, rng):
    x, dy, pool, strides, padding = pool_args(case, dtype, rng)
    y_max, dx_max, y_avg, dx_avg = pool_call(_core.ref, x, dy, pool, strides, padding)
    np.testing.assert_array_equal(y_max, pool_np.ref_max_forward(x, pool, strides, padding))
    close(dx_max, pool_np.ref_max_backward(dy, x, pool, strides, padding), dtype,
          pool[0] * pool[1], "max dx")
    close(y_avg, pool_np.ref_avg_forward(x, pool, strides, padding), dtype,
          pool[0] * pool[1], "avg y")
    close(dx_avg, pool_np.ref_avg_backward(dy, x.shape, pool, strides, padding), dtype,
          pool[0] * pool[1], "avg dx")


@pytest.mark.parametrize("nan", [False, True], ids=["finite", "nan"])
@pytest.mark.parametrize("case", POOL_CASES, ids=pool_np.case_id)
def test_fast_pools_match_ref(isa_threads, dtype, case, nan, rng):
    args = pool_args(case, dtype, rng, nan)
    got = pool_call(_core, *args)
    want = pool_call(_core.ref, *args)
    pool = case[1]
    # max pooling picks one cell: exact, NaN included (NaN is the max; dy to its first NaN)
    np.testing.assert_array_equal(got[0], want[0], err_msg="max y")
    close(got[1], want[1], dtype, pool[0] * pool[1], "max dx")
    close(got[2], want[2], dtype, pool[0] * pool[1], "avg y")
    close(got[3], want[3], dtype, pool[0] * pool[1], "avg dx")


def test_ref_max_pool_nan_is_the_max_and_takes_the_gradient_at_its_first_cell():
    x = np.array([1.0, np.nan, 5.0, np.nan]).reshape(1, 2, 2, 1)
    dy = np.array([[[[2.0]]]])
    for mod in (_core, _core.ref):
        assert np.isnan(mod.maxpool2d_forward(x, (2, 2), (2, 2), "valid")).all()
        dx = mod.maxpool2d_backward(dy, x, (2, 2), (2, 2), "valid")
        np.testing.assert_array_equal(dx.ravel(), [0.0, 2.0, 0.0, 0.0])


# --- upsampling and zero padding -------------------------------------------------------------

@pytest.mark.parametrize("case", resample_np.UP_CASES[:6], ids=resample_np.case_id)
def test_upsampling2d_fast_ref_numpy(isa_threads, dtype, case, rng):
    shape, size = case
    x = rng.uniform(-1, 1, shape).astype(dtype)
    y = _core.ref.upsampling2d_forward(x, size)
    np.testing.assert_array_equal(y, resample_np.upsample_ref(x, size))
    np.testing.assert_array_equal(_core.upsampling2d_forward(x, size), y)
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    dx = _core.ref.upsampling2d_backward(dy, size)
    close(dx, resample_np.upsample_grad_ref(dy, size), dtype, size[0] * size[1], "ref dx")
    close(_core.upsampling2d_backward(dy, size), dx, dtype, size[0] * size[1], "fast dx")


@pytest.mark.parametrize("case", resample_np.PAD_CASES[:5], ids=resample_np.case_id)
def test_zeropadding2d_fast_ref_numpy(isa_threads, dtype, case, rng):
    shape, padding = case
    x = rng.uniform(-1, 1, shape).astype(dtype)
    y = _core.ref.zeropadding2d_forward(x, padding)
    np.testing.assert_array_equal(y, resample_np.pad_ref(x, padding))
    np.testing.assert_array_equal(_core.zeropadding2d_forward(x, padding), y)
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    dx = _core.ref.zeropadding2d_backward(dy, padding)
    (t, _), (left, _) = padding
    np.testing.assert_array_equal(dx, dy[:, t:t + shape[1], left:left + shape[2]])
    np.testing.assert_array_equal(_core.zeropadding2d_backward(dy, padding), dx)


# --- batch normalization ---------------------------------------------------------------------

BN_SHAPES = [(1, 1), (5, 3), (64, 17), (2, 5, 7, 9), (3, 1, 1, 300)]


def bn_call(mod, x, gamma, beta, mm, mv, dy, training, dg0, db0, accumulate):
    mm, mv, dg, db = mm.copy(), mv.copy(), dg0.copy(), db0.copy()
    y, mean, inv_std = mod.batchnorm_forward(x, gamma, beta, mm, mv, 0.9, 1e-3, training)
    dx = mod.batchnorm_backward(dy, x, gamma, mean, inv_std, training, dg, db, True, accumulate)
    return y, mean, inv_std, mm, mv, dx, dg, db


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_ref_batchnorm_is_the_numpy_definition(dtype, shape, training, rng):
    x, gamma, beta, mm, mv = bn_np.make(rng, shape, dtype)
    dy = rng.uniform(-1, 1, shape).astype(dtype)
    zeros = np.zeros_like(gamma)
    y, mean, inv_std, new_mm, new_mv, dx, dg, db = bn_call(
        _core.ref, x, gamma, beta, mm, mv, dy, training, zeros, zeros, False)
    R = x.size // shape[-1]
    want = bn_np.ref_forward(x, gamma, beta, mm, mv, 0.9, 1e-3, training)
    for name, g, w in zip(("y", "mean", "inv_std", "moving_mean", "moving_var"),
                          (y, mean, inv_std, new_mm, new_mv), want):
        close(g, w, dtype, R, name)
    want = bn_np.ref_backward(dy, x, gamma, mean, inv_std, training)
    for name, g, w in zip(("dx", "dgamma", "dbeta"), (dx, dg, db), want):
        close(g, w, dtype, R, name)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_fast_batchnorm_matches_ref(isa_threads, dtype, shape, training, rng):
    x, gamma, beta, mm, mv = bn_np.make(rng, shape, dtype)
    dy = rng.uniform(-1, 1, shape).astype(dtype)
    dg0, db0 = (rng.standard_normal(gamma.shape).astype(dtype) for _ in range(2))
    R = x.size // shape[-1]
    names = ("y", "mean", "inv_std", "moving_mean", "moving_var", "dx", "dgamma", "dbeta")
    for accumulate in (True, False):
        got = bn_call(_core, x, gamma, beta, mm, mv, dy, training, dg0, db0, accumulate)
        want = bn_call(_core.ref, x, gamma, beta, mm, mv, dy, training, dg0, db0, accumulate)
        for name, g, w in zip(names, got, want):
            close(g, w, dtype, R, f"{name} accumulate={accumulate}")


# --- LSTM ------------------------------------------------------------------------------------

LSTM_SHAPES = [(1, 1, 1, 1), (1, 5, 3, 4), (3, 4, 5, 7), (7, 3, 9, 17), (5, 3, 2, 70)]


def lstm_call(mod, x, W, R, b, h0, c0, dH, dhl, dcl, dw0, dr0, db0, accumulate):
    H, C, Z = mod.lstm_forward(x, W, R, b, h0, c0)
    dw, dr, db = dw0.copy(), dr0.copy(), db0.copy()
    dx, dh0, dc0 = mod.lstm_backward(dH, dhl, dcl, x, W, R, h0, c0, H, C, Z, dw, dr, db,
                                     True, True, accumulate)
    return H, C, Z, dx, dw, dr, db, dh0, dc0


def lstm_args(rng, shape, dtype):
    x, W, R, b, h0, c0 = lstm_np.make(rng, *shape, dtype)
    n, steps, _, u = shape
    dH = rng.standard_normal((n, steps, u)).astype(dtype)
    dhl, dcl = (rng.standard_normal((n, u)).astype(dtype) for _ in range(2))
    return x, W, R, b, h0, c0, dH, dhl, dcl


@pytest.mark.parametrize("state", [True, False], ids=["h0c0", "zeros"])
@pytest.mark.parametrize("shape", LSTM_SHAPES, ids=str)
def test_ref_lstm_is_the_numpy_definition(dtype, shape, state, rng):
    x, W, R, b, h0, c0, dH, dhl, dcl = lstm_args(rng, shape, dtype)
    if not state:
        h0 = c0 = None
    zeros = [np.zeros_like(a) for a in (W, R, b)]
    H, C, Z, dx, dw, dr, db, dh0, dc0 = lstm_call(_core.ref, x, W, R, b, h0, c0, dH, dhl, dcl,
                                                  *zeros, False)
    want_H, want_C, gates = lstm_np.ref_forward(x, W, R, b, h0, c0)
    close(H, want_H, dtype, shape[2] + shape[3], "H")
    close(C, want_C, dtype, shape[2] + shape[3], "C")
    close(Z, np.stack([np.concatenate(g, axis=1) for g in gates], 1), dtype, shape[3], "Z")
    want = lstm_np.ref_backward(dH, dhl, dcl, x, W, R, b, h0, c0)
    for name, g, w in zip(("dx", "dkernel", "drecurrent", "dbias", "dh0", "dc0"),
                          (dx, dw, dr, db, dh0, dc0), want):
        close(g, w, dtype, shape[0] * shape[1] * 4 * shape[3], name)


@pytest.mark.parametrize("shape", LSTM_SHAPES + [(13, 6, 5, 33)], ids=str)
def test_fast_lstm_matches_ref(isa_threads, dtype, shape, rng):
    x, W, R, b, h0, c0, dH, dhl, dcl = lstm_args(rng, shape, dtype)
    grads0 = [rng.standard_normal(a.shape).astype(dtype) for a in (W, R, b)]
    names = ("H", "C", "Z", "dx", "dkernel", "drecurrent", "dbias", "dh0", "dc0")
    for accumulate in (True, False):
        got = lstm_call(_core, x, W, R, b, h0, c0, dH, dhl, dcl, *grads0, accumulate)
        want = lstm_call(_core.ref, x, W, R, b, h0, c0, dH, dhl, dcl, *grads0, accumulate)
        for name, g, w in zip(names, got, want):
            close(g, w, dtype, shape[0] * shape[1] * 4 * shape[3], f"{name} acc={accumulate}")


def test_fast_lstm_backward_overwrites_weight_gradients_on_an_empty_batch(isa_threads):
    # Found by the reference (issue 14): the fast kernel returned early and left them as 7.
    x, W, R = np.zeros((0, 3, 2)), np.ones((2, 8)), np.ones((2, 8))
    results = []
    for mod in (_core.ref, _core):
        H, C, Z = mod.lstm_forward(x, W, R, None, None, None)
        grads = [np.full_like(W, 7.0), np.full_like(R, 7.0), np.full(8, 7.0)]
        mod.lstm_backward(np.zeros((0, 3, 2)), None, None, x, W, R, None, None, H, C, Z, *grads,
                          True, True, False)
        results.append(grads)
    for g in results[0]:
        np.testing.assert_array_equal(g, 0.0)  # the reference: = of an empty sum
    for g in results[1]:
        np.testing.assert_array_equal(g, 0.0)  # the fast kernel, every ISA
