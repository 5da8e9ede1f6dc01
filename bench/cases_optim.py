"""Optimizer-update benchmarks: one step of SGD with momentum, Adam, Adamax and Adadelta over
a model's parameters (2**20 ~ 1 M float32 values, one flat buffer as a dlfast model keeps
them), against the same update in NumPy (in-place ufuncs into preallocated buffers: no
temporaries allocated per call) and PyTorch's optimizers when installed.

The update is memory-bound: throughput is reported in GB/s of the traffic a single fused pass
needs (each array read once, each state array and the weights written once), the same byte
count for every implementation, so the GB/s ratio is the speed ratio. Each case first checks
one dlfast step and one NumPy step against Keras's formula in float64."""

import numpy as np

import dlfast

from harness import Case, expect_close, torch

RNG = np.random.default_rng(2024)
N = 1 << 20
TOL = 1e-4  # norm-wise relative error of the float32 update (new - old) against float64:
#             w (~0.1) rounds to ~1e-8, the updates are ~1e-3; a wrong formula gives ~1


def _arrays(count):
    return [RNG.standard_normal(N).astype(np.float32) * 0.1 for _ in range(count)]


# --- the best NumPy updates: in place, two scratch buffers allocated once -------------------

def numpy_sgd_momentum(w, g, v, t, lr, momentum):
    np.multiply(v, momentum, out=v)
    np.multiply(g, lr, out=t)
    v -= t
    w += v


def numpy_adam(w, g, m, v, t, t2, lr, b1, b2, eps, step):
    alpha = np.float32(lr * np.sqrt(1 - b2 ** step) / (1 - b1 ** step))
    np.subtract(g, m, out=t)
    t *= np.float32(1 - b1)
    m += t
    np.multiply(g, g, out=t)
    t -= v
    t *= np.float32(1 - b2)
    v += t
    np.sqrt(v, out=t)
    t += np.float32(eps)
    np.divide(m, t, out=t)
    t *= alpha
    w -= t


def numpy_adamax(w, g, m, u, t, t2, lr, b1, b2, eps, step):
    np.subtract(g, m, out=t)
    t *= np.float32(1 - b1)
    m += t
    u *= np.float32(b2)
    np.abs(g, out=t)
    np.maximum(u, t, out=u)
    np.add(u, np.float32(eps), out=t)
    np.divide(m, t, out=t)
    t *= np.float32(lr / (1 - b1 ** step))
    w -= t


def numpy_adadelta(w, g, a, d, t, t2, lr, rho, eps):
    a *= np.float32(rho)
    np.multiply(g, g, out=t)
    t *= np.float32(1 - rho)
    a += t
    np.add(d, np.float32(eps), out=t)
    np.sqrt(t, out=t)
    t *= g                              # t = -delta * sqrt(a + eps)
    np.add(a, np.float32(eps), out=t2)
    np.sqrt(t2, out=t2)
    t /= t2                             # t = -delta
    d *= np.float32(rho)
    np.multiply(t, t, out=t2)
    t2 *= np.float32(1 - rho)
    d += t2
    t *= np.float32(lr)
    w -= t


# --- the float64 references (Keras's formulas, one step from zero/given state) --------------

def ref_step(kind, w, g, s0, s1, hp, step=1):
    w, g, s0, s1 = (np.asarray(a, np.float64) for a in (w, g, s0, s1))
    if kind == "sgd":
        v = hp["momentum"] * s0 - hp["lr"] * g
        return w + v, v, s1
    if kind == "adam":
        m = s0 + (g - s0) * (1 - hp["b1"])
        v = s1 + (g * g - s1) * (1 - hp["b2"])
        alpha = hp["lr"] * np.sqrt(1 - hp["b2"] ** step) / (1 - hp["b1"] ** step)
        return w - m * alpha / (np.sqrt(v) + hp["eps"]), m, v
    if kind == "adamax":
        m = s0 + (g - s0) * (1 - hp["b1"])
        u = np.maximum(hp["b2"] * s1, np.abs(g))
        return w - hp["lr"] * m / ((1 - hp["b1"] ** step) * (u + hp["eps"])), m, u
    a = hp["rho"] * s0 + (1 - hp["rho"]) * g * g
    delta = -np.sqrt(s1 + hp["eps"]) * g / np.sqrt(a + hp["eps"])
    return w + hp["lr"] * delta, a, hp["rho"] * s1 + (1 - hp["rho"]) * delta * delta


# kind -> (case label, dlfast optimizer, NumPy update, hyper-parameters, torch optimizer)
KINDS = {
    "sgd": ("sgd momentum", lambda hp: dlfast.optimizers.SGD(hp["lr"], momentum=hp["momentum"]),
            lambda a, t, t2, hp, step: numpy_sgd_momentum(*a, t, hp["lr"], hp["momentum"]),
            {"lr": 0.01, "momentum": 0.9},
            lambda p, hp: torch.optim.SGD([p], lr=hp["lr"], momentum=hp["momentum"])),
    "adam": ("adam", lambda hp: dlfast.optimizers.Adam(hp["lr"]),
             lambda a, t, t2, hp, step: numpy_adam(*a, t, t2, hp["lr"], hp["b1"], hp["b2"],
                                                   hp["eps"], step),
             {"lr": 0.001, "b1": 0.9, "b2": 0.999, "eps": 1e-7},
             lambda p, hp: torch.optim.Adam([p], lr=hp["lr"], eps=hp["eps"])),
    "adamax": ("adamax", lambda hp: dlfast.optimizers.Adamax(hp["lr"]),
               lambda a, t, t2, hp, step: numpy_adamax(*a, t, t2, hp["lr"], hp["b1"], hp["b2"],
                                                       hp["eps"], step),
               {"lr": 0.001, "b1": 0.9, "b2": 0.999, "eps": 1e-7},
               lambda p, hp: torch.optim.Adamax([p], lr=hp["lr"], eps=hp["eps"])),
    "adadelta": ("adadelta", lambda hp: dlfast.optimizers.Adadelta(hp["lr"]),
                 lambda a, t, t2, hp, step: numpy_adadelta(*a, t, t2, hp["lr"], hp["rho"],
                                                           hp["eps"]),
                 {"lr": 1.0, "rho": 0.95, "eps": 1e-7},
                 lambda p, hp: torch.optim.Adadelta([p], lr=hp["lr"], rho=hp["rho"],
                                                    eps=hp["eps"])),
}


def optim_case(kind):
    label, make_opt, numpy_update, hp, make_torch = KINDS[kind]
    w0, g = _arrays(2)
    # bytes of one fused pass: w, g and each state array read, w and each state written
    states = 2 if kind != "sgd" else 1
    nbytes = 4 * N * (2 + states + 1 + states)

    opt = make_opt(hp)
    w_dl = w0.copy()
    impls = {"dlfast": lambda: opt.apply([g], [w_dl])}

    np_arrays = [w0.copy(), g] + [np.zeros(N, np.float32) for _ in range(states)]
    t, t2 = np.empty(N, np.float32), np.empty(N, np.float32)
    np_step = [0]

    def numpy_impl():
        np_step[0] += 1
        numpy_update(np_arrays, t, t2, hp, np_step[0])

    impls["numpy"] = numpy_impl
    if torch is not None:
        p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
        p.grad = torch.from_numpy(g.copy())
        topt = make_torch(p, hp)
        impls["torch"] = topt.step

    def check():
        # one step from zero state, dlfast and NumPy, against float64 (torch uses its own
        # epsilon placement for Adam/Adamax, so it is timed, not checked)
        zeros = np.zeros(N)
        want = ref_step(kind, w0, g, zeros, zeros, hp)[0]
        w = w0.copy()
        make_opt(hp).apply([g], [w])
        a = [w0.copy(), g] + [np.zeros(N, np.float32) for _ in range(states)]
        numpy_update(a, np.empty(N, np.float32), np.empty(N, np.float32), hp, 1)
        # the update (new - old), so a wrong step is not hidden behind the unchanged weight
        err = expect_close(label, [("dlfast update", w - w0, want - w0),
                                   ("numpy update", a[0] - w0, want - w0)], TOL)
        return f"update rel err {err:.1e}"

    notes = f"{N} float32 parameters, {nbytes / N:.0f} bytes/parameter of fused traffic"
    return Case("optim", f"{label} update 1M float32", impls, check, bytes=nbytes, notes=notes)


def optim_cases():
    return [optim_case(kind) for kind in KINDS]
