"""dlfast.optimizers (Adam, Adamax, Adadelta, SGDG2) and dlfast.optimizers.schedules: each
optimizer's apply() over 25 steps against its formula written plainly in float64 NumPy
(tests/reference.py), Keras's defaults and configs, schedules at chosen steps against their
formulas, SGD-G2's closure protocol (by hand and through fit/train_on_batch), SGD-G2 against
plain SGD on least squares, and bad arguments."""

import math

import numpy as np
import pytest

import dlfast
from dlfast import optimizers
from dlfast.layers import Dense, Input
from dlfast.optimizers import schedules
import reference as ref

STEPS = 25
SHAPES = [(1,), (7,), (33, 17), (4, 3, 5), (40001,)]


def tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-12


# --- apply() against the formulas ----------------------------------------------------------

def _run_against_reference(opt, ref_step, dtype, rng, lr_at=None):
    """25 apply() steps on SHAPES; ref_step(w, g, state, t, lr) -> (w, *state)."""
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ref_w = [w.astype(np.float64) for w in ws]
    ref_state = [(np.zeros(s), np.zeros(s)) for s in SHAPES]
    for t in range(1, STEPS + 1):
        gs = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        lr = lr_at(t - 1) if lr_at else opt.learning_rate  # schedules see the 0-based count
        opt.apply(gs, ws)
        for i, g in enumerate(gs):
            ref_w[i], *state = ref_step(ref_w[i], g, ref_state[i], t, lr)
            ref_state[i] = tuple(state)
    assert opt.iterations == STEPS
    for i, (w, rw) in enumerate(zip(ws, ref_w)):
        np.testing.assert_allclose(w, rw, rtol=tol(dtype), atol=tol(dtype),
                                   err_msg=f"{opt.name}: weight {i}")


@pytest.mark.parametrize("wd", [None, 0.1])
def test_adam_apply(isa, dtype, wd, rng):
    opt = optimizers.Adam(learning_rate=0.02, beta_1=0.8, beta_2=0.99, weight_decay=wd)
    _run_against_reference(opt, lambda w, g, s, t, lr: ref.adam_step(
        w, g, s[0], s[1], t, lr, 0.8, 0.99, 1e-7, wd or 0.0), dtype, rng)


@pytest.mark.parametrize("wd", [None, 0.1])
def test_adamax_apply(isa, dtype, wd, rng):
    opt = optimizers.Adamax(learning_rate=0.02, beta_2=0.95, epsilon=1e-5, weight_decay=wd)
    _run_against_reference(opt, lambda w, g, s, t, lr: ref.adamax_step(
        w, g, s[0], s[1], t, lr, 0.9, 0.95, 1e-5, wd or 0.0), dtype, rng)


@pytest.mark.parametrize("wd", [None, 0.1])
def test_adadelta_apply(isa, dtype, wd, rng):
    opt = optimizers.Adadelta(learning_rate=1.0, rho=0.9, weight_decay=wd)
    _run_against_reference(opt, lambda w, g, s, t, lr: ref.adadelta_step(
        w, g, s[0], s[1], lr, 0.9, 1e-7, wd or 0.0), dtype, rng)


def test_adam_with_a_schedule_uses_the_step_count(dtype, rng):
    sched = schedules.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.5, staircase=True)
    opt = optimizers.Adam(learning_rate=sched)
    _run_against_reference(opt, lambda w, g, s, t, lr: ref.adam_step(
        w, g, s[0], s[1], t, lr, 0.9, 0.999, 1e-7), dtype, rng,
        lr_at=lambda step: 0.05 * 0.5 ** (step // 4))


def test_state_lives_in_slots_with_keras_names(rng):
    w = rng.standard_normal(5)
    g = rng.standard_normal(5)
    for opt, names in [(optimizers.Adam(), ("momentum", "velocity")),
                       (optimizers.Adamax(), ("momentum", "norm")),
                       (optimizers.Adadelta(), ("accumulated_grad", "accumulated_delta_var"))]:
        opt.apply([g], [w])
        state = {name: arr for (wid, name), (_, arr) in opt._slots.items() if wid == id(w)}
        assert sorted(state) == sorted(names)
        assert all(np.any(a != 0) for a in state.values())
    assert optimizers.Adam()._slots == {}  # nothing before the first step


# --- defaults, names, configs -----------------------------------------------------------

KERAS_DEFAULTS = {
    "adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    "adamax": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
    "adadelta": dict(learning_rate=0.001, rho=0.95, epsilon=1e-7),
    "sgdg2": dict(learning_rate=0.01, beta=0.9),
    "sgd": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
}


@pytest.mark.parametrize("name", list(KERAS_DEFAULTS))
def test_get_by_name_has_keras_defaults_and_config_round_trips(name):
    opt = optimizers.get(name)
    assert optimizers.get(name.upper()).__class__ is opt.__class__
    cfg = opt.get_config()
    for key, value in KERAS_DEFAULTS[name].items():
        assert cfg[key] == value, key
    assert cfg["weight_decay"] is None
    again = type(opt).from_config(cfg)
    assert again.get_config() == cfg


def test_config_round_trips_a_schedule():
    sched = schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    opt = optimizers.Adamax(learning_rate=sched, weight_decay=0.01)
    cfg = opt.get_config()
    assert cfg["learning_rate"] == {"class_name": "InverseTimeDecay",
                                    "config": {"initial_learning_rate": 0.1, "decay_steps": 10,
                                               "decay_rate": 0.5, "staircase": True,
                                               "name": "InverseTimeDecay"}}
    again = optimizers.Adamax.from_config(cfg)
    assert isinstance(again.learning_rate, schedules.InverseTimeDecay)
    assert again.learning_rate(25) == pytest.approx(0.1 / (1 + 0.5 * 2))
    assert again.get_config() == cfg


def test_unknown_optimizer_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown optimizer 'lion'.*'adadelta', 'adam', "
                                         r"'adamax', 'adamw', 'nadam', 'rmsprop', 'sgd', "
                                         r"'sgdg2'"):
        optimizers.get("lion")


@pytest.mark.parametrize("make,match", [
    (lambda: optimizers.Adam(beta_1=-0.1), r"Adam: beta_1 must be a finite number in \[0, 1\)"),
    (lambda: optimizers.Adam(beta_2=1.0), r"Adam: beta_2 must be a finite number in \[0, 1\)"),
    (lambda: optimizers.Adam(epsilon=-1e-7), r"Adam: epsilon must be a finite number >= 0"),
    (lambda: optimizers.Adam(learning_rate=-0.1), r"adam: learning_rate must be a finite "
                                                  r"number >= 0, got -0.1"),
    (lambda: optimizers.Adamax(beta_2=1.01), r"Adamax: beta_2 must be a finite number in "
                                             r"\[0, 1\], got 1.01"),
    (lambda: optimizers.Adadelta(rho=-0.5), r"Adadelta: rho must be a finite number in \[0, 1\]"),
    (lambda: optimizers.Adadelta(weight_decay=-1), r"adadelta: weight_decay must be a finite "
                                                   r"number >= 0, got -1.0"),
    (lambda: optimizers.SGD(weight_decay=float("inf")), r"SGD: weight_decay must be a finite"),
    (lambda: optimizers.SGDG2(beta=1.0), r"SGDG2: beta must be a finite number in \[0, 1\)"),
    (lambda: optimizers.SGDG2(learning_rate=0.0), r"SGDG2: learning_rate \(the initial step\) "
                                                  r"must be > 0"),
    (lambda: optimizers.Adam(beta_1="big"), r"Adam: beta_1 must be a number, got 'big'"),
])
def test_bad_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unsupported_options_are_refused():
    with pytest.raises(NotImplementedError, match=r"amsgrad=True is not supported"):
        optimizers.Adam(amsgrad=True)
    with pytest.raises(TypeError, match=r"SGDG2: learning_rate must be a number"):
        optimizers.SGDG2(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.9))


@pytest.mark.parametrize("name", ["adam", "adamax", "adadelta"])
def test_bad_apply_changes_no_weight(name):
    opt = optimizers.get(name)
    w0, w1 = np.ones(3), np.ones(4)
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(3,\), expected the weight's "
                                         r"\(4,\)"):
        opt.apply([np.ones(3), np.ones(3)], [w0, w1])
    with pytest.raises(TypeError, match=r"grads\[0\]' must be a float64 numpy array"):
        opt.apply([np.ones(3, np.float32), np.ones(4)], [w0, w1])
    with pytest.raises(ValueError, match=r"got 1 grads for 2 weights"):
        opt.apply([np.ones(3)], [w0, w1])
    np.testing.assert_array_equal(w0, 1.0)
    np.testing.assert_array_equal(w1, 1.0)
    assert opt.iterations == 0


# --- schedules --------------------------------------------------------------------------

@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    s = schedules.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.6, staircase=staircase)
    for step in (0, 1, 6, 7, 8, 20, 100):
        p = step // 7 if staircase else step / 7
        assert s(step) == pytest.approx(0.1 * 0.6 ** p, rel=1e-14), step
    assert s(7) == pytest.approx(0.06)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay(staircase):
    s = schedules.InverseTimeDecay(0.5, decay_steps=3, decay_rate=2.0, staircase=staircase)
    for step in (0, 1, 2, 3, 4, 9, 1000):
        p = step // 3 if staircase else step / 3
        assert s(step) == pytest.approx(0.5 / (1 + 2.0 * p), rel=1e-14), step
    # the course's 1/t decay: decay_steps=1, the step falls like 1/t
    one_over_t = schedules.InverseTimeDecay(1.0, decay_steps=1, decay_rate=1.0)
    assert [one_over_t(t) for t in (0, 1, 3, 9)] == pytest.approx([1, 1 / 2, 1 / 4, 1 / 10])


def test_piecewise_constant_decay_boundaries_belong_to_the_lower_piece():
    s = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [s(t) for t in (0, 9, 10, 11, 19, 20, 21, 10**6)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5,
                                                                 0.1, 0.1]
    assert s.get_config() == {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1],
                              "name": "PiecewiseConstant"}


def test_schedule_drives_sgd_in_fit():
    # SGD with PiecewiseConstantDecay: lr 0 for the first two steps, then 0.1; with lr 0 the
    # weights must not move, afterwards they must.
    sched = schedules.PiecewiseConstantDecay([1], [0.0, 0.1])
    model = dlfast.Sequential([Input((3,)), Dense(2)], dtype="float64")
    model.compile(optimizer=optimizers.SGD(sched), loss="mse")
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    w0 = model.get_weights()
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), w0):
        np.testing.assert_array_equal(a, b)
    model.train_on_batch(x, y)
    assert not np.array_equal(model.get_weights()[1], w0[1])


@pytest.mark.parametrize("make,match", [
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.9), r"ExponentialDecay: decay_steps must be "
                                                      r"> 0, got 0"),
    (lambda: schedules.InverseTimeDecay(0.1, 10, -1), r"InverseTimeDecay: decay_rate must be "
                                                      r">= 0, got -1"),
    (lambda: schedules.InverseTimeDecay(-0.1, 10, 1), r"initial_learning_rate must be >= 0"),
    (lambda: schedules.ExponentialDecay("a", 10, 1), r"initial_learning_rate must be a finite "
                                                     r"number, got 'a'"),
    (lambda: schedules.PiecewiseConstantDecay([1, 2], [1.0, 0.5]),
     r"boundaries must have one entry fewer than values, got 2 boundaries and 2 values"),
    (lambda: schedules.PiecewiseConstantDecay([5, 2], [1.0, 0.5, 0.1]),
     r"boundaries must be strictly increasing, got \[5, 2\]"),
    (lambda: schedules.PiecewiseConstantDecay([5], [1.0, -0.5]), r"values must be >= 0"),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.9)(-1), r"the step must be a number >= 0, "
                                                           r"got -1"),
    (lambda: schedules.deserialize({"class_name": "Nope", "config": {}}),
     r"deserialize: expected \{'class_name': one of"),
])
def test_schedule_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- SGD-G2 -------------------------------------------------------------------------------

def _least_squares(rng, n=256, d=10, noise=0.0):
    x = rng.standard_normal((n, d)) * rng.uniform(0.3, 3.0, d)  # condition number ~ 100
    y = x @ rng.standard_normal((d, 1)) + 0.5 + noise * rng.standard_normal((n, 1))
    return x, y


def test_sgdg2_apply_matches_spec_formula(isa, dtype, rng):
    # f(theta) = 0.5 |A theta - b|^2 over two parameter arrays; the closure writes the gradient
    # at the current weights into the grads arrays, as the protocol says.
    a = rng.standard_normal((30, 12)) * rng.uniform(0.2, 2.0, 12)
    b = rng.standard_normal(30)
    ws = [rng.standard_normal(7).astype(dtype), rng.standard_normal(5).astype(dtype)]
    gs = [np.zeros(7, dtype), np.zeros(5, dtype)]

    def grad(theta):
        return a.T @ (a @ theta - b)

    def closure():
        g = grad(np.concatenate(ws).astype(np.float64))
        gs[0][...], gs[1][...] = g[:7], g[7:]
        return 0.0

    opt = optimizers.SGDG2(learning_rate=1e-3, beta=0.8)
    theta, h = np.concatenate(ws).astype(np.float64), 1e-3
    for _ in range(STEPS):
        closure()
        g = grad(theta)
        h = ref.sgdg2_next_step(h, g, grad(theta - h * g), 0.8)
        theta = theta - h * g
        opt.apply(gs, ws, closure=closure)
        assert opt.step_size == pytest.approx(h, rel=1e-3 if dtype == np.float32 else 1e-9)
    assert opt.iterations == STEPS
    np.testing.assert_allclose(np.concatenate(ws), theta, rtol=1e-3 if dtype == np.float32
                               else 1e-9, atol=1e-4 if dtype == np.float32 else 1e-10)
    assert h > 3 * 1e-3  # the step did adapt, away from the initial one


def test_sgdg2_train_on_batch_is_one_spec_step(rng):
    # A linear model with mse: gradients in closed form. One train_on_batch = one SGD-G2 step
    # with its probe on the same batch.
    x, y = _least_squares(rng, n=16, d=4)
    model = dlfast.Sequential([Input((4,)), Dense(1)], dtype="float64")
    opt = optimizers.SGDG2(learning_rate=0.01)
    model.compile(optimizer=opt, loss="mse")
    W, bias = (w.copy() for w in model.get_weights())

    def grad(theta):  # mse = mean((x W + b - y)^2); theta = [W.ravel(), b]
        r = x @ theta[:4, None] + theta[4] - y
        return np.concatenate([(2 / len(x)) * (x.T @ r).ravel(), [(2 / len(x)) * r.sum()]])

    theta = np.concatenate([W.ravel(), bias])
    g = grad(theta)
    h = ref.sgdg2_next_step(0.01, g, grad(theta - 0.01 * g), 0.9)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(np.mean((x @ W + bias - y) ** 2), rel=1e-12)
    assert opt.step_size == pytest.approx(h, rel=1e-10)
    want = theta - h * g
    np.testing.assert_allclose(model.get_weights()[0].ravel(), want[:4], rtol=1e-10)
    np.testing.assert_allclose(model.get_weights()[1], want[4:], rtol=1e-10)


def _fit_loss(optimizer, x, y, epochs=10, seed=3):
    dlfast.manual_seed(seed)
    model = dlfast.Sequential([Input((x.shape[1],)), Dense(1)], dtype="float64")
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model.evaluate(x, y)


def test_sgdg2_beats_sgd_from_a_badly_chosen_small_step(rng):
    x, y = _least_squares(rng)
    sgd = _fit_loss(optimizers.SGD(learning_rate=1e-4), x, y)
    opt = optimizers.SGDG2(learning_rate=1e-4)
    g2 = _fit_loss(opt, x, y)
    start = float(np.mean(y ** 2))  # order of the initial loss (small random weights)
    assert sgd > 0.2 * start        # plain SGD has barely moved
    assert g2 < 1e-2 * sgd, (g2, sgd)
    assert opt.step_size > 30 * 1e-4  # it found a step far above the bad one


def test_sgdg2_step_stays_finite_on_a_noisy_problem(rng):
    x, y = _least_squares(rng, noise=3.0)
    opt = optimizers.SGDG2(learning_rate=1e-4)
    steps = []
    dlfast.manual_seed(5)
    model = dlfast.Sequential([Input((x.shape[1],)), Dense(1)], dtype="float64")
    model.compile(optimizer=opt, loss="mse")
    for epoch in range(15):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        steps.append(opt.step_size)
    assert all(math.isfinite(h) and 0 < h < 1.0 for h in steps), steps
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    # it still learns: within a few times the noise floor (variance 9)
    assert model.evaluate(x, y) < 3 * 9.0


def test_sgdg2_needs_a_closure_and_restores_the_weights_when_it_fails(rng):
    opt = optimizers.SGDG2(learning_rate=0.1)
    w = rng.standard_normal(6)
    w0 = w.copy()
    with pytest.raises(ValueError, match=r"SGDG2.apply: this optimizer evaluates the gradient "
                                         r"a second time and needs closure=f"):
        opt.apply([np.ones(6)], [w])

    def failing():
        raise RuntimeError("out of data")

    with pytest.raises(RuntimeError, match="out of data"):
        opt.apply([rng.standard_normal(6)], [w], closure=failing)
    np.testing.assert_allclose(w, w0, rtol=1e-15, atol=1e-15)  # back from the probe point
    assert opt.iterations == 0 and opt.step_size == 0.1


def test_sgdg2_cuts_the_step_when_the_probe_blows_up():
    opt = optimizers.SGDG2(learning_rate=0.5, beta=0.9)
    w, g = np.ones(3), np.ones(3)

    def closure():
        g[...] = np.inf

    opt.apply([g], [w], closure=closure)
    assert opt.step_size == pytest.approx(0.05)
    np.testing.assert_allclose(w, 1 - 0.05 * 1.0)  # moved with the cut step along the old g


def test_sgdg2_step_size_rule_cases():
    opt = optimizers.SGDG2(beta=0.9)
    # g~ = g: no curvature seen (dot = 0): h_opt = h, the step stays
    assert opt.next_step_size(0.1, 0.0, 0.0) == 0.1
    # h_opt = 2*0.1*4/2 = 0.4 >= h: smoothed growth 0.9*0.1 + 0.1*0.4
    assert opt.next_step_size(0.1, 4.0, 2.0) == pytest.approx(0.13)
    # h_opt = 2*0.1*1/4 = 0.05 < h: cut to 0.1*0.05
    assert opt.next_step_size(0.1, 1.0, 4.0) == pytest.approx(0.005)
    # negative curvature along g (dot < 0): h_opt = h
    assert opt.next_step_size(0.1, -1.0, 4.0) == pytest.approx(0.1)


# --- fit() with each optimizer by name --------------------------------------------------

@pytest.mark.parametrize("name,lr", [("adam", None), ("adamax", None), ("adadelta", None),
                                     ("sgdg2", None), ("adadelta", 1.0)])
def test_fit_trains_with_each_optimizer(name, lr, rng):
    # a separable 3-class problem; 'name' with Keras defaults (Adadelta's default lr 0.001 is
    # slow by design: it must still lower the loss; with lr 1.0 it must learn the task)
    centers = rng.standard_normal((3, 5)) * 3
    labels = rng.integers(0, 3, 300)
    x = centers[labels] + rng.standard_normal((300, 5))
    dlfast.manual_seed(0)
    model = dlfast.Sequential([Input((5,)), Dense(16, activation="relu"),
                               Dense(3, activation="softmax")])
    opt = name if lr is None else optimizers.get(name).from_config(
        {**optimizers.get(name).get_config(), "learning_rate": lr})
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x, labels)[0]
    history = model.fit(x, labels, batch_size=16, epochs=20, verbose=0)
    after, acc = model.evaluate(x, labels)
    assert after < before
    assert history.history["loss"][-1] < history.history["loss"][0]
    if not (name == "adadelta" and lr is None):
        assert acc > 0.9, (name, acc)
