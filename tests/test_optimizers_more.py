"""dlfast.optimizers.RMSprop, AdamW and Nadam: apply() over 25 steps against Keras 3's
update_step written plainly in float64 NumPy (tests/reference.py), with and without momentum,
centered, weight decay and a schedule; their slots, Keras defaults, names and configs; bad
hyper-parameters; fit lowers the loss with each; save/load resumes a run to the bit; and on
the GPU path (the NumPy stand-in of dlfast._cuda) AdamW runs as on the CPU while RMSprop and
Nadam are refused by name."""

import numpy as np
import pytest

import dlfast
from dlfast import _core, cuda, optimizers
from dlfast.layers import Dense, Input
from dlfast.models import load_model
from dlfast.optimizers import schedules
import reference as ref

STEPS = 25
SHAPES = [(1,), (7,), (33, 17), (4, 3, 5), (40001,)]


def tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-12


def run_against_reference(opt, ref_step, dtype, rng, n_state, lr_at=None):
    """25 apply() steps on SHAPES; ref_step(w, g, state, t, lr) -> (w, *state)."""
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ref_w = [w.astype(np.float64) for w in ws]
    ref_state = [tuple(np.zeros(s) for _ in range(n_state)) for s in SHAPES]
    for t in range(1, STEPS + 1):
        gs = [(rng.standard_normal(s) * rng.choice([0.1, 1.0, 10.0])).astype(dtype)
              for s in SHAPES]
        lr = lr_at(t - 1) if lr_at else opt.learning_rate  # schedules see the 0-based count
        opt.apply(gs, ws)
        for i, g in enumerate(gs):
            ref_w[i], *state = ref_step(ref_w[i], g, ref_state[i], t, lr)
            ref_state[i] = tuple(state)
    assert opt.iterations == STEPS
    for i, (w, rw) in enumerate(zip(ws, ref_w)):
        assert w.dtype == dtype
        np.testing.assert_allclose(w, rw, rtol=tol(dtype), atol=tol(dtype),
                                   err_msg=f"{opt.name}: weight {i}")
    return ws


# --- apply() against the formulas ----------------------------------------------------------

RMSPROP_CASES = {
    "plain": dict(),
    "momentum": dict(momentum=0.9, rho=0.8),
    "centered": dict(centered=True, learning_rate=0.01),
    "centered-momentum-wd": dict(centered=True, momentum=0.5, weight_decay=0.1,
                                 epsilon=1e-4, learning_rate=0.01),
    "wd": dict(weight_decay=0.2, learning_rate=0.05),
}


@pytest.mark.parametrize("case", list(RMSPROP_CASES))
def test_rmsprop_apply(isa, dtype, case, rng):
    kw = RMSPROP_CASES[case]
    opt = optimizers.RMSprop(**kw)
    c = {**dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                weight_decay=None), **kw}
    run_against_reference(opt, lambda w, g, s, t, lr: ref.rmsprop_step(
        w, g, s[0], s[1], s[2], lr, c["rho"], c["momentum"], c["epsilon"], c["centered"],
        c["weight_decay"] or 0.0), dtype, rng, 3)


def test_rmsprop_with_a_schedule(dtype, rng):
    sched = schedules.InverseTimeDecay(0.01, decay_steps=5, decay_rate=1.0)
    opt = optimizers.RMSprop(sched, momentum=0.3)
    run_against_reference(opt, lambda w, g, s, t, lr: ref.rmsprop_step(
        w, g, s[0], s[1], s[2], lr, 0.9, 0.3, 1e-7, False), dtype, rng, 3,
        lr_at=lambda step: 0.01 / (1 + step / 5))


@pytest.mark.parametrize("wd", [0.004, 0.1, 0.0])
def test_adamw_apply_decays_before_the_adam_step(isa, dtype, wd, rng):
    opt = optimizers.AdamW(learning_rate=0.02, weight_decay=wd, beta_1=0.8, beta_2=0.99)
    run_against_reference(opt, lambda w, g, s, t, lr: ref.adam_step(
        w, g, s[0], s[1], t, lr, 0.8, 0.99, 1e-7, wd), dtype, rng, 2)


def test_adamw_defaults_decay_by_lr_times_0_004():
    # a zero gradient leaves Adam's step at zero: only the decay w -= lr*wd*w moves the weight
    w = np.full(3, 2.0)
    opt = optimizers.AdamW()
    opt.apply([np.zeros(3)], [w])
    np.testing.assert_allclose(w, 2.0 * (1 - 0.001 * 0.004), rtol=1e-15)


@pytest.mark.parametrize("wd", [None, 0.1])
def test_nadam_apply(isa, dtype, wd, rng):
    opt = optimizers.Nadam(learning_rate=0.01, beta_1=0.85, beta_2=0.99, weight_decay=wd)
    run_against_reference(opt, lambda w, g, s, t, lr: ref.nadam_step(
        w, g, s[0], s[1], t, lr, 0.85, 0.99, 1e-7, wd or 0.0), dtype, rng, 2)
    assert opt.u_product == pytest.approx(ref.nadam_u_product(0.85, STEPS), rel=1e-14)


def test_nadam_with_a_schedule(dtype, rng):
    sched = schedules.ExponentialDecay(0.02, decay_steps=4, decay_rate=0.5, staircase=True)
    opt = optimizers.Nadam(sched)
    run_against_reference(opt, lambda w, g, s, t, lr: ref.nadam_step(
        w, g, s[0], s[1], t, lr, 0.9, 0.999, 1e-7), dtype, rng, 2,
        lr_at=lambda step: 0.02 * 0.5 ** (step // 4))


def test_state_lives_in_slots_with_keras_names(rng):
    w = rng.standard_normal(5)
    g = rng.standard_normal(5)
    for opt, names in [(optimizers.RMSprop(), ("velocity",)),
                       (optimizers.RMSprop(momentum=0.5), ("velocity", "momentum")),
                       (optimizers.RMSprop(centered=True), ("velocity", "average_gradient")),
                       (optimizers.RMSprop(momentum=0.5, centered=True),
                        ("velocity", "momentum", "average_gradient")),
                       (optimizers.AdamW(), ("momentum", "velocity")),
                       (optimizers.Nadam(), ("momentum", "velocity"))]:
        opt.apply([g], [w])
        state = {name: arr for (wid, name), (_, arr) in opt._slots.items() if wid == id(w)}
        assert sorted(state) == sorted(names), opt.get_config()
        assert all(np.any(a != 0) for a in state.values())
    nadam = optimizers.Nadam()
    assert nadam.u_product == 1.0  # Keras's _u_product starts at 1
    nadam.apply([g], [w])
    assert nadam.u_product == pytest.approx(0.9 * (1 - 0.5 * 0.96))
    assert nadam.get_state([w])["u_product"] == pytest.approx(0.9 * (1 - 0.5 * 0.96))


# --- defaults, names, configs -----------------------------------------------------------

KERAS_DEFAULTS = {
    "rmsprop": (optimizers.RMSprop, dict(learning_rate=0.001, rho=0.9, momentum=0.0,
                                         epsilon=1e-7, centered=False, weight_decay=None)),
    "adamw": (optimizers.AdamW, dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9,
                                     beta_2=0.999, epsilon=1e-7, amsgrad=False)),
    "nadam": (optimizers.Nadam, dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                                     epsilon=1e-7, weight_decay=None)),
}


@pytest.mark.parametrize("name", list(KERAS_DEFAULTS))
def test_get_by_name_has_keras_defaults_and_config_round_trips(name):
    cls, defaults = KERAS_DEFAULTS[name]
    opt = optimizers.get(name)
    assert type(opt) is cls and type(optimizers.get(name.upper())) is cls
    cfg = opt.get_config()
    assert cfg["name"] == name  # Keras's default names
    for key, value in defaults.items():
        assert cfg[key] == value, key
    again = cls.from_config(cfg)
    assert type(again) is cls and again.get_config() == cfg
    model = dlfast.Sequential([Input((3,)), Dense(2)])
    model.compile(optimizer=name, loss="mse")
    assert type(model.optimizer) is cls


def test_configs_with_options_round_trip():
    for opt in (optimizers.RMSprop(0.01, rho=0.8, momentum=0.3, epsilon=1e-5, centered=True,
                                   weight_decay=0.01),
                optimizers.AdamW(schedules.ExponentialDecay(0.1, 10, 0.5), weight_decay=0.2),
                optimizers.Nadam(0.002, beta_1=0.8, beta_2=0.9, epsilon=1e-6,
                                 weight_decay=0.05)):
        again = type(opt).from_config(opt.get_config())
        assert again.get_config() == opt.get_config()


@pytest.mark.parametrize("make,match", [
    (lambda: optimizers.RMSprop(rho=1.1), r"RMSprop: rho must be a finite number in \[0, 1\], "
                                          r"got 1.1"),
    (lambda: optimizers.RMSprop(momentum=-0.1), r"RMSprop: momentum must be a finite number "
                                                r"in \[0, 1\]"),
    (lambda: optimizers.RMSprop(epsilon=-1.0), r"RMSprop: epsilon must be a finite number >= 0"),
    (lambda: optimizers.RMSprop(learning_rate=float("nan")), r"rmsprop: learning_rate must be "
                                                             r"a finite number >= 0"),
    (lambda: optimizers.RMSprop(weight_decay=-0.1), r"rmsprop: weight_decay must be a finite "
                                                    r"number >= 0, got -0.1"),
    (lambda: optimizers.AdamW(weight_decay=None), r"AdamW: weight_decay must be a number >= 0, "
                                                  r"got None"),
    (lambda: optimizers.AdamW(weight_decay=-1.0), r"adamw: weight_decay must be a finite number "
                                                  r">= 0, got -1.0"),
    (lambda: optimizers.AdamW(beta_1=1.0), r"AdamW: beta_1 must be a finite number in \[0, 1\)"),
    (lambda: optimizers.AdamW(beta_2="x"), r"AdamW: beta_2 must be a number, got 'x'"),
    (lambda: optimizers.Nadam(beta_1=1.0), r"Nadam: beta_1 must be a finite number in \[0, 1\)"),
    (lambda: optimizers.Nadam(beta_2=-0.5), r"Nadam: beta_2 must be a finite number in "
                                            r"\[0, 1\)"),
    (lambda: optimizers.Nadam(epsilon=float("inf")), r"Nadam: epsilon must be a finite number"),
])
def test_bad_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unsupported_options_are_refused():
    with pytest.raises(NotImplementedError, match=r"AdamW: amsgrad=True is not supported"):
        optimizers.AdamW(amsgrad=True)
    with pytest.raises(TypeError, match=r"RMSprop: centered must be True or False, got 'yes'"):
        optimizers.RMSprop(centered="yes")


@pytest.mark.parametrize("name", ["rmsprop", "adamw", "nadam"])
def test_bad_apply_changes_no_weight_and_no_state(name):
    opt = optimizers.get(name) if name != "rmsprop" else optimizers.RMSprop(momentum=0.5,
                                                                            centered=True)
    w0, w1 = np.ones(3), np.ones(4)
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(3,\), expected the weight's "
                                         r"\(4,\)"):
        opt.apply([np.ones(3), np.ones(3)], [w0, w1])
    with pytest.raises(TypeError, match=r"grads\[0\]' must be a float64 numpy array"):
        opt.apply([np.ones(3, np.float32), np.ones(4)], [w0, w1])
    np.testing.assert_array_equal(w0, 1.0)
    np.testing.assert_array_equal(w1, 1.0)
    assert opt.iterations == 0
    assert all(not np.any(a) for _, a in opt._slots.values())
    if name == "nadam":
        assert opt.u_product == 1.0  # not advanced by a step that did not happen


def test_nadam_state_needs_its_u_product(rng):
    w = [rng.standard_normal(4)]
    opt = optimizers.Nadam()
    for _ in range(3):
        opt.apply([rng.standard_normal(4)], w)
    state = opt.get_state(w)
    assert sorted(state) == ["0/momentum", "0/velocity", "iterations", "u_product"]
    other = optimizers.Nadam()
    other.set_state(w, state)
    assert other.u_product == opt.u_product and other.iterations == 3
    del state["u_product"]
    with pytest.raises(ValueError, match=r"nadam.set_state: expected 'u_product', a finite "
                                         r"number"):
        optimizers.Nadam().set_state(w, state)


# --- training and files ---------------------------------------------------------------

@pytest.mark.parametrize("opt", ["rmsprop", "adamw", "nadam", "rmsprop-centered-momentum"])
def test_fit_trains_with_each_optimizer(opt, rng):
    centers = rng.standard_normal((3, 5)) * 3
    labels = rng.integers(0, 3, 300)
    x = centers[labels] + rng.standard_normal((300, 5))
    dlfast.manual_seed(0)
    model = dlfast.Sequential([Input((5,)), Dense(16, activation="relu"),
                               Dense(3, activation="softmax")])
    if opt == "rmsprop-centered-momentum":
        opt = optimizers.RMSprop(momentum=0.9, centered=True)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x, labels)[0]
    history = model.fit(x, labels, batch_size=16, epochs=15, verbose=0)
    after, acc = model.evaluate(x, labels)
    assert after < 0.5 * before
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert acc > 0.9


OPTIMIZERS = {
    "rmsprop-centered-momentum": lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True,
                                                            weight_decay=0.01),
    "rmsprop": lambda: "rmsprop",
    "adamw": lambda: optimizers.AdamW(0.01, weight_decay=0.1),
    "nadam": lambda: optimizers.Nadam(0.01, weight_decay=0.01),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_save_load_resumes_to_the_bit(name, dtype, tmp_path, rng):
    """2 steps, save (with the optimizer's slots and Nadam's u_product), load, 2 more steps ==
    4 steps without interruption, bit for bit."""
    def make():
        model = dlfast.Sequential([Input((6,)), Dense(8, activation="tanh"),
                                   Dense(3, activation="softmax")], dtype=dtype)
        model.compile(optimizer=OPTIMIZERS[name](), loss="sparse_categorical_crossentropy")
        return model

    dlfast.manual_seed(3)
    reference, model = make(), make()
    model.set_weights(reference.get_weights())
    x, y = rng.standard_normal((24, 6)), rng.integers(0, 3, 24)
    batches = [(x[i:i + 6], y[i:i + 6]) for i in range(0, 24, 6)]
    for xb, yb in batches:
        reference.train_on_batch(xb, yb)
    for xb, yb in batches[:2]:
        model.train_on_batch(xb, yb)
    model.save(tmp_path / "m.dlfast")
    resumed = load_model(tmp_path / "m.dlfast")
    assert type(resumed.optimizer) is type(reference.optimizer)
    assert resumed.optimizer.get_config() == reference.optimizer.get_config()
    assert resumed.optimizer.iterations == 2
    for xb, yb in batches[2:]:
        resumed.train_on_batch(xb, yb)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    if name == "nadam":
        assert resumed.optimizer.u_product == reference.optimizer.u_product
    # without the optimizer's state the run differs (the slots start again from zero)
    model.save(tmp_path / "plain.dlfast", include_optimizer=False)
    fresh = load_model(tmp_path / "plain.dlfast")
    for xb, yb in batches[2:]:
        fresh.train_on_batch(xb, yb)
    assert any(np.any(a != b) for a, b in zip(fresh.get_weights(), reference.get_weights()))


# --- the GPU path, on the NumPy stand-in of dlfast._cuda (runs everywhere) ----------------

def _pair(optimizer):
    dlfast.manual_seed(5)
    models = [dlfast.Sequential([Input((12,)), Dense(16, activation="relu"),
                                 Dense(5, activation="softmax")]) for _ in range(2)]
    models[1].set_weights(models[0].get_weights())
    for m in models:
        m.compile(optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((70, 12)).astype(np.float32)
    return models[0], models[1].to("cuda"), x, rng.integers(0, 5, 70)


def test_adamw_on_the_standin_equals_the_cpu_run(standin):
    make = lambda: optimizers.AdamW(schedules.ExponentialDecay(0.01, 3, 0.8),  # noqa: E731
                                    weight_decay=0.05, beta_1=0.85)
    cpu_model, gpu_model, x, y = _pair(make)
    cpu_losses = [cpu_model.train_on_batch(x[:32], y[:32]) for _ in range(3)]
    gpu_losses = [gpu_model.train_on_batch(x[:32], y[:32]) for _ in range(3)]
    assert gpu_losses == cpu_losses and cpu_losses[-1] < cpu_losses[0]
    hc = cpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    hg = gpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert hg.history == hc.history
    for wg, wc in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_array_equal(wg, wc)


def test_an_optimizer_subclass_runs_on_the_gpu_path(standin):
    # The step is the optimizer's own _apply on every device (issue 14); the GPU path used to
    # refuse anything but type(opt) is SGD / Adam / AdamW.
    class MySGD(optimizers.SGD):  # a user's subclass, its step through the base class
        def _apply(self, grads, weights, kernels=_core, slot=None):
            super()._apply(grads, weights, kernels, slot)

    make = lambda: MySGD(0.05, momentum=0.9, nesterov=True)  # noqa: E731
    cpu_model, gpu_model, x, y = _pair(make)
    hc = cpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    hg = gpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert hg.history == hc.history
    for wg, wc in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_array_equal(wg, wc)
    assert gpu_model.optimizer.iterations == cpu_model.optimizer.iterations == 10


@pytest.mark.parametrize("make,name", [(lambda: optimizers.RMSprop(), "RMSprop"),
                                       (lambda: optimizers.Nadam(), "Nadam")])
def test_unsupported_optimizers_are_named_on_the_gpu_path(standin, make, name):
    _, gpu_model, x, y = _pair(make)
    before = gpu_model.get_weights()
    with pytest.raises(NotImplementedError, match=rf"optimizer {name} has no CUDA "
                                                  rf"implementation yet; use "
                                                  rf"dlfast.optimizers.SGD, Adam or AdamW"):
        gpu_model.train_on_batch(x[:8], y[:8])
    for a, b in zip(gpu_model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
