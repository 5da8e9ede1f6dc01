"""Data-parallel training over MPI (through mpi4py), with Horovod's API.

```python
import dlfast.distributed as dist
dist.init()
opt = dist.DistributedOptimizer(dlfast.optimizers.Adam(1e-3 * dist.size()))
model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=32, epochs=5,
          callbacks=[dist.callbacks.BroadcastWeights(root=0), dist.callbacks.MetricAverage()],
          verbose=1 if dist.rank() == 0 else 0)
```
run with ``mpiexec -n 2 python script.py``. Install: ``pip install "dlfast[distributed]"``
(mpi4py and mpich). Importing this module needs neither; ``init()`` does.

``fit`` with a DistributedOptimizer: every rank passes the whole data set; each epoch's order
(rank 0's shuffle, broadcast, or 0 ... n - 1 with ``shuffle=False``) is shared out as positions
``rank, rank + size, ...``, and ``batch_size`` is per rank, so ``size`` ranks at ``batch_size=b``
take the global batches of one process at ``size * b``. Every rank gets ``n // size`` samples:
the last ``n % size`` positions of the epoch's order are left out (a different few each epoch
when shuffled), so that all ranks take the same number of steps and the last, partial, batches
have equal sizes (the average of the ranks' gradients is then exactly the gradient of the
global batch). Validation is evaluated on shards (all samples) and averaged, weighted by the
shard sizes; the epoch's loss and metrics are averaged the same way, so every rank returns the
same history; BatchNormalization's moving statistics are averaged at each epoch's end. Only
rank 0 prints progress and keeps its ModelCheckpoint and CSVLogger callbacks. Batch callbacks
get the batch loss averaged over the ranks (a small Allreduce per step, only when some callback
has batch hooks). The GPU path is not distributed (fit raises NotImplementedError)."""

import numpy as np

from . import _mpi, callbacks
from ._fit_plan import average_moving_statistics, shard_positions
from ._mpi import init, is_initialized, local_rank, rank, size
from .optimizer import DistributedOptimizer


def shard(x, y=None):
    """This rank's shard of ``x`` (and ``y``), as ``fit`` takes it with ``shuffle=False``:
    positions ``rank, rank + size, ...``, ``len(x) // size`` of them on every rank."""
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    n = len(x)
    if y is not None and not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if y is not None and len(y) != n:
        raise ValueError(f"shard: x has {n} samples, y has {len(y)}; they must match")
    positions = shard_positions(n, rank(), size())
    xs = x[positions]
    return xs if y is None else (xs, y[positions])


def allreduce_mean(arrays):
    """Average a list of float NumPy arrays over the ranks, in place (one Allreduce per
    dtype)."""
    _mpi.allreduce_mean(list(arrays))


def broadcast(arrays, root=0):
    """Give every rank ``root``'s values of a list of NumPy arrays, in place."""
    _mpi.broadcast(list(arrays), _mpi.check_root(root, "broadcast"))


__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "DistributedOptimizer",
           "callbacks", "shard", "allreduce_mean", "broadcast", "average_moving_statistics"]
