"""The course's optimizer comparison: the same network, from the same initial weights, trained
on scikit-learn's bundled digits with SGD, SGD with momentum, Nesterov, Adam, Adamax, Adadelta
and the adaptive SGD-G2; prints each one's final training loss and test accuracy, and plots
the loss curves when matplotlib is installed (a PNG at --out; nothing is shown on screen).

    pip install ".[examples]" && python examples/optimizer_comparison.py --out curves.png
"""

import argparse
import time

import numpy as np

import dlfast
from dlfast import optimizers
from dlfast.datasets import load_digits_split
from dlfast.layers import Dense, Input


def contenders():
    """(label, optimizer) pairs. SGD-G2 starts from plain SGD's step and adapts it. Adadelta
    gets lr 1.0 (the paper's form): Keras's default 0.001 barely moves in this budget."""
    return [
        ("SGD", optimizers.SGD(0.01)),
        ("SGD momentum 0.9", optimizers.SGD(0.01, momentum=0.9)),
        ("Nesterov 0.9", optimizers.SGD(0.01, momentum=0.9, nesterov=True)),
        ("Adam", optimizers.Adam()),
        ("Adamax", optimizers.Adamax()),
        ("Adadelta lr 1.0", optimizers.Adadelta(learning_rate=1.0)),
        ("SGD-G2", optimizers.SGDG2(learning_rate=0.01)),
    ]


def train(optimizer, data, epochs, batch_size):
    x_tr, y_tr, x_te, y_te = data
    dlfast.manual_seed(0)  # the same initial weights and batch order for every optimizer
    model = dlfast.Sequential([Input((64,)), Dense(64, activation="relu"),
                               Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    history = model.fit(x_tr, y_tr, batch_size=batch_size, epochs=epochs, verbose=0,
                        validation_data=(x_te, y_te))
    return history.history, time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="optimizer_comparison.png",
                   help="where the loss-curve PNG goes (with matplotlib)")
    args = p.parse_args(argv)

    data = load_digits_split()
    results = []
    print(f"digits 64-64-10, batch {args.batch_size}, {args.epochs} epochs, same initial "
          f"weights for all")
    print(f"{'optimizer':<18} {'train loss':>10} {'test loss':>10} {'test acc':>9} {'time':>7}")
    for label, opt in contenders():
        hist, seconds = train(opt, data, args.epochs, args.batch_size)
        results.append((label, hist))
        extra = f"  (final step {opt.step_size:.3g})" if isinstance(opt, optimizers.SGDG2) else ""
        print(f"{label:<18} {hist['loss'][-1]:>10.4f} {hist['val_loss'][-1]:>10.4f} "
              f"{100 * hist['val_accuracy'][-1]:>8.1f}% {seconds:>6.2f}s{extra}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(install matplotlib to plot the loss curves)")
        return 0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    epochs = np.arange(1, args.epochs + 1)
    for label, hist in results:
        ax.plot(epochs, hist["loss"], label=label)
    ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title("Optimizers on digits (64-64-10)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
