"""DistributedOptimizer: Horovod's wrapper. Every step first averages the gradients over the
ranks (one Allreduce over the model's gradients packed in one buffer), then runs the wrapped
optimizer's own update, so every rank takes the same step from the same weights."""

from ..optimizers import Optimizer
from . import _mpi
from ._fit_plan import FitPlan


class DistributedOptimizer(Optimizer):
    """Wrap ``optimizer`` (any ``dlfast.optimizers.Optimizer``, SGDG2 included) so that each step
    averages the gradients over the ranks before its update: the gradient arrays of the step
    (a model gives one packed buffer per layer) are copied into one buffer per dtype, summed by
    one ``MPI_Allreduce`` in place, divided by ``size()`` and copied back. An optimizer that
    evaluates the gradient a second time (SGDG2's probe) has that gradient averaged too (a
    second Allreduce, in the closure), so its step-size rule sees the global gradients.

    Reads and writes of the wrapped optimizer's attributes (``learning_rate``, ``iterations``,
    its state) go through to it, so callbacks such as ReduceLROnPlateau work unchanged. A
    saved model stores the wrapped optimizer (``Adam``, not ``DistributedOptimizer``): the file
    loads without MPI. ``fit`` with this optimizer trains each rank on its shard of every epoch
    (see the ``dlfast.distributed`` module). ``allreduce_calls`` counts the Allreduce calls
    made so far. ``init()`` must have run."""

    _own = ("optimizer", "allreduce_calls", "_scratch_buffers", "_layout")

    def __init__(self, optimizer):
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already a "
                            "DistributedOptimizer; wrap the plain optimizer once")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"DistributedOptimizer: expected a dlfast.optimizers.Optimizer "
                            f"instance (e.g. dlfast.optimizers.Adam(1e-3)), got "
                            f"{type(optimizer).__name__} {optimizer!r}")
        _mpi.comm()  # init() first: a clear error now rather than at the first step
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "allreduce_calls", 0)
        object.__setattr__(self, "_scratch_buffers", {})
        object.__setattr__(self, "_layout", None)

    # --- the wrapped optimizer shows through --------------------------------------------------
    def __getattr__(self, name):  # only for what the wrapper itself lacks
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name, value):
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)

    @property
    def needs_closure(self):
        return self.optimizer.needs_closure

    @property
    def scalar_state(self):
        return self.optimizer.scalar_state

    @property
    def update_kernel(self):
        return None  # never the device's own optimizer kernel: the average comes first

    def __repr__(self):
        return f"DistributedOptimizer({self.optimizer!r})"

    def current_learning_rate(self):
        return self.optimizer.current_learning_rate()

    def slot(self, weight, name):
        return self.optimizer.slot(weight, name)

    def scratch(self, weight, name):
        return self.optimizer.scratch(weight, name)

    def get_state(self, weights):
        return self.optimizer.get_state(weights)

    def set_state(self, weights, state):
        self.optimizer.set_state(weights, state)

    def get_config(self):
        return self.optimizer.get_config()

    def saved_optimizer(self):
        """What a model file stores in this wrapper's place: the wrapped optimizer."""
        return self.optimizer

    # --- the step -----------------------------------------------------------------------------
    def average(self, grads):
        """Average ``grads`` (a list of float arrays) over the ranks, in place."""
        grads = list(grads)
        self._check_layout(grads)
        self.allreduce_calls += _mpi.allreduce_mean(grads, self._scratch_buffers)

    def _check_layout(self, grads):
        """The first time (and whenever the arrays change) every rank must bring the same
        number of values of each dtype, or the Allreduce would mix unrelated values (or hang):
        compared over the ranks, one allgather, with a clear error on every rank."""
        layout = tuple((str(d), sum(a.size for a in g)) for d, g in _mpi.groups(grads).items())
        if layout == self._layout:
            return
        everyone = _mpi.comm().allgather(layout)
        if any(other != layout for other in everyone):
            raise ValueError("DistributedOptimizer: the ranks' models differ; gradient values "
                             "per dtype, by rank: " + "; ".join(
                                 f"rank {r}: {dict(lay)}" for r, lay in enumerate(everyone)))
        self._layout = layout

    def apply(self, grads, weights, closure=None):
        """Average ``grads`` over the ranks, then the wrapped optimizer's ``apply``."""
        grads, weights = list(grads), list(weights)
        if len(grads) != len(weights):
            raise ValueError(f"DistributedOptimizer.apply: got {len(grads)} grads for "
                             f"{len(weights)} weights; the lists must be parallel")
        self.average(grads)
        if self.optimizer.needs_closure and callable(closure):
            def averaged_closure():
                loss = closure()
                self.average(grads)
                return loss
            self.optimizer.apply(grads, weights, closure=averaged_closure)
        else:
            self.optimizer.apply(grads, weights, closure=closure)

    def _apply(self, grads, weights, kernels=None, slot=None):
        raise NotImplementedError("DistributedOptimizer: call apply(), which averages the "
                                  "gradients first")

    def _fit_plan(self, model, n, verbose, callbacks):
        """dlfast's fit calls this (dlfast/_fit.py): how this rank takes part in the fit."""
        return FitPlan(model, n, verbose, callbacks)
