"""The course's SGD convergence exercise, measured: minimise f(w) = E[(w - X)^2 / 2] with
X ~ U(a, b), whose minimum is w* = E[X] = (a + b) / 2, from the gradient sample w - X.

SGD with step h_t reads w_{t+1} = w_t - h_t (w_t - X_t) = (1 - h_t) w_t + h_t X_t, X_t
independent of w_t. Write m = (a + b) / 2 and s2 = Var(X) = (b - a)^2 / 12.

* Constant step h (0 < h < 2), from a fixed w_0: w_t = (1-h)^t w_0 + h sum_k (1-h)^(t-1-k) X_k,
  so E[w_t] = m + (1-h)^t (w_0 - m) -> m and
      Var(w_t) = h^2 s2 sum_{k<t} (1-h)^(2k) = h s2 / (2 - h) * (1 - (1-h)^(2t))
  which tends to h s2 / (2 - h): NOT zero (the course: "variance limite ... pas nulle !").
* The course's fix, a decaying step: h_t = 1 / (t + 1) (t = 0, 1, ...) turns the recursion into
  the running mean, w_t = (X_0 + ... + X_{t-1}) / t, so Var(w_t) = s2 / t -> 0.

Each of `runs` independent SGD runs is one coordinate of a weight vector: the objective is a sum
over coordinates, so ONE dlfast.optimizers.SGD.apply step on that vector is one step of every
run (the 1/t step is dlfast's InverseTimeDecay(1, decay_steps=1, decay_rate=1)). The same
recursion in plain NumPy checks the optimizer. Prints the final variance of each schedule
beside its closed form (with the measurement's standard error) and plots both variance curves.

    pip install ".[examples]" && python examples/sgd_convergence.py --out sgd_convergence.png
"""

import argparse
import time

import numpy as np

import dlfast
from dlfast.optimizers import SGD
from dlfast.optimizers.schedules import InverseTimeDecay


def constant_step_variance(t, h, var_x):
    """Var(w_t) of SGD with constant step h from a fixed w_0 (the closed form above)."""
    return h * var_x / (2.0 - h) * (1.0 - (1.0 - h) ** (2 * np.asarray(t, dtype=np.float64)))


def variance_and_error(w):
    """The sample variance of w (over runs) and its standard error,
    sqrt((m4 - s^4 (n-3)/(n-1)) / n) with m4 the fourth central moment."""
    n = w.size
    centred = w - w.mean()
    var = centred.var(ddof=1)
    m4 = np.mean(centred ** 4)
    return var, np.sqrt(max(m4 - var ** 2 * (n - 3) / (n - 1), 0.0) / n)


def simulate(runs, steps, h, a, b, w0, seed):
    """Both schedules over `runs` runs for `steps` steps, on the same samples X_t.
    Returns the variance over runs after each step (arrays of length steps), the final
    weights of both, a few trajectories, and the largest gap between dlfast's SGD and the
    NumPy recursion."""
    rng = np.random.default_rng(seed)
    w_const = np.full(runs, w0, dtype=np.float64)   # (runs,): run r is coordinate r
    w_decay = w_const.copy()
    w_numpy = w_const.copy()                        # the recursion by hand, constant step
    const = SGD(learning_rate=h)
    decay = SGD(learning_rate=InverseTimeDecay(1.0, decay_steps=1, decay_rate=1.0))  # 1/(t+1)
    var_const, var_decay = np.empty(steps), np.empty(steps)
    shown = 5
    paths = np.empty((2, steps + 1, shown))
    paths[:, 0] = w0
    gap = 0.0
    for t in range(steps):
        x = rng.uniform(a, b, size=runs)       # X_t, one independent sample per run
        const.apply([w_const - x], [w_const])  # gradient sample w - X, one step of every run
        decay.apply([w_decay - x], [w_decay])
        w_numpy -= h * (w_numpy - x)
        gap = max(gap, float(np.max(np.abs(w_const - w_numpy))))
        var_const[t], var_decay[t] = w_const.var(ddof=1), w_decay.var(ddof=1)
        paths[0, t + 1], paths[1, t + 1] = w_const[:shown], w_decay[:shown]
    return var_const, var_decay, w_const, w_decay, paths, gap


def plot(out, show, steps, h, var_x, m, var_const, var_decay, paths):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(install matplotlib to plot the variance curves)")
        return None
    if show:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(11, 4.2))
    else:
        from matplotlib.figure import Figure  # no pyplot: no window, no global backend
        fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    t0 = np.arange(steps + 1)
    for k in range(paths.shape[2]):
        left.plot(t0, paths[0, :, k], color="tab:blue", lw=0.8, alpha=0.7,
                  label=f"constant h = {h:g}" if k == 0 else None)
        left.plot(t0, paths[1, :, k], color="tab:orange", lw=0.8, alpha=0.9,
                  label="h_t = 1/(t+1)" if k == 0 else None)
    left.axhline(m, color="k", lw=0.8, ls="--", label="minimum w* = E[X]")
    left.set_xscale("symlog", linthresh=10)
    left.set_xlim(0, steps)
    left.set_xlabel("step t")
    left.set_ylabel("w_t")
    left.set_title("A few SGD runs")
    left.legend(fontsize=8)

    t = np.arange(1, steps + 1)
    right.loglog(t, var_const, color="tab:blue", label=f"constant h = {h:g}, measured")
    right.loglog(t, constant_step_variance(t, h, var_x), "k--", lw=1,
                 label="closed form h Var(X)/(2-h) (1-(1-h)^2t)")
    right.loglog(t, var_decay, color="tab:orange", label="h_t = 1/(t+1), measured")
    right.loglog(t, var_x / t, "k:", lw=1, label="closed form Var(X)/t")
    right.set_xlabel("step t")
    right.set_ylabel("Var(w_t) over runs")
    right.set_title("Variance: constant step vs 1/t decay")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return out


def main(runs=2000, steps=1000, h=0.1, a=0.0, b=1.0, w0=2.0, seed=0,
         out="sgd_convergence.png", show=False):
    """Runs the experiment, prints one line per quality number and returns them in a dict."""
    dlfast.manual_seed(seed)
    start = time.perf_counter()
    m, var_x = (a + b) / 2, (b - a) ** 2 / 12
    var_const, var_decay, w_const, w_decay, paths, gap = simulate(runs, steps, h, a, b, w0, seed)
    v_const, se_const = variance_and_error(w_const)
    v_decay, se_decay = variance_and_error(w_decay)
    closed_const = float(constant_step_variance(steps, h, var_x))
    closed_decay = var_x / steps
    print(f"f(w) = E[(w - X)^2/2], X ~ U({a:g}, {b:g}): Var(X) = {var_x:.6g}, minimum {m:g}; "
          f"{runs} runs of {steps} steps from w0 = {w0:g}")
    print(f"constant step h={h:g}: final Var(w) {v_const:.6g} +- {se_const:.2g} (s.e.), "
          f"closed form h Var(X)/(2-h) = {closed_const:.6g} "
          f"({(v_const - closed_const) / se_const:+.2f} s.e.)")
    print(f"step 1/(t+1): final Var(w) {v_decay:.6g} +- {se_decay:.2g} (s.e.), "
          f"closed form Var(X)/t = {closed_decay:.6g} "
          f"({(v_decay - closed_decay) / se_decay:+.2f} s.e.)")
    print(f"mean of the final w: constant {w_const.mean():.5f}, 1/t {w_decay.mean():.5f} "
          f"(minimum {m:g}); dlfast SGD.apply vs the NumPy recursion: max gap {gap:.1e}")
    png = plot(out, show, steps, h, var_x, m, var_const, var_decay, paths)
    print(f"time {time.perf_counter() - start:.2f}s")
    return {"var_constant": v_const, "se_constant": se_const, "closed_constant": closed_const,
            "var_decay": v_decay, "se_decay": se_decay, "closed_decay": closed_decay,
            "mean_constant": float(w_const.mean()), "mean_decay": float(w_decay.mean()),
            "var_curve_constant": var_const, "var_curve_decay": var_decay,
            "numpy_gap": gap, "png": png}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--h", type=float, default=0.1, help="the constant step")
    p.add_argument("--a", type=float, default=0.0)
    p.add_argument("--b", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="sgd_convergence.png", help="where the PNG goes")
    p.add_argument("--show", action="store_true", help="also open a window")
    main(**vars(p.parse_args()))
