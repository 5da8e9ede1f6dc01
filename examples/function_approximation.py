"""The course's slide "approximation de fonction arbitraire 1D": one hidden layer,
Dense(units, relu or tanh) -> Dense(1), fitted by least squares to sin(x), |x| and a step on
[-pi, pi], with 4, 16 and 64 hidden units.

A ReLU network is a piecewise-linear function with at most `units` kinks, so its error on a
smooth curve such as sin falls as the units grow, and |x| = relu(x) + relu(-x) is exact from 2
units on. A tanh network is a sum of shifted, scaled tanh steps: a few already follow sin
closely, more are needed for the corner of |x|. Neither can jump: the step's error is a thin
ramp around 0, as narrow as the training points there allow, whatever the width.

Training points are drawn uniformly on [-pi, pi]; the test MSE is measured on an even grid of
the same interval. Prints the test MSE of every (function, activation, units) and draws a 3 x 3
grid (functions x units) of each fit against its target.

    pip install ".[examples]" && python examples/function_approximation.py --out fit.png
"""

import argparse
import time

import numpy as np

import dlfast
from dlfast.layers import Dense, Input

FUNCTIONS = {
    "sin": np.sin,
    "|x|": np.abs,
    "step": lambda x: (x >= 0).astype(x.dtype),  # 0 left of 0, 1 from 0 on
}


def fit_one(f, units, activation, x_train, x_test, epochs, batch_size, learning_rate, seed):
    """Trains Dense(units, activation) -> Dense(1) on (x, f(x)); returns the test MSE and the
    prediction on x_test."""
    dlfast.manual_seed(seed)
    model = dlfast.Sequential([Input((1,)), Dense(units, activation=activation), Dense(1)])
    model.compile(optimizer=dlfast.optimizers.Adam(learning_rate), loss="mse")
    model.fit(x_train, f(x_train), batch_size=batch_size, epochs=epochs, verbose=0)
    prediction = model.predict(x_test, batch_size=len(x_test))
    return float(np.mean((prediction - f(x_test)) ** 2)), prediction


def plot(out, show, x_test, results, units_list, activations):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(install matplotlib to plot the fits)")
        return None
    if show:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(10, 8))
    else:
        from matplotlib.figure import Figure  # no pyplot: no window, no global backend
        fig = Figure(figsize=(10, 8))
    axes = fig.subplots(len(FUNCTIONS), len(units_list), sharex=True, squeeze=False)
    xs = x_test[:, 0]
    colours = {"relu": "tab:red", "tanh": "tab:blue", "sigmoid": "tab:green"}
    for i, (name, f) in enumerate(FUNCTIONS.items()):
        for j, units in enumerate(units_list):
            ax = axes[i, j]
            ax.plot(xs, f(xs), "k--", lw=1, label="target")
            title = []
            for activation in activations:
                mse, prediction = results[name, activation, units]
                ax.plot(xs, prediction[:, 0], color=colours.get(activation), lw=1.2,
                        label=activation)
                title.append(f"{activation} {mse:.1e}")
            ax.set_title(f"{name}, {units} units; MSE " + ", ".join(title), fontsize=8)
            if i == len(FUNCTIONS) - 1:
                ax.set_xlabel("x")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("One hidden layer, Dense(units) -> Dense(1), on [-pi, pi]")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return out


def main(units=(4, 16, 64), activations=("relu", "tanh"), epochs=400, n_train=256, n_test=501,
         batch_size=32, learning_rate=0.01, seed=0, out="function_approximation.png",
         show=False):
    """Fits every function with every activation and width; prints the test MSEs and returns
    them as {"mse": {(function, activation, units): mse}, "png": path or None}."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x_train = rng.uniform(-np.pi, np.pi, size=(n_train, 1)).astype(np.float32)
    x_test = np.linspace(-np.pi, np.pi, n_test, dtype=np.float32)[:, None]
    results = {}
    print(f"Dense(units, activation) -> Dense(1), {n_train} training points on [-pi, pi], "
          f"Adam({learning_rate:g}), {epochs} epochs of batch {batch_size}; test MSE on "
          f"{n_test} grid points:")
    for name, f in FUNCTIONS.items():
        for activation in activations:
            for u in units:
                results[name, activation, u] = fit_one(f, u, activation, x_train, x_test, epochs,
                                                       batch_size, learning_rate, seed)
            print(f"{name:>4} {activation}: " + ", ".join(
                f"{u} units test MSE {results[name, activation, u][0]:.2e}" for u in units))
    png = plot(out, show, x_test, results, list(units), list(activations))
    print(f"time {time.perf_counter() - start:.2f}s")
    return {"mse": {key: mse for key, (mse, _) in results.items()}, "png": png}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--units", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--activations", nargs="+", default=["relu", "tanh"],
                   choices=["relu", "tanh", "sigmoid"])
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="function_approximation.png", help="where the PNG goes")
    p.add_argument("--show", action="store_true", help="also open a window")
    args = p.parse_args()
    main(units=tuple(args.units), activations=tuple(args.activations), epochs=args.epochs,
         seed=args.seed, out=args.out, show=args.show)
