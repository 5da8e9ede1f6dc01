"""Models and data shared by the 2-rank tests."""

import numpy as np

import dlfast
from dlfast import layers


def data(kind, n=600, seed=0):
    """The same (x, y) on every rank: a Dense problem (8 features, 3 classes) or an image one
    (8x8x1, 3 classes)."""
    rng = np.random.default_rng(seed)
    shape = (n, 8) if kind == "dense" else (n, 8, 8, 1)
    x = rng.normal(size=shape).astype(np.float32)
    w = rng.normal(size=(int(np.prod(shape[1:])), 3))
    y = np.argmax(x.reshape(n, -1) @ w + rng.normal(scale=0.5, size=(n, 3)), axis=1)
    return x, y


def build(kind, seed, batchnorm=False):
    dlfast.manual_seed(seed)
    if kind == "dense":
        body = [layers.Input((8,)), layers.Dense(16, activation="relu")]
        if batchnorm:
            body.append(layers.BatchNormalization())
        body.append(layers.Dense(3, activation="softmax"))
    else:
        body = [layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3, activation="softmax")]
    model = dlfast.Sequential(body)
    model.count_params()  # builds it now, so that the seed above decides the weights
    return model


OPTIMIZERS = {
    "sgd_momentum": lambda: dlfast.optimizers.SGD(0.05, momentum=0.9),
    "adam": lambda: dlfast.optimizers.Adam(1e-2),
    "sgdg2": lambda: dlfast.optimizers.SGDG2(0.05),
}


def relative_error(a, b):
    """|a - b| / |a| over a whole array (the norm of the difference relative to the norm)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))
