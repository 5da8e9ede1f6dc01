"""The fused optimizer kernels (ops.adam_update, adamax_update, adadelta_update and SGD-G2's
_core.sgdg2_probe / sgdg2_dots / sgdg2_step) against Keras 3's formulas written plainly in
float64 NumPy (tests/reference.py), over 25 steps, float32 and float64, every ISA path and
1 and 2 threads, on sizes with odd tails and sizes past the threading thresholds; and their
argument checks (a bad entry raises before any array is written)."""

import numpy as np
import pytest

from dlfast import _core, ops
import reference as ref

STEPS = 25
# Odd sizes (vector tails on every ISA), a 0-size array, and 40 001 / 70 001 elements: past the
# size where the updates (~31k) and the SGD-G2 passes (~62k) go multi-threaded.
SHAPES = [(1,), (7,), (0,), (33, 17), (4, 3, 5), (40001,), (70001,)]


def tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-12


# name -> (ops function, its state arguments, reference step, hyper-parameter configs)
ADAPTIVE = {
    "adam": (ops.adam_update, ("momentums", "velocities"),
             lambda w, g, s, t, c: ref.adam_step(w, g, s[0], s[1], t, c["learning_rate"],
                                                 c["beta_1"], c["beta_2"], c["epsilon"],
                                                 c["weight_decay"]),
             [dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0),
              dict(learning_rate=0.05, beta_1=0.5, beta_2=0.9, epsilon=1e-3, weight_decay=0.1)]),
    "adamax": (ops.adamax_update, ("momentums", "norms"),
               lambda w, g, s, t, c: ref.adamax_step(w, g, s[0], s[1], t, c["learning_rate"],
                                                     c["beta_1"], c["beta_2"], c["epsilon"],
                                                     c["weight_decay"]),
               [dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                     weight_decay=0.0),
                dict(learning_rate=0.05, beta_1=0.6, beta_2=0.8, epsilon=1e-2,
                     weight_decay=0.2)]),
    "adadelta": (ops.adadelta_update, ("accumulated_grads", "accumulated_delta_vars"),
                 lambda w, g, s, t, c: ref.adadelta_step(w, g, s[0], s[1], c["learning_rate"],
                                                         c["rho"], c["epsilon"],
                                                         c["weight_decay"]),
                 [dict(learning_rate=1.0, rho=0.95, epsilon=1e-7, weight_decay=0.0),
                  dict(learning_rate=0.5, rho=0.7, epsilon=1e-4, weight_decay=0.05)]),
}
CASES = [(name, i) for name in ADAPTIVE for i in range(2)]


@pytest.mark.parametrize("name,config", CASES, ids=[f"{n}-cfg{i}" for n, i in CASES])
def test_adaptive_update_matches_keras(isa_threads, dtype, name, config, rng):
    fn, _, ref_step, configs = ADAPTIVE[name]
    cfg = configs[config]
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    states = [[np.zeros_like(w) for w in ws] for _ in range(2)]
    ref_w = [w.astype(np.float64) for w in ws]
    ref_s = [[np.zeros(w.shape) for w in ws] for _ in range(2)]
    for t in range(1, STEPS + 1):
        # gradients of varied scale, so the adaptive denominators matter
        gs = [(rng.standard_normal(s) * rng.choice([0.01, 1.0, 30.0])).astype(dtype)
              for s in SHAPES]
        step = {} if name == "adadelta" else {"step": t}
        fn(ws, gs, *states, **cfg, **step)
        for i, g in enumerate(gs):
            ref_w[i], ref_s[0][i], ref_s[1][i] = ref_step(ref_w[i], g,
                                                          (ref_s[0][i], ref_s[1][i]), t, cfg)
    for i, (w, rw) in enumerate(zip(ws, ref_w)):
        assert w.dtype == dtype
        np.testing.assert_allclose(w, rw, rtol=tol(dtype), atol=tol(dtype),
                                   err_msg=f"{name} weight {i} of shape {w.shape}")
        for k in range(2):
            np.testing.assert_allclose(states[k][i], ref_s[k][i], rtol=tol(dtype),
                                       atol=tol(dtype), err_msg=f"{name} state {k}, weight {i}")


def test_adam_step_is_the_bias_corrected_step(dtype):
    # At t = 1 from zero state Adam's step is lr * g / (|g| + eps/sqrt(1 - beta_2)) ~ lr*sign(g),
    # whatever the gradient's scale: the bias correction at work.
    w = np.zeros(4, dtype)
    g = np.array([1e-3, -2.0, 50.0, -7e-2], dtype)
    ops.adam_update([w], [g], [np.zeros_like(w)], [np.zeros_like(w)], learning_rate=0.1,
                    step=1)
    want = -0.1 * g / (np.abs(g) + 1e-7 / np.sqrt(1 - 0.999))
    np.testing.assert_allclose(w, want, rtol=1e-5)


def test_adamax_nan_gradient_is_not_hidden(dtype):
    w, m, u = np.ones(3, dtype), np.zeros(3, dtype), np.ones(3, dtype)
    ops.adamax_update([w], [np.array([np.nan, 1, 1], dtype)], [m], [u], step=1)
    assert np.isnan(w[0]) and np.isnan(u[0]) and np.all(np.isfinite(w[1:]))


def test_updates_float32_and_float64_in_one_call(rng):
    w32, w64 = rng.standard_normal(9).astype(np.float32), rng.standard_normal(5)
    g32, g64 = rng.standard_normal(9).astype(np.float32), rng.standard_normal(5)
    want32 = ref.adam_step(w32, g32, 0.0, 0.0, 1, 0.01, 0.9, 0.999, 1e-7)[0]
    want64 = ref.adam_step(w64, g64, 0.0, 0.0, 1, 0.01, 0.9, 0.999, 1e-7)[0]
    zeros = lambda: [np.zeros(9, np.float32), np.zeros(5)]
    ops.adam_update([w32, w64], [g32, g64], zeros(), zeros(), learning_rate=0.01, step=1)
    np.testing.assert_allclose(w32, want32, rtol=1e-6)
    np.testing.assert_allclose(w64, want64, rtol=1e-14)


# --- SGD-G2 passes ----------------------------------------------------------------------------

def test_sgdg2_probe_dots_step_match_numpy(isa_threads, dtype, rng):
    shapes = SHAPES + [(130001,)]  # the inner products go multi-threaded from ~125k
    ws = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    saved = [np.full(s, 7.0, dtype) for s in shapes]  # stale content must be overwritten
    theta = [w.astype(np.float64) for w in ws]
    h, h_new, wd = 0.3, 0.12, 0.25
    _core.sgdg2_probe(ws, gs, saved, h)
    for w, s, g, th in zip(ws, saved, gs, theta):
        np.testing.assert_array_equal(s, g)
        np.testing.assert_allclose(w, th - h * g.astype(np.float64), rtol=tol(dtype),
                                   atol=tol(dtype))
    probe = [(g.astype(np.float64) * rng.uniform(0.5, 1.5, g.shape)).astype(dtype) for g in gs]
    dot, sq = _core.sgdg2_dots(saved, probe)
    g_all = np.concatenate([g.ravel().astype(np.float64) for g in gs])
    p_all = np.concatenate([p.ravel().astype(np.float64) for p in probe])
    diff = g_all - p_all
    # double accumulation: as exact as a float64 sum, for float32 input too
    np.testing.assert_allclose(dot, np.sum(diff * g_all), rtol=1e-10)
    np.testing.assert_allclose(sq, np.sum(diff * diff), rtol=1e-10)
    _core.sgdg2_step(ws, saved, h, h_new, wd)
    for w, g, th in zip(ws, gs, theta):
        want = th * (1 - h_new * wd) - h_new * g.astype(np.float64)
        np.testing.assert_allclose(w, want, rtol=tol(dtype) * 5, atol=tol(dtype) * 5)


def test_sgdg2_dots_do_not_depend_on_threads(isa, rng):
    import dlfast
    g = rng.standard_normal(300001).astype(np.float32)
    p = (g * rng.uniform(0, 2, g.shape)).astype(np.float32)
    got = []
    for threads in (1, 2):
        dlfast.set_num_threads(threads)
        got.append(_core.sgdg2_dots([g.copy()], [p]))
    # only the order of the partial sums differs: float64 rounding, not float32
    np.testing.assert_allclose(got[0], got[1], rtol=1e-12)


def test_sgdg2_dots_of_empty_lists_are_zero():
    assert _core.sgdg2_dots([], []) == (0.0, 0.0)


# --- bad input: a clear error, and nothing written ----------------------------------------

def _adam(ws, gs, ms, vs, **kw):
    ops.adam_update(ws, gs, ms, vs, **{"step": 1, **kw})


@pytest.mark.parametrize("name", list(ADAPTIVE))
def test_bad_entry_changes_nothing(name):
    fn, state_names, _, _ = ADAPTIVE[name]
    ws = [np.ones(3), np.ones(3)]
    states = [[np.zeros(3), np.zeros(3)], [np.zeros(3), np.zeros(3)]]
    step = {} if name == "adadelta" else {"step": 1}
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(4,\), expected the weight's "
                                         r"\(3,\)"):
        fn(ws, [np.ones(3), np.ones(4)], *states, **step)
    with pytest.raises(ValueError, match=rf"{state_names[1]}\[1\] has shape \(2,\)"):
        fn(ws, [np.ones(3), np.ones(3)], states[0], [np.zeros(3), np.zeros(2)], **step)
    with pytest.raises(ValueError, match=rf"got 2 weights but 1 {state_names[0]}"):
        fn(ws, [np.ones(3), np.ones(3)], states[0][:1], states[1], **step)
    with pytest.raises(TypeError, match=rf"argument '{state_names[0]}\[1\]' must be a float64 "
                                        r"numpy array .*got float32"):
        fn(ws, [np.ones(3), np.ones(3)], [np.zeros(3), np.zeros(3, np.float32)], states[1],
           **step)
    for w in ws:
        np.testing.assert_array_equal(w, 1.0)
    for s in states[0] + states[1]:
        np.testing.assert_array_equal(s, 0.0)


def test_adam_bad_arguments():
    w, g = [np.ones(3)], [np.ones(3)]
    z = lambda: [np.zeros(3)]
    with pytest.raises(ValueError, match=r"adam_update: beta_1 must be a finite number in "
                                         r"\[0, 1\), got -0.1"):
        _adam(w, g, z(), z(), beta_1=-0.1)
    with pytest.raises(ValueError, match=r"beta_2 must be a finite number in \[0, 1\), got 1.0"):
        _adam(w, g, z(), z(), beta_2=1.0)
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number >= 0, got -1"):
        _adam(w, g, z(), z(), learning_rate=-1)
    with pytest.raises(ValueError, match=r"epsilon must be a finite number >= 0, got nan"):
        _adam(w, g, z(), z(), epsilon=float("nan"))
    with pytest.raises(ValueError, match=r"weight_decay must be a finite number >= 0"):
        _adam(w, g, z(), z(), weight_decay=-0.5)
    with pytest.raises(ValueError, match=r"step \(the update's 1-based count\) must be >= 1, "
                                         r"got 0"):
        _adam(w, g, z(), z(), step=0)
    shared = np.zeros(3)
    with pytest.raises(ValueError, match=r"velocities\[0\] shares its memory with another "
                                         r"array of parameter 0"):
        _adam(w, g, [shared], [shared])
    with pytest.raises(ValueError, match=r"momentums\[0\] shares its memory"):
        _adam(w, g, w, z())
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"argument 'momentums\[0\]' is written to and must be "
                                         r"writable"):
        _adam(w, g, [ro], z())
    with pytest.raises(ValueError, match=r"argument 'velocities\[0\]' must be C-contiguous"):
        _adam(w, g, z(), [np.zeros(6)[::2]])
    with pytest.raises(TypeError, match=r"adam_update: grads must be a list of arrays, got "
                                        r"float64 array"):
        _core.adam_update(w, np.ones(3), z(), z(), 0.1, 0.9, 0.999, 1e-7, 0.0, 1)
    np.testing.assert_array_equal(w[0], 1.0)


def test_adamax_adadelta_bad_arguments():
    w, g = [np.ones(3)], [np.ones(3)]
    z = lambda: [np.zeros(3)]
    with pytest.raises(ValueError, match=r"adamax_update: beta_2 must be a finite number in "
                                         r"\[0, 1\], got 1.5"):
        ops.adamax_update(w, g, z(), z(), beta_2=1.5)
    with pytest.raises(ValueError, match=r"adadelta_update: rho must be a finite number in "
                                         r"\[0, 1\], got -0.5"):
        ops.adadelta_update(w, g, z(), z(), rho=-0.5)
    with pytest.raises(ValueError, match=r"adadelta_update: epsilon must be a finite number "
                                         r">= 0, got -1"):
        ops.adadelta_update(w, g, z(), z(), epsilon=-1)
    np.testing.assert_array_equal(w[0], 1.0)


def test_sgdg2_bad_arguments():
    w, g = [np.ones(3), np.ones(2)], [np.ones(3), np.ones(2)]
    with pytest.raises(ValueError, match=r"sgdg2_probe: saved\[1\] has shape \(3,\), expected "
                                         r"the weight's \(2,\)"):
        _core.sgdg2_probe(w, g, [np.zeros(3), np.zeros(3)], 0.1)
    with pytest.raises(ValueError, match=r"sgdg2_probe: step_size must be a finite number >= 0, "
                                         r"got -0.1"):
        _core.sgdg2_probe(w, g, [np.zeros(3), np.zeros(2)], -0.1)
    with pytest.raises(ValueError, match=r"sgdg2_dots: got 2 weights but 1 grads"):
        _core.sgdg2_dots(w, g[:1])
    with pytest.raises(ValueError, match=r"sgdg2_step: h_new must be a finite number >= 0, "
                                         r"got inf"):
        _core.sgdg2_step(w, g, 0.1, float("inf"), 0.0)
    for a in w:
        np.testing.assert_array_equal(a, 1.0)
