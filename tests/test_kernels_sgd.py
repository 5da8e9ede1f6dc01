"""sgd_update (ops.sgd_update and optimizers.SGD.apply) against the Keras 3 SGD formulas in
float64, over 25 steps: v = m*v - lr*g; w += v (Nesterov: w += m*v - lr*g); decoupled weight
decay first: w -= lr*wd*w."""

import numpy as np
import pytest

import dlfast
from dlfast import ops
import reference as ref

CONFIGS = [
    dict(learning_rate=0.1, momentum=0.0, nesterov=False, weight_decay=0.0),
    dict(learning_rate=0.05, momentum=0.9, nesterov=False, weight_decay=0.0),
    dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.0),
    dict(learning_rate=0.02, momentum=0.5, nesterov=False, weight_decay=0.1),
    dict(learning_rate=0.02, momentum=0.7, nesterov=True, weight_decay=0.05),
    dict(learning_rate=0.3, momentum=0.0, nesterov=False, weight_decay=0.2),
]
IDS = ["plain", "momentum", "nesterov", "momentum-wd", "nesterov-wd", "plain-wd"]
SHAPES = [(1,), (7,), (33, 17), (4, 3, 5), (1000,)]
STEPS = 25


def tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-12


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_sgd_update_matches_keras(isa_threads, dtype, cfg, rng):
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    vs = [np.zeros_like(w) for w in ws]
    ref_w = [w.astype(np.float64) for w in ws]
    ref_v = [np.zeros(w.shape) for w in ws]
    for _ in range(STEPS):
        gs = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        ids = [id(w) for w in ws]
        ops.sgd_update(ws, gs, vs if cfg["momentum"] else None, **cfg)
        assert [id(w) for w in ws] == ids  # in place
        for i, g in enumerate(gs):
            ref_w[i], ref_v[i] = ref.sgd_step(ref_w[i], g, ref_v[i], cfg["learning_rate"],
                                              cfg["momentum"], cfg["nesterov"],
                                              cfg["weight_decay"])
    for w, rw in zip(ws, ref_w):
        np.testing.assert_allclose(w, rw, rtol=tol(dtype), atol=tol(dtype))
    if cfg["momentum"]:
        for v, rv in zip(vs, ref_v):
            np.testing.assert_allclose(v, rv, rtol=tol(dtype), atol=tol(dtype))


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_optimizer_sgd_apply_matches_keras(isa, dtype, cfg, rng):
    opt = dlfast.optimizers.SGD(learning_rate=cfg["learning_rate"], momentum=cfg["momentum"],
                                nesterov=cfg["nesterov"],
                                weight_decay=cfg["weight_decay"] or None)
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ref_w = [w.astype(np.float64) for w in ws]
    ref_v = [np.zeros(w.shape) for w in ws]
    for _ in range(STEPS):
        gs = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        opt.apply(gs, ws)
        for i, g in enumerate(gs):
            ref_w[i], ref_v[i] = ref.sgd_step(ref_w[i], g, ref_v[i], cfg["learning_rate"],
                                              cfg["momentum"], cfg["nesterov"],
                                              cfg["weight_decay"])
    assert opt.iterations == STEPS
    for w, rw in zip(ws, ref_w):
        np.testing.assert_allclose(w, rw, rtol=tol(dtype), atol=tol(dtype))


def test_sgd_defaults_are_keras(dtype):
    opt = dlfast.optimizers.SGD()
    assert opt.learning_rate == 0.01 and opt.momentum == 0.0 and opt.nesterov is False
    w = np.ones(3, dtype)
    opt.apply([np.full(3, 2.0, dtype)], [w])
    np.testing.assert_allclose(w, 1 - 0.01 * 2, rtol=1e-7)


def test_sgd_apply_gradients_pairs(dtype):
    opt = dlfast.optimizers.SGD(0.5)
    w = np.array([1.0, 2.0], dtype)
    opt.apply_gradients([(np.array([1.0, -1.0], dtype), w)])
    np.testing.assert_allclose(w, [0.5, 2.5])


def test_sgd_update_zero_size_and_float64_float32_mix(rng):
    w32 = rng.standard_normal(5).astype(np.float32)
    w64 = rng.standard_normal(4)
    g32, g64 = np.ones(5, np.float32), np.ones(4)
    e32, e64 = w32 - np.float32(0.1), w64 - 0.1
    ops.sgd_update([w32, np.zeros(0), w64], [g32, np.zeros(0), g64], None, 0.1)
    np.testing.assert_allclose(w32, e32, rtol=1e-6)
    np.testing.assert_allclose(w64, e64, rtol=1e-15)
