"""Training on real data (scikit-learn's bundled datasets): the course's iris network reaches
>= 93% test accuracy, a Dense network on digits >= 95%."""

import numpy as np
import pytest

import dlfast
from dlfast import layers

import sklearn  # noqa: E402,F401  (the test extra installs it; a missing one must fail, not skip)
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def split_scaled(x, y, seed):
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y,
                                              random_state=seed)
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr), scaler.transform(x_te), y_tr, y_te


def test_iris_network_reaches_93_percent():
    # Measured while writing the test: with this split, 40 different init seeds all gave
    # >= 95.6% test accuracy (43/45); the bar is 93% (42/45).
    x, y = load_iris(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split_scaled(x, y, seed=0)
    dlfast.manual_seed(0)
    model = dlfast.Sequential([layers.Input((4,)), layers.Dense(32, activation="relu"),
                               layers.Dense(16, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(learning_rate=0.05),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x_tr, y_tr, batch_size=16, epochs=50, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    loss, acc = model.evaluate(x_te, y_te)
    pred = model.predict(x_te).argmax(axis=1)
    assert np.mean(pred == y_te) == pytest.approx(acc)
    assert acc >= 0.93, f"iris test accuracy {acc:.3f} < 0.93"


def test_digits_dense_network_reaches_95_percent():
    # With this recipe, 8 init/split seeds gave 97.0-97.8% test accuracy.
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split_scaled(x, y, seed=1)
    dlfast.manual_seed(1)
    model = dlfast.Sequential([layers.Input((64,)), layers.Dense(64, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, y_tr, batch_size=32, epochs=20, verbose=0)
    _, acc = model.evaluate(x_te, y_te)
    assert acc >= 0.95, f"digits test accuracy {acc:.3f} < 0.95"


def test_iris_categorical_labels_float64():
    # the same network trained in float64 with one-hot labels and categorical cross-entropy
    x, y = load_iris(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split_scaled(x, y, seed=0)
    dlfast.manual_seed(0)
    model = dlfast.Sequential([layers.Input((4,), dtype="float64"),
                               layers.Dense(32, activation="relu"),
                               layers.Dense(16, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(learning_rate=0.05),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, np.eye(3)[y_tr], batch_size=16, epochs=50, verbose=0)
    _, acc = model.evaluate(x_te, np.eye(3)[y_te])
    assert acc >= 0.93
