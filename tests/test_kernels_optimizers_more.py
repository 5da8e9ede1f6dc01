"""The fused RMSprop and Nadam kernels (ops.rmsprop_update, ops.nadam_update) against Keras 3's
update_step written plainly in float64 NumPy (tests/reference.py), over 25 steps, float32 and
float64, every ISA path and 1 and 2 threads, with and without momentum / centered / weight
decay, on sizes with odd tails, a 0-size array and sizes past the threading threshold; and
their argument checks (a bad entry raises before any array is written)."""

import numpy as np
import pytest

from dlfast import _core, ops
import reference as ref

STEPS = 25
# Odd sizes (vector tails on every ISA), a 0-size array, and 40 001 elements: past the size
# where the updates (~31k) go multi-threaded.
SHAPES = [(1,), (7,), (0,), (33, 17), (4, 3, 5), (40001,)]


def tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-12


def gradients(rng, dtype):
    # of varied scale from step to step, so that the adaptive denominators matter
    return [(rng.standard_normal(s) * rng.choice([0.01, 1.0, 30.0])).astype(dtype)
            for s in SHAPES]


def assert_close(got, want, dtype, what):
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol(dtype), atol=tol(dtype),
                                   err_msg=f"{what}, weight {i} of shape {a.shape}")


RMSPROP = [
    dict(learning_rate=0.01, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
         weight_decay=0.0),
    dict(learning_rate=0.003, rho=0.8, momentum=0.9, epsilon=1e-7, centered=False,
         weight_decay=0.1),
    dict(learning_rate=0.01, rho=0.9, momentum=0.0, epsilon=1e-7, centered=True,
         weight_decay=0.0),
    dict(learning_rate=0.02, rho=0.7, momentum=0.5, epsilon=1e-3, centered=True,
         weight_decay=0.05),
]


@pytest.mark.parametrize("config", range(len(RMSPROP)),
                         ids=["plain", "momentum-wd", "centered", "centered-momentum-wd"])
def test_rmsprop_matches_keras(isa_threads, dtype, config, rng):
    cfg = RMSPROP[config]
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    v, m, a = ([np.zeros_like(w) for w in ws] for _ in range(3))
    ref_w = [w.astype(np.float64) for w in ws]
    ref_v, ref_m, ref_a = ([np.zeros(w.shape) for w in ws] for _ in range(3))
    for _ in range(STEPS):
        gs = gradients(rng, dtype)
        ops.rmsprop_update(ws, gs, v, m, a, **cfg)
        for i, g in enumerate(gs):
            ref_w[i], ref_v[i], ref_m[i], ref_a[i] = ref.rmsprop_step(
                ref_w[i], g, ref_v[i], ref_m[i], ref_a[i], cfg["learning_rate"], cfg["rho"],
                cfg["momentum"], cfg["epsilon"], cfg["centered"], cfg["weight_decay"])
    assert_close(ws, ref_w, dtype, "rmsprop weights")
    assert_close(v, ref_v, dtype, "rmsprop velocities")
    assert_close(m, ref_m, dtype, "rmsprop momentums")  # stay zero without momentum
    assert_close(a, ref_a, dtype, "rmsprop average gradients")  # zero when not centered
    if not cfg["momentum"]:
        assert all(not np.any(x) for x in m)
    if not cfg["centered"]:
        assert all(not np.any(x) for x in a)


def test_rmsprop_unused_state_may_be_none(dtype, rng):
    w = rng.standard_normal(9).astype(dtype)
    g = rng.standard_normal(9).astype(dtype)
    v = np.zeros_like(w)
    want = ref.rmsprop_step(w, g, np.zeros(9), None, None, 0.01, 0.9, 0.0, 1e-7, False)
    ops.rmsprop_update([w], [g], [v], None, None, learning_rate=0.01)
    np.testing.assert_allclose(w, want[0], rtol=tol(dtype), atol=tol(dtype))
    np.testing.assert_allclose(v, want[1], rtol=tol(dtype), atol=tol(dtype))


def test_rmsprop_first_step_by_hand(dtype):
    # From zero state v = 0.1 g^2, so the step is lr g / sqrt(0.1 g^2 + eps): about
    # sqrt(10) lr sign(g) for |g| >> sqrt(10 eps) = 1e-3, whatever the gradient's scale.
    w = np.zeros(4, dtype)
    g = np.array([1e-2, -2.0, 50.0, -7e-1], dtype)
    ops.rmsprop_update([w], [g], [np.zeros_like(w)], learning_rate=0.1)
    g64 = g.astype(np.float64)
    np.testing.assert_allclose(w, -0.1 * g64 / np.sqrt(0.1 * g64 ** 2 + 1e-7), rtol=2e-6)
    np.testing.assert_allclose(w[1:], -0.1 * np.sqrt(10) * np.sign(g[1:]), rtol=2e-4)


NADAM = [
    dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0),
    dict(learning_rate=0.05, beta_1=0.6, beta_2=0.9, epsilon=1e-3, weight_decay=0.1),
]


@pytest.mark.parametrize("config", range(len(NADAM)), ids=["defaults", "other-wd"])
def test_nadam_matches_keras(isa_threads, dtype, config, rng):
    cfg = NADAM[config]
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    m, v = ([np.zeros_like(w) for w in ws] for _ in range(2))
    ref_w = [w.astype(np.float64) for w in ws]
    ref_m, ref_v = ([np.zeros(w.shape) for w in ws] for _ in range(2))
    for t in range(1, STEPS + 1):
        gs = gradients(rng, dtype)
        ops.nadam_update(ws, gs, m, v, **cfg, step=t,
                         u_product=ref.nadam_u_product(cfg["beta_1"], t))
        for i, g in enumerate(gs):
            ref_w[i], ref_m[i], ref_v[i] = ref.nadam_step(
                ref_w[i], g, ref_m[i], ref_v[i], t, cfg["learning_rate"], cfg["beta_1"],
                cfg["beta_2"], cfg["epsilon"], cfg["weight_decay"])
    assert_close(ws, ref_w, dtype, "nadam weights")
    assert_close(m, ref_m, dtype, "nadam momentums")
    assert_close(v, ref_v, dtype, "nadam velocities")


def test_nadam_first_step_by_hand(dtype):
    # t = 1 from zero state, beta_1 = 0.9, beta_2 = 0.999: m = 0.1 g, v = 0.001 g^2,
    # u_1 = 0.9 (1 - 0.48) = 0.468, u_2 = 0.9 (1 - 0.5 * 0.9216) = 0.48528;
    # m_hat = u_2 0.1 g / (1 - u_1 u_2) + (1 - u_1) g / (1 - u_1); v_hat = g^2.
    g = np.array([0.5, -3.0, 2e-3], dtype)
    w = np.zeros(3, dtype)
    u1, u2 = 0.468, 0.48528
    m_hat = u2 * 0.1 * g.astype(np.float64) / (1 - u1 * u2) + g.astype(np.float64)
    want = -0.01 * m_hat / (np.abs(g.astype(np.float64)) + 1e-7)
    ops.nadam_update([w], [g], [np.zeros_like(w)], [np.zeros_like(w)], learning_rate=0.01,
                     step=1, u_product=u1)
    np.testing.assert_allclose(w, want, rtol=2e-5)


def test_updates_float32_and_float64_in_one_call(rng):
    ws = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(3)]
    gs = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(3)]
    want = [ref.rmsprop_step(w, g, np.zeros(w.shape), np.zeros(w.shape), np.zeros(w.shape),
                             0.01, 0.9, 0.5, 1e-7, True)[0] for w, g in zip(ws, gs)]
    ops.rmsprop_update(ws, gs, [np.zeros_like(w) for w in ws], [np.zeros_like(w) for w in ws],
                       [np.zeros_like(w) for w in ws], learning_rate=0.01, momentum=0.5,
                       centered=True)
    for w, wt in zip(ws, want):
        np.testing.assert_allclose(w, wt, rtol=tol(w.dtype), atol=tol(w.dtype))
    want = [ref.nadam_step(w, g, 0.0, 0.0, 1, 0.001, 0.9, 0.999, 1e-7)[0]
            for w, g in zip(ws, gs)]
    ops.nadam_update(ws, gs, [np.zeros_like(w) for w in ws], [np.zeros_like(w) for w in ws],
                     step=1, u_product=ref.nadam_u_product(0.9, 1))
    for w, wt in zip(ws, want):
        np.testing.assert_allclose(w, wt, rtol=tol(w.dtype), atol=tol(w.dtype))


# --- argument checks ----------------------------------------------------------------------

def _rmsprop(ws, gs, states, **kw):
    _core.rmsprop_update(ws, gs, *states, kw.get("lr", 0.01), kw.get("rho", 0.9),
                         kw.get("momentum", 0.5), kw.get("epsilon", 1e-7),
                         kw.get("centered", True), kw.get("wd", 0.0))


def _nadam(ws, gs, states, **kw):
    _core.nadam_update(ws, gs, *states, kw.get("lr", 0.01), kw.get("beta_1", 0.9),
                       kw.get("beta_2", 0.999), kw.get("epsilon", 1e-7), kw.get("wd", 0.0),
                       kw.get("step", 1), kw.get("u_product", 0.468))


@pytest.mark.parametrize("name", ["rmsprop", "nadam"])
def test_bad_entry_changes_nothing(name):
    update, n_states = (_rmsprop, 3) if name == "rmsprop" else (_nadam, 2)
    ws = [np.ones(3), np.ones(4)]
    gs = [np.ones(3), np.ones(3)]  # the second has the wrong shape
    states = [[np.zeros(3), np.zeros(4)] for _ in range(n_states)]
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(3,\), expected the weight's "
                                         r"\(4,\)"):
        update(ws, gs, states)
    states[-1][0] = np.zeros(3, np.float32)  # a state array of the wrong dtype
    with pytest.raises(TypeError, match=r"\[0\]' must be a float64 numpy array"):
        update(ws, [np.ones(3), np.ones(4)], states)
    for w in ws:
        np.testing.assert_array_equal(w, 1.0)
    for s in states:
        for a in s:
            np.testing.assert_array_equal(a, 0.0)


def test_rmsprop_bad_arguments():
    w, g = [np.ones(3)], [np.ones(3)]
    z = lambda: [np.zeros(3)]  # noqa: E731
    with pytest.raises(ValueError, match=r"rmsprop_update: momentum != 0 needs a list of "
                                         r"momentums"):
        _core.rmsprop_update(w, g, z(), None, z(), 0.01, 0.9, 0.5, 1e-7, True, 0.0)
    with pytest.raises(ValueError, match=r"rmsprop_update: centered=True needs a list of "
                                         r"average_gradients"):
        _core.rmsprop_update(w, g, z(), z(), None, 0.01, 0.9, 0.5, 1e-7, True, 0.0)
    for kw, match in [(dict(lr=-1.0), r"learning_rate must be a finite number >= 0, got -1.0"),
                      (dict(rho=1.5), r"rho must be a finite number in \[0, 1\], got 1.5"),
                      (dict(momentum=-0.1), r"momentum must be a finite number in \[0, 1\]"),
                      (dict(epsilon=float("nan")), r"epsilon must be a finite number >= 0"),
                      (dict(wd=-0.5), r"weight_decay must be a finite number >= 0")]:
        with pytest.raises(ValueError, match="rmsprop_update: " + match):
            _rmsprop(w, g, [z(), z(), z()], **kw)
    v = np.zeros(3)
    with pytest.raises(ValueError, match=r"momentums\[0\] shares its memory with another array "
                                         r"of parameter 0"):
        _rmsprop(w, g, [[v], [v], z()])
    with pytest.raises(ValueError, match=r"average_gradients\[0\] shares its memory"):
        _rmsprop(w, g, [z(), [v], [v]])
    with pytest.raises(ValueError, match=r"got 1 weights but 2 velocities"):
        _rmsprop(w, g, [[np.zeros(3), np.zeros(3)], z(), z()])
    np.testing.assert_array_equal(w[0], 1.0)


def test_nadam_bad_arguments():
    w, g = [np.ones(3)], [np.ones(3)]
    z = lambda: [np.zeros(3)]  # noqa: E731
    for kw, match in [(dict(step=0), r"step \(the update's 1-based count\) must be >= 1, got 0"),
                      (dict(u_product=1.0), r"u_product must be a finite number in \[0, 1\), "
                                            r"got 1.0"),
                      (dict(u_product=-0.1), r"u_product must be a finite number in \[0, 1\)"),
                      (dict(beta_1=1.0), r"beta_1 must be a finite number in \[0, 1\)"),
                      (dict(beta_2=1.0), r"beta_2 must be a finite number in \[0, 1\)"),
                      (dict(lr=float("inf")), r"learning_rate must be a finite number >= 0")]:
        with pytest.raises(ValueError, match="nadam_update: " + match):
            _nadam(w, g, [z(), z()], **kw)
    m = np.zeros(3)
    with pytest.raises(ValueError, match=r"velocities\[0\] shares its memory"):
        _nadam(w, g, [[m], [m]])
    with pytest.raises(ValueError, match=r"momentums\[0\] shares its memory"):
        _nadam(w, g, [w, z()])
    np.testing.assert_array_equal(w[0], 1.0)
