"""Small real datasets from scikit-learn's bundled copies (nothing is downloaded), split and
scaled the way the course does it."""

import numpy as np


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError("this needs scikit-learn's bundled datasets: "
                          "pip install 'dlfast[examples]' (or scikit-learn)") from None


def load_iris_split(test_size=0.3, seed=0):
    """Iris: stratified train/test split, features standardised on the training part.
    Returns (x_train, y_train, x_test, y_test) with float32 features and int64 labels."""
    _sklearn()
    from sklearn.datasets import load_iris
    data = load_iris()
    return _split_scale(data.data, data.target, test_size, seed)


def load_digits_split(test_size=0.25, seed=0, images=False, sequences=False):
    """Digits (8x8 grey images, 10 classes): stratified split, pixels scaled to [0, 1].
    With images=True, x has shape (n, 8, 8, 1) (NHWC); with sequences=True, (n, 8, 8): each
    image read as 8 time steps of 8 pixels (its rows); else (n, 64)."""
    _sklearn()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    if images:
        x = x.reshape(-1, 8, 8, 1)
    elif sequences:
        x = x.reshape(-1, 8, 8)
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target.astype(np.int64), test_size=test_size,
                                              stratify=data.target, random_state=seed)
    return x_tr, y_tr, x_te, y_te


def _split_scale(x, y, test_size, seed):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y,
                                              random_state=seed)
    scaler = StandardScaler().fit(x_tr)
    return (scaler.transform(x_tr).astype(np.float32), y_tr.astype(np.int64),
            scaler.transform(x_te).astype(np.float32), y_te.astype(np.int64))
