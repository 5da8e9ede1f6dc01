"""Metrics: the accuracy family, as Keras resolves the string 'accuracy' from the loss."""

import numpy as np


class Accuracy:
    """Fraction of correct predictions. ``kind`` is 'sparse' (integer labels, argmax of the
    output), 'categorical' (one-hot labels) or 'binary' (threshold 0.5, or 0 on logits)."""

    def __init__(self, kind, name="accuracy"):
        if kind not in ("sparse", "categorical", "binary"):
            raise ValueError(f"unknown accuracy kind {kind!r}")
        self.kind = kind
        self.name = name

    def correct(self, y_true, y_pred, from_logits=False):
        """Number of correct predictions in a batch."""
        y_pred = np.asarray(y_pred)
        if self.kind == "binary":
            threshold = 0.0 if from_logits else 0.5
            pred = (y_pred > threshold).reshape(-1)
            return int(np.count_nonzero(pred == (np.asarray(y_true).reshape(-1) > 0.5)))
        pred = y_pred.reshape(y_pred.shape[0], -1).argmax(axis=1)
        truth = np.asarray(y_true)
        truth = truth.reshape(-1) if self.kind == "sparse" else truth.reshape(len(pred), -1).argmax(1)
        return int(np.count_nonzero(pred == truth))

    def __call__(self, y_true, y_pred):
        n = len(y_pred)
        return self.correct(y_true, y_pred) / n if n else 0.0

    def get_config(self):
        return {"kind": self.kind, "name": self.name}


def get(spec, loss):
    """A metric from a name, resolving 'accuracy' from the loss as Keras does."""
    if isinstance(spec, Accuracy):
        return spec
    if spec in ("accuracy", "acc"):
        kind = {"sparse_categorical_crossentropy": "sparse", "categorical_crossentropy": "categorical",
                "binary_crossentropy": "binary"}.get(loss.kernel_name)
        if kind is None:
            raise ValueError(f"metric 'accuracy' needs a classification loss, got {loss!r}")
        return Accuracy(kind)
    if spec == "sparse_categorical_accuracy":
        return Accuracy("sparse", spec)
    if spec == "categorical_accuracy":
        return Accuracy("categorical", spec)
    if spec == "binary_accuracy":
        return Accuracy("binary", spec)
    raise ValueError(f"unknown metric {spec!r}; expected 'accuracy', "
                     f"'sparse_categorical_accuracy', 'categorical_accuracy' or 'binary_accuracy'")
