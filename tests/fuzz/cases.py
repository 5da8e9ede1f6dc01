"""The fuzz suite's cases (tests/fuzz/test_fuzz.py runs them through runner.py).

A case is an id, a family, what it expects and a function that builds its own input from a
seed fixed by its id and calls dlfast: ``expect='answer'`` cases check the result against a
float64 NumPy reference (an AssertionError is a wrong answer; a TypeError/ValueError a wrong
refusal), ``'error'`` cases must be refused with a clean TypeError/ValueError/OSError, and
``'any'`` cases may do either, but must not crash, hang or raise anything else.

Families: zero_size (every size that can be 0 in every op), nonfinite (NaN and +-Inf through
every op forward and backward, on every ISA path), hostile_arrays (wrong dtypes and ranks,
non-contiguous, read-only and misaligned arrays), loss_shapes (Keras's target-shape rule),
models (fit/evaluate/predict misuse, NaN through a model) and files (hostile model files).
``all_cases(full=False)`` is the fixed-seed subset the test run uses; ``full=True`` adds
random draws (more shapes and mutations per op). New ops add their cases here."""

import os
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import dlfast
import reference as ref
from dlfast import _core, ops
from test_kernels_conv import ref_conv, ref_conv_backward
from test_kernels_conv_transpose import ref_transpose
from test_kernels_pool import ref_avg_backward, ref_avg_forward, ref_max_backward, ref_max_forward

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
SPECIALS = np.array([np.nan, np.inf, -np.inf])
ISAS = ("generic", "avx2", "avx512")[: ("generic", "avx2", "avx512").index(
    dlfast.info()["cpu_isa_supported"]) + 1]


@dataclass
class Case:
    id: str
    family: str
    expect: str  # 'answer', 'error' or 'any'
    body: Callable = field(repr=False)  # body(rng)
    isa: str = ISAS[-1]
    threads: int = 1

    def run(self):
        assert _core.set_cpu_capability(self.isa)
        self.body(np.random.default_rng(zlib.crc32(self.id.encode())))


# --- helpers ----------------------------------------------------------------------------

def arr(rng, shape, dtype=F32, special=0.0, scale=1.0):
    """Standard normal * scale; with special > 0, that fraction of the cells NaN/+Inf/-Inf."""
    a = rng.standard_normal(shape) * scale
    if special and a.size:
        mask = rng.random(shape) < special
        a[mask] = rng.choice(SPECIALS, int(mask.sum()))
    return a.astype(dtype)


def close(got, want, dtype, what):
    """got matches the float64 reference: same shape, same NaN and Inf cells, values within a
    tolerance scaled by the reference's largest finite magnitude."""
    got, want = np.asarray(got), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, NumPy's {want.shape}"
    finite = want[np.isfinite(want)]
    rtol = 3e-4 if np.dtype(dtype) == F32 else 1e-9
    atol = rtol * (1.0 + (np.abs(finite).max() if finite.size else 0.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def mm(a, b):
    """a @ b in float64 by broadcast and sum: IEEE products everywhere (a BLAS may skip zeros,
    so 0 * inf would not give NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a[:, :, None] * b[None, :, :]).sum(axis=1)


def act_ref(z, act):
    """ref.act_forward, also on empty arrays (NumPy's max of no values, softmax's, raises)."""
    return ref.act_forward(z, act) if np.size(z) else np.zeros(np.shape(z))


def dense_ref(x, w, b, act):
    z = mm(x, w) + (0.0 if b is None else np.asarray(b, np.float64))
    return act_ref(z, act)


# --- zero_size and nonfinite: one checker per op, forward and backward ------------------

def check_matmul(rng, dt, M, K, N, sp):
    a, b = arr(rng, (M, K), dt, sp), arr(rng, (K, N), dt)
    close(ops.matmul(a, b), mm(a, b), dt, "matmul")
    dy = arr(rng, (M, N), dt, sp)
    da, db = ops.matmul_backward(dy, a, b)
    close(da, mm(dy, b.T), dt, "matmul_backward da")
    close(db, mm(a.T, dy), dt, "matmul_backward db")


def check_dense(rng, dt, N, D, U, act, sp):
    x, w, b = arr(rng, (N, D), dt, sp), arr(rng, (D, U), dt, scale=0.3), arr(rng, (U,), dt)
    y = ops.dense_forward(x, w, b, act)
    close(y, dense_ref(x, w, b, act), dt, f"dense_forward {act}")
    dy = arr(rng, (N, U), dt, sp)
    dx, dw, db = ops.dense_backward(dy, x, w, b, act)
    dz = ref.act_backward(dy, dense_ref(x, w, b, act), act)
    close(dx, mm(dz, w.T), dt, f"dense_backward {act} dx")
    close(dw, mm(x.T, dz), dt, f"dense_backward {act} dkernel")
    close(db, dz.sum(axis=0), dt, f"dense_backward {act} dbias")


def check_activation(rng, dt, shape, act, sp):
    x = arr(rng, shape, dt, sp, scale=3.0)
    y = ops.activation_forward(x, act)
    close(y, act_ref(x, act), dt, f"{act} forward")
    dy = arr(rng, shape, dt, sp)
    y_in = act_ref(x, act).astype(dt)  # the reference's y: the backward alone is tested
    close(ops.activation_backward(dy, y_in, act), ref.act_backward(dy, y_in, act), dt,
          f"{act} backward")


def check_conv(rng, dt, x_shape, w_shape, strides, padding, act, sp):
    x, w = arr(rng, x_shape, dt, sp), arr(rng, w_shape, dt, scale=0.3)
    b = arr(rng, (w_shape[3],), dt)
    y = ops.conv2d_forward(x, w, b, strides, padding, 1, act)
    close(y, ref_conv(x, w, b, (strides,) * 2, padding, (1, 1), act), dt, f"conv2d_forward {act}")
    dy = arr(rng, y.shape, dt, sp)
    got = ops.conv2d_backward(dy, x, w, b, strides, padding, 1, act)
    want = ref_conv_backward(dy, x, w, b, (strides,) * 2, padding, (1, 1), act)
    for g, wv, name in zip(got, want, ("dx", "dkernel", "dbias")):
        close(g, wv, dt, f"conv2d_backward {act} {name}")


def check_conv_transpose(rng, dt, x_shape, w_shape, strides, padding, act, sp):
    x, w = arr(rng, x_shape, dt, sp), arr(rng, w_shape, dt, scale=0.3)
    b = arr(rng, (w_shape[2],), dt)
    y = ops.conv2d_transpose_forward(x, w, b, strides, padding, None, 1, act)
    close(y, ref_transpose(x, w, b, (strides,) * 2, padding, None, (1, 1), act), dt,
          f"conv2d_transpose_forward {act}")
    dy = arr(rng, y.shape, dt, sp)
    ops.conv2d_transpose_backward(dy, x, w, b, strides, padding, None, 1, act)  # no crash


def check_pool(rng, dt, x_shape, pool, strides, padding, sp):
    x = arr(rng, x_shape, dt, sp)
    P = (pool,) * 2
    S = (strides,) * 2
    y = ops.maxpool2d_forward(x, pool, strides, padding)
    close(y, ref_max_forward(x, P, S, padding), dt, "maxpool2d_forward")
    dy = arr(rng, y.shape, dt, sp)
    close(ops.maxpool2d_backward(dy, x, pool, strides, padding),
          ref_max_backward(dy, x, P, S, padding), dt, "maxpool2d_backward")
    close(ops.avgpool2d_forward(x, pool, strides, padding), ref_avg_forward(x, P, S, padding),
          dt, "avgpool2d_forward")
    close(ops.avgpool2d_backward(dy, x, pool, strides, padding),
          ref_avg_backward(dy, x.shape, P, S, padding), dt, "avgpool2d_backward")


def check_global_avgpool(rng, dt, x_shape, sp):
    x = arr(rng, x_shape, dt, sp)
    close(ops.global_avgpool2d_forward(x), np.asarray(x, np.float64).mean(axis=(1, 2)), dt,
          "global_avgpool2d_forward")
    n, h, w, c = x_shape
    dy = arr(rng, (n, c), dt, sp)
    want = np.broadcast_to(np.asarray(dy, np.float64)[:, None, None, :] / (h * w), x_shape)
    close(ops.global_avgpool2d_backward(dy, x), want, dt, "global_avgpool2d_backward")


def check_resample(rng, dt, x_shape, sp):
    x = arr(rng, x_shape, dt, sp)
    up = np.repeat(np.repeat(np.asarray(x, np.float64), 2, axis=1), 3, axis=2)
    close(ops.upsampling2d_forward(x, (2, 3)), up, dt, "upsampling2d_forward")
    dy = arr(rng, up.shape, dt, sp)
    n, h, w, c = x_shape
    want = np.asarray(dy, np.float64).reshape(n, h, 2, w, 3, c).sum(axis=(2, 4))
    close(ops.upsampling2d_backward(dy, (2, 3)), want, dt, "upsampling2d_backward")
    pad = ((1, 2), (0, 1))
    want = np.pad(np.asarray(x, np.float64), ((0, 0),) + pad + ((0, 0),))
    close(ops.zeropadding2d_forward(x, pad), want, dt, "zeropadding2d_forward")
    dy = arr(rng, want.shape, dt, sp)
    close(ops.zeropadding2d_backward(dy, pad), np.asarray(dy, np.float64)[:, 1:1 + h, 0:w],
          dt, "zeropadding2d_backward")


LOSS_REFS = {"mse": ref.mse, "mae": ref.mae, "huber": ref.huber}


def check_loss_nonfinite(rng, dt, name, sp):
    t, p = arr(rng, (6, 5), dt), arr(rng, (6, 5), dt, sp)
    value, grad = LOSS_REFS[name](t, p)
    f = getattr(ops, f"{name}_forward")
    b = getattr(ops, f"{name}_backward")
    close(f(t, p), value, dt, f"{name}_forward")
    close(b(t, p), grad, dt, f"{name}_backward")


def zero_size_cases():
    out = []

    def add(name, body, expect="answer"):
        for dt in (F32, F64):
            out.append(Case(f"zero_size/{name}/{dt}", "zero_size", expect,
                            lambda rng, body=body, dt=dt: body(rng, dt)))

    for M, K, N in ((0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)):
        add(f"matmul {M}x{K}x{N}", lambda rng, dt, M=M, K=K, N=N: check_matmul(rng, dt, M, K, N, 0))
    for N, D, U in ((0, 5, 3), (4, 0, 3), (4, 5, 0)):
        for act in ("linear", "relu", "leaky_relu", "sigmoid", "softmax"):
            add(f"dense N{N} D{D} U{U} {act}",
                lambda rng, dt, N=N, D=D, U=U, act=act: check_dense(rng, dt, N, D, U, act, 0))
    for shape in ((0, 5), (5, 0), (0, 0)):
        for act in ops.ACTIVATIONS:
            add(f"activation {shape} {act}",
                lambda rng, dt, s=shape, act=act: check_activation(rng, dt, s, act, 0))
    # an empty input row or column with padding='valid': no room for the kernel, refused
    conv = [((0, 6, 6, 3), (3, 3, 3, 4), 1, "valid", "answer"),
            ((2, 6, 6, 0), (3, 3, 0, 4), 1, "valid", "answer"),  # issue 18's SIGFPE
            ((2, 6, 6, 0), (3, 3, 0, 4), 2, "same", "answer"),
            ((2, 6, 6, 0), (1, 1, 0, 4), 1, "valid", "answer"),
            ((2, 6, 6, 3), (3, 3, 3, 0), 1, "same", "answer"),
            ((2, 0, 6, 3), (3, 3, 3, 4), 1, "same", "answer"),
            ((2, 6, 6, 0), (3, 3, 0, 0), 1, "same", "answer"),
            ((2, 6, 0, 3), (1, 1, 3, 4), 1, "valid", "error"),
            ((2, 0, 6, 3), (3, 3, 3, 4), 1, "valid", "error")]
    for xs, ws, st, pad, expect in conv:
        for act in ("linear", "relu", "leaky_relu"):
            add(f"conv2d x{xs} k{ws} s{st} {pad} {act}",
                lambda rng, dt, xs=xs, ws=ws, st=st, pad=pad, act=act:
                check_conv(rng, dt, xs, ws, st, pad, act, 0), expect=expect)
    # (the transpose reference cannot take H = 0: that case must only not crash)
    convt = [((0, 4, 4, 3), (3, 3, 5, 3), 2, "same", "answer"),
             ((2, 4, 4, 0), (3, 3, 5, 0), 2, "same", "answer"),
             ((2, 4, 4, 3), (3, 3, 0, 3), 1, "valid", "answer"),
             ((2, 4, 4, 0), (1, 1, 5, 0), 1, "valid", "answer"),
             ((2, 0, 4, 3), (3, 3, 5, 3), 2, "same", "any")]
    for xs, ws, st, pad, expect in convt:
        for act in ("linear", "relu"):
            add(f"conv2d_transpose x{xs} k{ws} s{st} {pad} {act}",
                lambda rng, dt, xs=xs, ws=ws, st=st, pad=pad, act=act:
                check_conv_transpose(rng, dt, xs, ws, st, pad, act, 0), expect=expect)
    for xs, pool, st, pad in (((0, 4, 4, 3), 2, 2, "valid"), ((2, 4, 4, 0), 2, 2, "valid"),
                              ((2, 4, 4, 0), 3, 1, "same"), ((2, 0, 4, 3), 2, 2, "same"),
                              ((2, 4, 0, 3), 3, 2, "same")):
        add(f"pool x{xs} p{pool} s{st} {pad}",
            lambda rng, dt, xs=xs, pool=pool, st=st, pad=pad: check_pool(rng, dt, xs, pool, st,
                                                                          pad, 0))
    for xs in ((0, 3, 3, 2), (2, 3, 3, 0)):
        add(f"global_avgpool x{xs}", lambda rng, dt, xs=xs: check_global_avgpool(rng, dt, xs, 0))
    add("global_avgpool H0 (mean of no cells)",
        lambda rng, dt: check_global_avgpool(rng, dt, (2, 0, 3, 2), 0), expect="any")
    for xs in ((0, 3, 3, 2), (2, 3, 3, 0), (2, 0, 3, 2)):
        add(f"resample x{xs}", lambda rng, dt, xs=xs: check_resample(rng, dt, xs, 0))
    for name in ("mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy",
                 "kl_divergence"):
        for shape in ((0, 3), (4, 0), (0,)):
            add(f"loss {name} {shape} (no values to average)",
                lambda rng, dt, name=name, s=shape: getattr(ops, f"{name}_forward")(
                    np.zeros(s, dt), np.zeros(s, dt)), expect="error")
    add("loss sparse_categorical_crossentropy batch 0",
        lambda rng, dt: ops.sparse_categorical_crossentropy_forward(
            np.zeros(0, np.int64), np.zeros((0, 3), dt)), expect="error")
    for n, t, d, u in ((0, 3, 2, 4), (2, 0, 2, 4), (2, 3, 0, 4), (2, 3, 2, 0)):
        add(f"lstm N{n} T{t} D{d} U{u}", lambda rng, dt, n=n, t=t, d=d, u=u: lstm_any(
            rng, dt, n, t, d, u), expect="any")
    add("sgd/adam on empty weights", lambda rng, dt: optimizers_empty(dt), expect="answer")
    return out


def lstm_any(rng, dt, n, t, d, u):
    x = arr(rng, (n, t, d), dt)
    k, r, b = arr(rng, (d, 4 * u), dt), arr(rng, (u, 4 * u), dt), arr(rng, (4 * u,), dt)
    h = ops.lstm_forward(x, k, r, b)
    ops.lstm_backward(np.ones_like(h), x, k, r, b)


def optimizers_empty(dt):
    w, g, m, v = (np.zeros((0, 3), dt) for _ in range(4))
    ops.sgd_update([w], [g], [m], 0.1, 0.9)
    ops.adam_update([w], [g], [m], [v])
    assert w.shape == (0, 3)


def nonfinite_cases(full):
    out = []
    sps = (0.15, 0.5) if full else (0.2,)

    def add(name, body, isas=ISAS):
        for isa in isas:
            for dt in (F32, F64):
                for sp in sps:
                    out.append(Case(f"nonfinite/{name}/{isa}/{dt}/p{sp}", "nonfinite", "answer",
                                    lambda rng, body=body, dt=dt, sp=sp: body(rng, dt, sp),
                                    isa=isa))

    for act in ops.ACTIVATIONS:  # 67 values: whole vectors plus a scalar tail
        add(f"activation {act}", lambda rng, dt, sp, act=act: check_activation(rng, dt, (3, 67),
                                                                               act, sp))
    add("matmul 37x19x45", lambda rng, dt, sp: check_matmul(rng, dt, 37, 19, 45, sp))
    for act in ("linear", "relu", "leaky_relu"):  # full GEMM tiles and edge tiles
        add(f"dense 37x19->45 {act}", lambda rng, dt, sp, act=act: check_dense(rng, dt, 37, 19,
                                                                               45, act, sp))
    for xs, ws, st, pad in (((2, 7, 7, 3), (3, 3, 3, 20), 1, "same"),
                            ((2, 7, 7, 5), (1, 1, 5, 17), 1, "valid"),
                            ((2, 8, 7, 3), (3, 3, 3, 9), 2, "same")):
        for act in ("linear", "relu"):
            add(f"conv2d x{xs} k{ws} s{st} {pad} {act}",
                lambda rng, dt, sp, xs=xs, ws=ws, st=st, pad=pad, act=act:
                check_conv(rng, dt, xs, ws, st, pad, act, sp))
    add("conv2d_transpose relu", lambda rng, dt, sp: check_conv_transpose(
        rng, dt, (2, 4, 4, 3), (3, 3, 16, 3), 2, "same", "relu", sp))
    for xs, pool, st, pad in (((2, 6, 6, 19), 2, 2, "valid"), ((2, 7, 6, 19), 3, 1, "same"),
                              ((1, 4, 4, 300), 2, 1, "same"), ((2, 6, 6, 8), 3, 3, "same")):
        add(f"pool x{xs} p{pool} s{st} {pad}",
            lambda rng, dt, sp, xs=xs, pool=pool, st=st, pad=pad:
            check_pool(rng, dt, xs, pool, st, pad, sp))
    add("global_avgpool", lambda rng, dt, sp: check_global_avgpool(rng, dt, (2, 3, 4, 19), sp),
        isas=ISAS[-1:])
    add("resample", lambda rng, dt, sp: check_resample(rng, dt, (2, 3, 4, 5), sp), isas=ISAS[-1:])
    for name in LOSS_REFS:
        add(f"loss {name}", lambda rng, dt, sp, name=name: check_loss_nonfinite(rng, dt, name, sp),
            isas=ISAS[-1:])
    return out


# --- hostile_arrays: every array argument of every op, mutated --------------------------

def good_args(rng, op):
    """Valid float32 arguments of op, as {name: array} plus non-array keywords."""
    a = lambda *s: arr(rng, s)  # noqa: E731
    return {
        "matmul": lambda: dict(a=a(5, 4), b=a(4, 3)),
        "dense_forward": lambda: dict(x=a(5, 4), kernel=a(4, 3), bias=a(3)),
        "dense_backward": lambda: dict(dy=a(5, 3), x=a(5, 4), kernel=a(4, 3), bias=a(3)),
        "relu_forward": lambda: dict(x=a(5, 4)),
        "relu_backward": lambda: dict(dy=a(5, 4), y=a(5, 4)),
        "softmax_forward": lambda: dict(x=a(5, 4)),
        "conv2d_forward": lambda: dict(x=a(2, 5, 5, 3), kernel=a(3, 3, 3, 4), bias=a(4)),
        "conv2d_backward": lambda: dict(dy=a(2, 3, 3, 4), x=a(2, 5, 5, 3), kernel=a(3, 3, 3, 4),
                                        bias=a(4)),
        "conv2d_transpose_forward": lambda: dict(x=a(2, 3, 3, 3), kernel=a(3, 3, 4, 3)),
        "maxpool2d_forward": lambda: dict(x=a(2, 4, 4, 3)),
        "maxpool2d_backward": lambda: dict(dy=a(2, 2, 2, 3), x=a(2, 4, 4, 3)),
        "avgpool2d_backward": lambda: dict(dy=a(2, 2, 2, 3), x=a(2, 4, 4, 3)),
        "global_avgpool2d_backward": lambda: dict(dy=a(2, 3), x=a(2, 4, 4, 3)),
        "mse_forward": lambda: dict(y_true=a(5, 3), y_pred=a(5, 3)),
        "categorical_crossentropy_forward": lambda: dict(y_true=np.eye(3, dtype=np.float32)[[0, 1, 2, 1]],
                                                         y_pred=np.full((4, 3), 1 / 3, np.float32)),
        "lstm_forward": lambda: dict(x=a(2, 3, 4), kernel=a(4, 8), recurrent_kernel=a(2, 8)),
        "upsampling2d_forward": lambda: dict(x=a(2, 3, 3, 2)),
    }[op]()


HOSTILE_OPS = ("matmul", "dense_forward", "dense_backward", "relu_forward", "relu_backward",
               "softmax_forward", "conv2d_forward", "conv2d_backward", "conv2d_transpose_forward",
               "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_backward",
               "global_avgpool2d_backward", "mse_forward", "categorical_crossentropy_forward",
               "lstm_forward", "upsampling2d_forward")


ELEMENTWISE = ("relu_forward", "softmax_forward", "upsampling2d_forward")


def misaligned(a):
    """A copy of a whose data starts 1 byte off its dtype's alignment."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    m = buf[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    return m


# (name, mutate(array) -> array, expect): expect 'same' = the same answer as the plain array
MUTATIONS = [
    ("int32", lambda a: a.astype(np.int32), "any"),  # cast (Keras) or refused: both are fine
    ("complex64", lambda a: a.astype(np.complex64), "error"),
    ("object", lambda a: a.astype(object), "error"),
    ("string", lambda a: a.astype(str), "error"),
    ("rank+1", lambda a: a[None], "error"),
    ("rank-1", lambda a: a.reshape(-1) if a.ndim > 1 else a.reshape(()), "error"),
    ("scalar", lambda a: np.float32(1.5), "error"),
    ("None", lambda a: None, "any"),  # optional arguments take None
    ("list", lambda a: a.tolist(), "any"),  # float64: refused beside float32, or cast
    ("transposed view", lambda a: np.ascontiguousarray(a.T).T, "same"),
    ("strided view", lambda a: np.repeat(a, 2, axis=-1)[..., ::2], "same"),
    ("read-only", lambda a: _read_only(a), "same"),
    ("misaligned", misaligned, "same"),
    ("float16", lambda a: a.astype(np.float16), "any"),
    ("huge dim", lambda a: np.lib.stride_tricks.as_strided(a, (2**40,) + a.shape[1:],
                                                           (0,) + a.strides[1:]), "any"),
]


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def hostile_body(op, argname, mutation):
    name, mutate, expect = mutation

    def body(rng):
        args = good_args(rng, op)
        fn = getattr(ops, op)
        want = fn(**args) if expect == "same" else None
        args[argname] = mutate(args[argname])
        got = fn(**args)
        if expect == "same":
            if isinstance(want, tuple):
                for g, w in zip(got, want):
                    assert (g is None and w is None) or np.array_equal(g, w), f"{op} {name}"
            else:
                assert np.array_equal(np.asarray(got), np.asarray(want)), f"{op} {name}"
    return body


def hostile_cases(full):
    out = []
    rng = np.random.default_rng(18)
    for op in HOSTILE_OPS:
        names = list(good_args(np.random.default_rng(0), op))
        for argname in names:
            muts = MUTATIONS if full else [MUTATIONS[i] for i in
                                           sorted(rng.choice(len(MUTATIONS), 6, replace=False))]
            for m in muts:
                expect = {"same": "answer"}.get(m[2], m[2])
                if m[0].startswith("rank") and op in ELEMENTWISE:
                    expect = "any"  # any rank is an element-wise op's input
                out.append(Case(f"hostile_arrays/{op}/{argname}/{m[0]}", "hostile_arrays",
                                expect, lambda rng, op=op, a=argname, m=m: hostile_body(op, a, m)(rng)))
    return out


# --- loss_shapes: Keras's rule ----------------------------------------------------------

def loss_shape_cases():
    out = []
    ok = [((4, 3), (4, 3)), ((4,), (4, 1)), ((4, 1), (4,)), ((4, 3, 1), (4, 3)),
          ((4, 3), (4, 3, 1))]
    bad = [((3, 4), (4, 3)), ((1, 4, 3), (4, 3)), ((4, 3), (1, 4, 3)), ((12,), (4, 3)),
           ((4, 3), (4,)), ((4, 1, 3), (4, 3)), ((2, 4), (4, 2, 1))]
    for name in ("mse", "mae", "huber", "binary_crossentropy", "kl_divergence"):
        for (ts, ps), expect in [(s, "answer") for s in ok] + [(s, "error") for s in bad]:
            def body(rng, name=name, ts=ts, ps=ps):
                t = np.clip(arr(rng, ts), 0.05, 0.95)
                p = np.clip(arr(rng, ps), 0.05, 0.95)
                got = getattr(ops, f"{name}_forward")(t, p)
                if p.ndim == 1:  # dlfast reads 1-D predictions as (batch, 1)
                    t, p = t.reshape(-1, 1), p.reshape(-1, 1)
                refs = {"mse": ref.mse, "mae": ref.mae, "huber": ref.huber, "binary_crossentropy": ref.bce,
                        "kl_divergence": ref.kl_divergence}
                close(got, refs[name](t.reshape(p.shape), p)[0], F32, f"{name} {ts} vs {ps}")
            out.append(Case(f"loss_shapes/{name}/{ts}_vs_{ps}", "loss_shapes", expect, body))
    return out


# --- models: fit / evaluate / predict misuse -------------------------------------------

def small_model(loss="mse", units=3):
    from dlfast.layers import Dense
    from dlfast.models import Sequential
    m = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(units)])
    m.compile(optimizer="sgd", loss=loss)
    return m


def model_cases():
    x = lambda rng, n=8: arr(rng, (n, 4))  # noqa: E731
    cases = {
        "fit y transposed (3, 8) for (8, 3)": ("error", lambda rng: small_model().fit(
            x(rng), arr(rng, (3, 8)), epochs=1, verbose=0)),
        "fit y (1, 8, 3) for (8, 3)": ("error", lambda rng: small_model().fit(
            x(rng), arr(rng, (1, 8, 3)), epochs=1, verbose=0)),
        "fit y (8, 3, 1) for (8, 3)": ("answer", lambda rng: small_model().fit(
            x(rng), arr(rng, (8, 3, 1)), epochs=1, verbose=0)),
        "fit y (8,) for (8, 1)": ("answer", lambda rng: small_model(units=1).fit(
            x(rng), arr(rng, (8,)), epochs=1, verbose=0)),
        "fit y (24,) for (8, 3)": ("error", lambda rng: small_model().fit(
            x(rng), arr(rng, (24,)), epochs=1, verbose=0)),
        "evaluate y (8, 1, 3) for (8, 3)": ("error", lambda rng: small_model().evaluate(
            x(rng), arr(rng, (8, 1, 3)))),
        "fit x and y of different lengths": ("error", lambda rng: small_model().fit(
            x(rng), arr(rng, (7, 3)), epochs=1, verbose=0)),
        "fit on no samples": ("error", lambda rng: small_model().fit(
            x(rng, 0), arr(rng, (0, 3)), epochs=1, verbose=0)),
        "predict on no samples": ("any", lambda rng: small_model().predict(x(rng, 0), verbose=0)),
        "predict wrong feature count": ("error", lambda rng: small_model().predict(
            arr(rng, (8, 5)), verbose=0)),
        "fit batch_size 0": ("error", lambda rng: small_model().fit(
            x(rng), arr(rng, (8, 3)), batch_size=0, epochs=1, verbose=0)),
        "fit epochs -1": ("any", lambda rng: small_model().fit(
            x(rng), arr(rng, (8, 3)), epochs=-1, verbose=0)),
        "sparse labels out of range": ("error", lambda rng: small_model(
            "sparse_categorical_crossentropy").fit(x(rng), np.array([0, 1, 2, 3] * 2), verbose=0)),
        "NaN through predict": ("answer", nan_through_model),
    }
    return [Case(f"models/{name}", "models", expect, body)
            for name, (expect, body) in cases.items()]


def layer_cases():
    """Every layer in a model, on an empty batch, with NaN/Inf input and on 0 channels: a
    result or a clean error, never a crash; a NaN input row gives a NaN output row."""
    from dlfast import layers as L
    image = (6, 6, 3)
    makers = {
        "Dense": (lambda: L.Dense(4, activation="relu"), (5,)),
        "ReLU": (lambda: L.ReLU(), (5,)),
        "LeakyReLU": (lambda: L.LeakyReLU(), (5,)),
        "Activation softmax": (lambda: L.Activation("softmax"), (5,)),
        "Dropout": (lambda: L.Dropout(0.5), (5,)),
        "BatchNormalization": (lambda: L.BatchNormalization(), (5,)),
        "Conv2D relu": (lambda: L.Conv2D(4, 3, padding="same", activation="relu"), image),
        "Conv2DTranspose": (lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same"), image),
        "MaxPooling2D": (lambda: L.MaxPooling2D(2), image),
        "AveragePooling2D": (lambda: L.AveragePooling2D(2), image),
        "GlobalAveragePooling2D": (lambda: L.GlobalAveragePooling2D(), image),
        "UpSampling2D": (lambda: L.UpSampling2D(2), image),
        "ZeroPadding2D": (lambda: L.ZeroPadding2D(1), image),
        "Flatten": (lambda: L.Flatten(), image),
        "LSTM": (lambda: L.LSTM(4), (3, 2)),
    }
    out = []
    for name, (make, shape) in makers.items():
        def model(make=make, shape=shape, in_shape=None, name=name):
            from dlfast.models import Sequential
            m = Sequential([L.Input(in_shape or shape), make(), L.Flatten() if name not in (
                "Dense", "ReLU", "LeakyReLU", "Activation softmax", "Dropout",
                "BatchNormalization", "LSTM", "GlobalAveragePooling2D", "Flatten") else
                L.Activation("linear")])
            m.compile(optimizer="sgd", loss="mse")
            return m

        def empty_batch(rng, model=model, shape=shape):
            m = model()
            y = m.predict(np.zeros((0,) + shape, np.float32), verbose=0)
            assert y.shape[0] == 0, y.shape

        def nan_row(rng, model=model, shape=shape, name=name):
            m = model()
            x = arr(rng, (4,) + shape)
            x[1] = np.nan
            x[2].flat[0] = np.inf
            y = m.predict(x, verbose=0)
            assert np.isnan(y[1]).any(), f"{name}: a NaN input row came out without NaN: {y[1]}"
            m.fit(x, np.zeros_like(y), epochs=1, verbose=0)  # a NaN loss, no crash

        def no_channels(rng, model=model, shape=shape):
            m = model(in_shape=shape[:-1] + (0,))
            m.predict(np.zeros((2,) + shape[:-1] + (0,), np.float32), verbose=0)

        out += [Case(f"layers/{name}/empty batch", "layers", "any", empty_batch),
                Case(f"layers/{name}/NaN and Inf rows", "layers", "answer", nan_row),
                Case(f"layers/{name}/0 channels", "layers", "any", no_channels)]
    return out


def nan_through_model(rng):
    """A NaN input row comes out NaN (through the fused Dense ReLU), the other rows do not."""
    m = small_model()
    xs = arr(rng, (6, 4))
    xs[2, 1] = np.nan
    y = m.predict(xs, verbose=0)
    assert np.isnan(y[2]).all() and np.isfinite(np.delete(y, 2, axis=0)).all(), y


# --- files: hostile model files ---------------------------------------------------------

def write_file(meta, tensors=None):
    from dlfast import saving
    fd, path = tempfile.mkstemp(suffix=".dlfast")
    os.close(fd)
    saving._write(path, tensors or {"weights/0": np.zeros(3, np.float32)}, meta)
    return path


def load(path):
    try:
        dlfast.models.load_model(path)
    finally:
        os.unlink(path)


def nested_text(depth):
    """The JSON text of a Sequential in a Sequential ... `depth` deep (json.dumps would recurse)."""
    return ('{"class_name": "Sequential", "config": {"layers": [' * depth +
            '{"class_name": "Dense", "config": {"units": 1}}' + ']}}' * depth)


def nested(depth):
    config = {"class_name": "Dense", "config": {"units": 1}}
    for _ in range(depth):
        config = {"class_name": "Sequential", "config": {"layers": [config]}}
    return config


def raw_file(data):
    fd, path = tempfile.mkstemp(suffix=".dlfast")
    os.write(fd, data)
    os.close(fd)
    return path


def saved_bytes():
    m = small_model()
    fd, path = tempfile.mkstemp(suffix=".dlfast")
    os.close(fd)
    m.save(path)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def file_cases(full):
    cases = {
        "config nested 50,000 levels": lambda rng: load(raw_model_file(nested_text(50_000))),
        "config nested 200 levels": lambda rng: load(write_file(
            {"contents": "model", "model_config": nested(200), "weight_names": ["w"]})),
        "class os.system": lambda rng: load(write_file(
            {"contents": "model", "model_config": {"class_name": "os.system", "config": {}},
             "weight_names": ["w"]})),
        "config not a dict": lambda rng: load(write_file(
            {"contents": "model", "model_config": [1, 2], "weight_names": ["w"]})),
        "empty file": lambda rng: load(raw_file(b"")),
        "random bytes": lambda rng: load(raw_file(rng.bytes(1000))),
        "directory": lambda rng: dlfast.models.load_model(tempfile.gettempdir()),
        "huge header length": lambda rng: load(raw_file((2**62).to_bytes(8, "little") + b"{}")),
    }
    out = [Case(f"files/{k}", "files", "error", v) for k, v in cases.items()]
    cuts = (1, 8, 9, 50, 200) if not full else tuple(range(1, 400, 7))
    for cut in cuts:
        out.append(Case(f"files/truncated to {cut} bytes", "files", "error",
                        lambda rng, cut=cut: load(raw_file(saved_bytes()[:cut]))))
    for i in range(3 if not full else 40):  # flipped bytes: the checksum or the parser refuses
        def flip(rng):
            data = bytearray(saved_bytes())
            for j in rng.choice(len(data), 3, replace=False):
                data[j] ^= 0xFF
            load(raw_file(bytes(data)))
        out.append(Case(f"files/3 flipped bytes #{i}", "files", "error", flip))
    # the raw JSON nested deeper than any decoder recursion, with a valid checksum
    out.append(Case("files/metadata JSON nested 100,000 levels", "files", "error",
                    lambda rng: load(raw_model_file("[" * 100_000 + "]" * 100_000))))
    return out


def raw_model_file(config_text):
    """A dlfast file whose model_config entry is config_text as it is, with a valid checksum."""
    import safetensors.numpy
    from dlfast import saving
    tensors = {"weights/0": np.zeros(3, np.float32)}
    metadata = {"format": saving.FORMAT, "format_version": str(saving.FORMAT_VERSION),
                "dlfast_version": _core.__version__, "contents": "model",
                "model_config": config_text, "weight_names": '["w"]'}
    metadata["sha256"] = saving._digest(metadata, tensors)
    return raw_file(safetensors.numpy.save(tensors, metadata=metadata))


def selftest_cases():
    """Cases with known outcomes, for the runner's own test (test_fuzz.py)."""
    def hang(rng):
        import time
        time.sleep(600)

    def recurse(rng):
        raise RecursionError("maximum recursion depth exceeded")
    return [Case("selftest/ok before", "selftest", "answer", lambda rng: None),
            Case("selftest/abort", "selftest", "answer", lambda rng: os.abort()),
            Case("selftest/hang", "selftest", "answer", hang),
            Case("selftest/clean error", "selftest", "error", lambda rng: ops.matmul(1, 2)),
            Case("selftest/RecursionError", "selftest", "any", recurse),
            Case("selftest/accepted bad input", "selftest", "error", lambda rng: None)]


def all_cases(full=False):
    cases = (zero_size_cases() + nonfinite_cases(full) + hostile_cases(full) +
             loss_shape_cases() + layer_cases() + model_cases() + file_cases(full))
    if os.environ.get("DLFAST_FUZZ_SELFTEST") == "1":
        cases += selftest_cases()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases
