"""dlfast._core.ref (csrc/ref, issue 14) for the losses, the optimizer updates and the weight
penalty: (a) against the float64 NumPy definitions of tests/reference.py, (b) as the reference
each fast kernel is compared with, on every ISA path and 1 and 2 threads, float32 and float64."""

import numpy as np
import pytest

from dlfast import _core
import reference as npref
from test_ref_ops import close

# kind, from_logits, the NumPy definition (value, grad) = f(t, p)
LOSSES = {
    "mse": (0, False, npref.mse),
    "bce": (1, False, npref.bce),
    "bce_logits": (1, True, npref.bce_logits),
    "cce": (2, False, npref.cce),
    "cce_logits": (2, True, npref.cce_logits),
    "sparse_cce": (3, False, npref.cce),
    "sparse_cce_logits": (3, True, npref.cce_logits),
    "mae": (4, False, npref.mae),
    "huber": (5, False, lambda t, p: npref.huber(t, p, 0.7)),
    "kl": (6, False, npref.kl_divergence),
}
LOSS_SHAPES = [(1, 1), (1, 5), (7, 3), (64, 10), (3, 2, 4)]
# (sparse labels index the rows of a 2-D y_pred only)
LOSS_CASES = [(name, shape) for name in LOSSES for shape in LOSS_SHAPES
              if LOSSES[name][0] != 3 or len(shape) == 2]


def loss_args(name, shape, dtype, rng, edges=False):
    """(y_true for the kernel, y_true for NumPy, y_pred). Probabilities for the losses that
    take them (rows normalised for the categorical ones), logits or values otherwise; with
    `edges`, probabilities of exactly 0 and 1 (clipped: a zero gradient) and zero errors."""
    kind, logits, _ = LOSSES[name]
    C = shape[-1]
    if kind in (0, 4, 5):
        p = rng.uniform(-2, 2, shape)
        t = rng.uniform(-2, 2, shape)
        if edges:
            t.flat[::3] = p.flat[::3]  # e = 0: sign(0) = 0
    elif logits:
        p = rng.normal(0, 3, shape)
        t = rng.uniform(0, 1, shape)
    else:
        p = rng.uniform(0.05, 1, shape)
        t = rng.uniform(0, 1, shape)
        if kind in (2, 3, 6):
            p /= p.sum(axis=-1, keepdims=True)
            t /= t.sum(axis=-1, keepdims=True)
        if edges and (kind not in (2, 3) or C > 1):  # (a one-class row of 0 sums to 0)
            p.flat[::4] = 0.0
            p.flat[1::5] = 1.0
    p = p.astype(dtype)
    if kind == 3:
        labels = rng.integers(0, C, shape[0]).astype(np.int64)
        return labels, npref.onehot(labels, C), p
    t = t.astype(dtype)
    return t, t, p


def loss_call(mod, name, t, p):
    kind, logits, _ = LOSSES[name]
    return mod.loss(kind, t, p, logits, True, 0.7)


@pytest.mark.parametrize("edges", [False, True], ids=["inside", "edges"])
@pytest.mark.parametrize("name,shape", LOSS_CASES, ids=str)
def test_ref_losses_are_the_numpy_definitions(dtype, name, shape, edges, rng):
    kind = LOSSES[name][0]
    t, t_np, p = loss_args(name, shape, dtype, rng, edges)
    value, grad = loss_call(_core.ref, name, t, p)
    if kind in (2, 3):  # the categorical losses see [N, C] rows, C the product of the rest
        want_value, want_grad = LOSSES[name][2](t_np.reshape(shape[0], -1),
                                                p.reshape(shape[0], -1))
        want_grad = want_grad.reshape(shape)
    else:
        want_value, want_grad = LOSSES[name][2](t_np, p)
    close(value, want_value, np.float64 if dtype == np.float64 else np.float32, p.size, "value")
    close(grad, want_grad, dtype, shape[-1], "grad")


@pytest.mark.parametrize("edges", [False, True], ids=["inside", "edges"])
@pytest.mark.parametrize("name,shape", LOSS_CASES, ids=str)
def test_fast_losses_match_ref(isa_threads, dtype, name, shape, edges, rng):
    t, _, p = loss_args(name, shape, dtype, rng, edges)
    value, grad = loss_call(_core, name, t, p)
    want_value, want_grad = loss_call(_core.ref, name, t, p)
    close(value, want_value, dtype, p.size, "value")
    close(grad, want_grad, dtype, shape[-1], "grad")


def test_losses_propagate_nan_alike(dtype):
    p = np.array([[np.nan, 0.5], [0.2, 0.8]], dtype)
    t = np.array([[0.0, 1.0], [1.0, 0.0]], dtype)
    for name in ("mse", "mae", "huber", "bce", "kl"):
        got = loss_call(_core, name, t, p)
        want = loss_call(_core.ref, name, t, p)
        assert np.isnan(got[0]) and np.isnan(want[0]), name
        np.testing.assert_array_equal(np.isnan(got[1]), np.isnan(want[1]), err_msg=name)


# --- optimizer updates -----------------------------------------------------------------------

SIZES = [1, 7, 33, 1000]


def params(rng, n, dtype, k):
    """A weight, its gradient and k state arrays (non-negative: second moments and norms)."""
    w = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    states = [rng.uniform(0, 0.5, n) for _ in range(k)]
    if k == 3:  # RMSprop's average gradient a: v >= a^2 keeps the centered v - a^2 + eps > 0
        states[2] = np.sqrt(states[0]) * rng.uniform(-0.9, 0.9, n)
    return w, g, [s.astype(dtype) for s in states]


# name: (number of state arrays, call(mod, w, g, states), NumPy step(w, g, states) -> w, *states)
def _sgd(momentum, nesterov):
    def call(mod, w, g, s):
        mod.sgd_update([w], [g], [s[0]] if momentum else None, 0.1, momentum, nesterov, 0.01)

    def numpy(w, g, s):
        return npref.sgd_step(w, g, s[0] if momentum else None, 0.1, momentum, nesterov, 0.01)
    return (1 if momentum else 0), call, numpy


def _rmsprop(momentum, centered):
    def call(mod, w, g, s):
        mod.rmsprop_update([w], [g], [s[0]], [s[1]] if momentum else None,
                           [s[2]] if centered else None, 0.01, 0.9, momentum, 1e-7, centered,
                           0.004)

    def numpy(w, g, s):
        w, v, m, a = npref.rmsprop_step(w, g, s[0], s[1], s[2], 0.01, 0.9, momentum, 1e-7,
                                        centered, 0.004)
        return w, v, m, a
    return 3, call, numpy


OPTIMIZERS = {
    "sgd": _sgd(0.0, False),
    "sgd_momentum": _sgd(0.9, False),
    "sgd_nesterov": _sgd(0.9, True),
    "adam": (2, lambda mod, w, g, s: mod.adam_update([w], [g], [s[0]], [s[1]], 0.01, 0.9, 0.999,
                                                     1e-7, 0.0, 3),
             lambda w, g, s: npref.adam_step(w, g, s[0], s[1], 3, 0.01, 0.9, 0.999, 1e-7)),
    "adamw": (2, lambda mod, w, g, s: mod.adam_update([w], [g], [s[0]], [s[1]], 0.01, 0.9, 0.999,
                                                      1e-7, 0.004, 1),
              lambda w, g, s: npref.adam_step(w, g, s[0], s[1], 1, 0.01, 0.9, 0.999, 1e-7,
                                              0.004)),
    "adamax": (2, lambda mod, w, g, s: mod.adamax_update([w], [g], [s[0]], [s[1]], 0.01, 0.9,
                                                         0.999, 1e-7, 0.004, 2),
               lambda w, g, s: npref.adamax_step(w, g, s[0], s[1], 2, 0.01, 0.9, 0.999, 1e-7,
                                                 0.004)),
    "adadelta": (2, lambda mod, w, g, s: mod.adadelta_update([w], [g], [s[0]], [s[1]], 1.0,
                                                             0.95, 1e-7, 0.004),
                 lambda w, g, s: npref.adadelta_step(w, g, s[0], s[1], 1.0, 0.95, 1e-7, 0.004)),
    "rmsprop": _rmsprop(0.0, False),
    "rmsprop_momentum_centered": _rmsprop(0.9, True),
    "nadam": (2, lambda mod, w, g, s: mod.nadam_update([w], [g], [s[0]], [s[1]], 0.01, 0.9,
                                                       0.999, 1e-7, 0.004, 4,
                                                       npref.nadam_u_product(0.9, 4)),
              lambda w, g, s: npref.nadam_step(w, g, s[0], s[1], 4, 0.01, 0.9, 0.999, 1e-7,
                                               0.004)),
}


def run_update(mod, name, w, g, states):
    """The arrays after one update by `mod` (on copies)."""
    w, states = w.copy(), [s.copy() for s in states]
    OPTIMIZERS[name][1](mod, w, g, states)
    return [w] + states


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_ref_updates_are_the_numpy_definitions(dtype, name, n, rng):
    k, _, numpy_step = OPTIMIZERS[name]
    w, g, states = params(rng, n, dtype, max(k, 1))
    got = run_update(_core.ref, name, w, g, states)
    want = numpy_step(w, g, [s.astype(np.float64) for s in states])
    for i, (a, b) in enumerate(zip(got, want)):
        if b is not None:
            close(a, b, dtype, what=f"{name} array {i}")


@pytest.mark.parametrize("n", SIZES + [70001])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fast_updates_match_ref(isa_threads, dtype, name, n, rng):
    w, g, states = params(rng, n, dtype, max(OPTIMIZERS[name][0], 1))
    got = run_update(_core, name, w, g, states)
    want = run_update(_core.ref, name, w, g, states)
    for i, (a, b) in enumerate(zip(got, want)):
        close(a, b, dtype, what=f"{name} array {i}")


@pytest.mark.parametrize("n", SIZES + [70001])
def test_sgdg2_passes_fast_and_ref(isa_threads, dtype, n, rng):
    w, g, (p,) = params(rng, n, dtype, 1)
    out = {}
    for mod in (_core, _core.ref):
        wm, saved = w.copy(), np.zeros_like(w)
        mod.sgdg2_probe([wm], [g], [saved], 0.1)
        dots = mod.sgdg2_dots([saved], [p])
        probe = wm.copy()
        mod.sgdg2_step([wm], [saved], 0.1, 0.05, 0.01)
        out[mod] = (saved, probe, np.array(dots), wm)
    g64, p64, w64 = (a.astype(np.float64) for a in (g, p, w))
    theta = w64 - 0.1 * g64
    want = (g64, theta, np.array([(g64 - p64) @ g64, (g64 - p64) @ (g64 - p64)]),
            (theta + 0.1 * g64) * (1 - 0.05 * 0.01) - 0.05 * g64)
    for name, got, ref_, np_ in zip(("saved", "probe", "dots", "step"), out[_core],
                                    out[_core.ref], want):
        close(ref_, np_, dtype if name != "dots" else np.float64, n, f"ref {name}")
        close(got, ref_, dtype if name != "dots" else np.float64, n, f"fast {name}")


@pytest.mark.parametrize("n", [1, 9, 8193, 20000])
def test_regularizer_penalty_fast_ref_numpy(isa_threads, dtype, n, rng):
    w = rng.standard_normal(n).astype(dtype)
    w[::5] = 0.0  # sign(0) = 0
    g0 = rng.standard_normal(n).astype(dtype)
    results = []
    for mod in (_core, _core.ref):
        g = g0.copy()
        results.append((mod.regularizer_penalty(w, 0.01, 0.02, g), g))
    w64 = w.astype(np.float64)
    close(results[1][0], 0.01 * np.abs(w64).sum() + 0.02 * (w64 ** 2).sum(), np.float64, n)
    close(results[1][1], g0 + 0.01 * np.sign(w64) + 0.04 * w64, dtype, what="ref grad")
    close(results[0][0], results[1][0], np.float64, n, "fast penalty")
    close(results[0][1], results[1][1], dtype, what="fast grad")
