"""How one rank takes part in ``Model.fit`` when the model's optimizer is a
DistributedOptimizer: dlfast/_fit.py asks the optimizer for this plan and calls it at a few
points (the epoch's order, the batch loss given to callbacks, the epoch's logs, validation)."""

import numpy as np

from .. import callbacks as callbacks_module
from ..layers.normalization import BatchNormalization
from . import _mpi

# written by rank 0 alone: the other ranks drop them from their callback list
ROOT_ONLY = (callbacks_module.ModelCheckpoint, callbacks_module.CSVLogger)


def shard_positions(n, rank, size, what="shard"):
    """Positions rank, rank + size, ... of 0 ... n - 1, the same count on every rank: the last
    ``n % size`` positions are left out, so every rank takes the same number of steps (no rank
    waits for a missing one) and the last batches have equal sizes (the average of the ranks'
    means is then the mean over the global batch)."""
    if n < size:
        raise ValueError(f"{what}: {n} samples cannot be shared by {size} ranks (each needs at "
                         f"least one)")
    return np.arange(rank, (n // size) * size, size)


class FitPlan:
    """One rank's part of a fit: ``n`` (its samples per epoch), ``verbose`` (0 but on rank 0),
    ``callbacks`` (without ModelCheckpoint and CSVLogger but on rank 0)."""

    def __init__(self, model, n, verbose, callbacks):
        if getattr(model, "device", "cpu") != "cpu":
            raise NotImplementedError("dlfast.distributed: fit with a DistributedOptimizer "
                                      "runs on the CPU path only; call model.to('cpu')")
        self.model = model
        self.rank, self.size = _mpi.rank(), _mpi.size()
        self.n_all = n
        self.positions = shard_positions(n, self.rank, self.size, "fit")
        self.n = len(self.positions)
        self.verbose = verbose if self.rank == 0 else 0
        callbacks = list(callbacks or [])
        self.callbacks = callbacks if self.rank == 0 else [
            cb for cb in callbacks if not isinstance(cb, ROOT_ONLY)]

    def epoch_order(self, order):
        """This rank's positions of the epoch's order (``None``: unshuffled). The shuffled
        order is rank 0's, broadcast, so a different seed per rank changes nothing."""
        if order is None:
            return self.positions
        order = np.ascontiguousarray(order, np.int64)
        _mpi.comm().Bcast(order, root=0)
        return order[self.positions]

    def batch_loss(self, loss):
        """The batch loss averaged over the ranks, for batch callbacks (TerminateOnNaN then
        stops every rank at the same step)."""
        return float(_mpi.comm().allreduce(float(loss)) / self.size)

    def _weighted_mean(self, logs, count):
        """Every entry of ``logs`` averaged over the ranks, weighted by ``count``: one
        Allreduce of [count * value..., count]."""
        keys = list(logs)
        buf = np.array([float(logs[k]) * count for k in keys] + [float(count)], np.float64)
        _mpi.comm().Allreduce(_mpi.mpi().IN_PLACE, buf, op=_mpi.mpi().SUM)
        total = buf[-1]
        return {k: float(v / total) if total else float(logs[k]) for k, v in zip(keys, buf)}

    def epoch_logs(self, logs, seen):
        """The epoch's training logs averaged over the ranks (weighted by the samples each saw,
        so they are the global epoch means); BatchNormalization's moving statistics are
        averaged here too, before the callbacks (a checkpoint) see the model."""
        average_moving_statistics(self.model)
        return self._weighted_mean(logs, seen)

    def _evaluate_prepared(self, x, y, batch_size):
        """Validation on this rank's shard (positions rank, rank + size, ..., all of them), the
        results averaged weighted by the shard sizes: the global validation means."""
        xs, ys = (np.ascontiguousarray(a[self.rank::self.size]) for a in (x, y))
        logs = self.model._evaluate_prepared(xs, ys, batch_size)
        return self._weighted_mean(logs, len(xs))


def average_moving_statistics(model):
    """Average the moving statistics of every BatchNormalization layer over the ranks (one
    Allreduce per dtype)."""
    arrays = [w for layer in model._leaf_layers() if isinstance(layer, BatchNormalization)
              for w, t in zip(layer.weights, layer.weight_trainable) if not t]
    _mpi.allreduce_mean(arrays)
