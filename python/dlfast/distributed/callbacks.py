"""Horovod's two Keras callbacks: BroadcastWeights (Horovod's BroadcastGlobalVariablesCallback)
and MetricAverage (MetricAverageCallback)."""

import numbers

import numpy as np

from .._callback_base import Callback
from . import _mpi


class BroadcastWeights(Callback):
    """At the start of ``fit``, give every rank ``root``'s weights (all of them: trainable and
    moving statistics) and ``root``'s optimizer state (slots such as momentum, the step count,
    scalar state such as SGDG2's step), so that ranks started from different initial weights
    (or a checkpoint loaded on one rank) train the same model. ``broadcast()`` does it at once
    (e.g. before a hand-written loop)."""

    def __init__(self, root=0):
        super().__init__()
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
            raise TypeError(f"BroadcastWeights: root must be an int rank, got {root!r}")
        if root < 0:
            raise ValueError(f"BroadcastWeights: root must be a rank >= 0, got {root}")
        self.root = int(root)

    def on_train_begin(self, logs=None):
        self.broadcast()

    def broadcast(self, model=None):
        """Broadcast ``model``'s (the fitted model's by default) weights and optimizer state
        from ``root``."""
        model = model or self.model
        if model is None:
            raise ValueError("BroadcastWeights.broadcast: no model (pass one, or use the "
                             "callback in fit)")
        root = _mpi.check_root(self.root, "BroadcastWeights")
        model._ensure_built()
        _mpi.broadcast(model.weights, root)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            arrays = model._optimizer_arrays()[1]
            state = _mpi.comm().bcast(optimizer.get_state(arrays) if _mpi.rank() == root
                                      else None, root=root)
            optimizer.set_state(arrays, state)


class MetricAverage(Callback):
    """At the end of each epoch, replace every number in the logs by its mean over the ranks
    (one Allreduce for all of them). fit with a DistributedOptimizer already averages its own
    loss, metrics and validation entries; this averages what other callbacks (placed before
    it) add, and the logs of a fit whose optimizer is not distributed. Put it first among the
    callbacks that read the logs (as with Horovod)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs:
            logs.update(average_logs(logs))


def average_logs(logs):
    """{key: mean over the ranks} of the numeric entries of ``logs`` (the same keys on every
    rank, checked)."""
    keys = sorted(k for k, v in logs.items() if isinstance(v, (numbers.Real, np.floating))
                  and not isinstance(v, bool))
    everyone = _mpi.comm().allgather(keys)
    if any(other != keys for other in everyone):
        raise ValueError("MetricAverage: the ranks log different entries: " + "; ".join(
            f"rank {r}: {k}" for r, k in enumerate(everyone)))
    buf = np.array([float(logs[k]) for k in keys], np.float64)
    _mpi.comm().Allreduce(_mpi.mpi().IN_PLACE, buf, op=_mpi.mpi().SUM)
    return {k: float(v) / _mpi.size() for k, v in zip(keys, buf)}


__all__ = ["BroadcastWeights", "MetricAverage"]
