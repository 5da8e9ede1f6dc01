"""A model on the GPU: ``model.to('cuda')`` hands the model to a ``DeviceRunner``, which keeps
its weights, gradients and optimizer state in device memory and runs train_on_batch, fit,
evaluate and predict there with NumPy in and out. Each layer gets a small device twin that
calls the CUDA kernels into buffers cached per batch size (no allocation per step after the
first). A training step reads nothing back: fit adds each step's loss and correct counts up
on the device and reads them once per epoch; train_on_batch reads its one loss.

Supported: Sequential and functional models (dlfast.Model, with Add) of Dense,
Activation/ReLU, Flatten, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D and
LSTM (no return_state), float32, optimizers SGD
(momentum, Nesterov, weight decay, schedules), Adam and AdamW (weight decay, schedules), losses
mse and the cross-entropies. Anything else raises NotImplementedError naming it, the activation
'leaky_relu' and LeakyReLU too (the CUDA activation kernels have no leaky_relu yet). The host
arrays (layer.weights and the optimizer's slots) are refreshed by get_weights(), save() and
to('cpu')."""

import numpy as np

from ..layers.base import trainable_version
from ..layers.core import Input
from ..ops import LINEAR, LOSSES
from . import _device, ops as device_ops
from .twins import Buffers, cuda_ext, device_twin, rows


class _DeviceUpdates:
    """The optimizer updates the CUDA module has, with dlfast._core's signatures (parallel lists
    of arrays, here the one flat device array of all trained weights), so each optimizer's own
    _apply runs on the device: the step is written once (dlfast/optimizers)."""

    @staticmethod
    def sgd_update(weights, grads, velocities, learning_rate, momentum, nesterov, weight_decay):
        for i, (w, g) in enumerate(zip(weights, grads)):
            cuda_ext().sgd_update(w, None if velocities is None else velocities[i], g,
                                  learning_rate, momentum, nesterov, weight_decay)

    @staticmethod
    def adam_update(weights, grads, momentums, velocities, learning_rate, beta_1, beta_2,
                    epsilon, weight_decay, step):
        for w, g, m, v in zip(weights, grads, momentums, velocities):
            cuda_ext().adam_update(w, m, v, g, learning_rate, beta_1, beta_2, epsilon, step,
                                   weight_decay)


def _check_optimizer(opt):
    """NotImplementedError for an optimizer whose update the CUDA module lacks."""
    if opt.needs_closure or not hasattr(_DeviceUpdates, opt.update_kernel or ""):
        raise NotImplementedError(f"model.to('cuda'): optimizer {type(opt).__name__} has no CUDA "
                                  f"implementation yet; use dlfast.optimizers.SGD, Adam or AdamW")


def _device_loss_code(loss):
    """The CUDA loss kernel's code of ``loss``; NotImplementedError for a loss it lacks."""
    if loss.kernel_name not in device_ops.DEVICE_LOSSES:
        raise NotImplementedError(f"model.to('cuda'): loss {type(loss).__name__} has no CUDA "
                                  f"implementation yet; on the GPU: "
                                  f"{', '.join(device_ops.DEVICE_LOSSES)}")
    return LOSSES[loss.kernel_name]


def _offset(view, flat):
    """Element offset of a view inside its flat buffer."""
    return (view.__array_interface__["data"][0] - flat.__array_interface__["data"][0]) \
        // flat.itemsize


class DeviceRunner:
    """The device side of one model (see the module docstring)."""

    def __init__(self, model):
        walk = model._device_walk()
        if walk is None:
            raise NotImplementedError(f"model.to('cuda'): only Sequential and functional models "
                                      f"run on the GPU, got {type(model).__name__}")
        if model.dtype != np.float32:
            raise NotImplementedError(f"model.to('cuda'): the CUDA kernels are float32, the model "
                                      f"is {model.dtype}")
        for layer in model._leaf_layers():
            if getattr(layer, "kernel_regularizer", None) is not None:
                raise NotImplementedError(f"model.to('cuda'): layer '{layer.name}' has a "
                                          f"kernel_regularizer, not supported on the GPU yet")
        self.model = model
        ext = cuda_ext()
        # The trainable layers' host buffers (model._optimizer_arrays), end to end in one device
        # array: one update call per step, as on the CPU. trainable is read here; a flag set
        # later makes the next step rebuild the runner (see train_step).
        self.version = trainable_version()
        host_grads, self.host_weights = model._optimizer_arrays()
        self.host_offsets = np.cumsum([0] + [w.size for w in self.host_weights]).tolist()
        self.flat_w = self.flat_g = None
        if self.host_weights:
            self.flat_w = ext.from_numpy(self._host_flat(self.host_weights))
            self.flat_g = ext.zeros((self.host_offsets[-1],))
        self.layers = []  # the device twins, in the model's layer order
        twin = {}
        for layer in model.layers:
            if isinstance(layer, Input):  # a functional model's input: nothing to run
                continue
            weights, grads = [], []
            for w, g in zip(layer.weights, layer.grads):
                off = self._device_offset(w)
                if off is not None:
                    weights.append(self.flat_w.rows(off, off + w.size).reshape(*w.shape))
                    grads.append(self.flat_g.rows(off, off + w.size).reshape(*w.shape))
                else:  # a frozen weight: on the device, its gradient never applied
                    weights.append(ext.from_numpy(np.ascontiguousarray(w, np.float32)))
                    grads.append(ext.zeros(w.shape))
            twin[layer] = device_twin(layer, weights, grads)
            self.layers.append(twin[layer])
        # The model's own walk over its layers, run on the twins (see forward / backward).
        self._walk = walk
        if hasattr(model, "_steps"):  # a functional model's graph
            self._steps = [(twin[layer], ins, out) for layer, ins, out in model._steps]
        self.grad_sums = Buffers()
        self.slots = {}  # slot name -> its device array, for self.optimizer
        self.optimizer = None
        self.inputs = Buffers()
        self.loss_step = ext.zeros((1,), "float64")

    # --- weights and optimizer state between host and device ---------------------------------
    def _device_offset(self, w):
        """Where host weight ``w`` starts in the device's flat array (None: not trained)."""
        for host, start in zip(self.host_weights, self.host_offsets):
            if np.shares_memory(w, host):
                return start + _offset(w, host)
        return None

    @staticmethod
    def _host_flat(arrays):
        return np.concatenate([np.ascontiguousarray(a, np.float32).reshape(-1) for a in arrays])

    def _to_host(self, device_flat, arrays):
        flat = device_flat.to_numpy()
        for a, lo, hi in zip(arrays, self.host_offsets, self.host_offsets[1:]):
            a[...] = flat[lo:hi].reshape(a.shape)

    def pull(self):
        """Copy the device weights (and optimizer slots) into the host arrays."""
        if self.flat_w is None:
            return
        self._to_host(self.flat_w, self.host_weights)
        for name, state in self.slots.items():
            self._to_host(state, [self.optimizer.slot(w, name) for w in self.host_weights])

    def push(self):
        """Copy the host weights to the device (after set_weights)."""
        if self.flat_w is not None:
            self.flat_w.upload(self._host_flat(self.host_weights))

    def _optimizer_state(self):
        opt = self.model.optimizer
        _check_optimizer(opt)
        if opt is not self.optimizer:  # first step, or compiled again: state from the host
            self.optimizer, self.slots = opt, {}
        return opt

    def _slot(self, flat_w, name):
        """The optimizer's state `name` of every trained weight, as one device array (its
        host arrays uploaded when first asked)."""
        if name not in self.slots:
            self.slots[name] = cuda_ext().from_numpy(self._host_flat(
                [self.optimizer.slot(w, name) for w in self.host_weights]))
        return self.slots[name]

    def _update(self, opt):
        """One step of ``opt`` on the flat weights from the flat gradients, on the device: the
        optimizer's own _apply through _DeviceUpdates (opt.iterations not yet advanced)."""
        opt._apply([self.flat_g], [self.flat_w], kernels=_DeviceUpdates, slot=self._slot)

    # --- forward / backward ------------------------------------------------------------------
    def _upload(self, name, array, dtype="float32"):
        a = np.ascontiguousarray(array, dtype=dtype)
        d = self.inputs.get(name, a.shape, dtype)
        d.upload(a)
        return d

    # The device twins have the host layers' call_forward / call_backward (and the runner a
    # functional model's _steps over them), so the runner walks them with the model class's
    # own call_forward / call_backward, as the CPU does.
    def forward(self, x, training, act=None):
        return self._walk.call_forward(self, x, training, act)

    def backward(self, dy):
        self._walk.call_backward(self, dy, need_dx=False, accumulate=False)

    def _sum_grads(self, slot, a, b):
        """Functional.call_backward's sum of two gradients reaching one slot: into a buffer of
        that slot (so never into an array Add also handed to another slot)."""
        out = self.grad_sums.get(("slot", slot), a.shape)
        cuda_ext().add(out, a, b)
        return out

    def _head(self, x, training):
        model = self.model
        return self.forward(x, training, act=LINEAR) if model._fused_head() else \
            self.forward(x, training)

    def _targets(self, y):
        """(target, labels) device arrays of a prepared batch of y."""
        if self.model.loss.kernel_name == "sparse_categorical_crossentropy":
            return None, self._upload("labels", y, "int64")
        return self._upload("target", np.asarray(y).reshape(len(y), -1)), None

    def _loss(self, out, y, grad, total, scale, accumulate):
        model = self.model
        target, labels = y
        out2 = rows(out)
        cuda_ext().loss(total, grad, out2, target, labels, _device_loss_code(model.loss),
                    bool(model._head_fused or model.loss.from_logits), scale, accumulate)

    def _count(self, counts, out, y):
        target, labels = y
        out2 = rows(out)
        threshold = 0.0 if self.model._head_fused else 0.5
        for m, c in zip(self.model.metrics, counts):
            if m.kind == "binary" or labels is None:
                cuda_ext().count_correct(c, out2, target, None, threshold)
            else:
                cuda_ext().count_correct(c, out2, None, labels, threshold)

    def train_step(self, x, y, sums=None):
        """One optimizer step on a host batch; with ``sums`` (loss_sum, [counts]) the step's
        loss * batch and correct counts are added there, on the device."""
        if self.version != trainable_version():  # a layer was frozen or unfrozen: re-place
            self.pull()
            self.__init__(self.model)
        opt = self._optimizer_state()
        xd = self._upload("x", x)
        yd = self._targets(y)
        out = self._head(xd, True)
        out2 = rows(out)
        grad = self.inputs.get("dout", out2.shape)
        self._loss(out, yd, grad, self.loss_step, 1.0, False)
        if sums is not None:
            self._loss(out, yd, None, sums[0], float(len(x)), True)
            self._count(sums[1], out, yd)
        self.backward(grad.reshape(*out.shape))
        if self.flat_w is not None:
            self._update(opt)
        opt.iterations += 1

    def last_loss(self):
        return float(self.loss_step.to_numpy()[0])

    def new_sums(self):
        ext = cuda_ext()
        return ext.zeros((1,), "float64"), [ext.zeros((1,), "int64") for _ in self.model.metrics]

    @staticmethod
    def read_sums(sums):
        return float(sums[0].to_numpy()[0]), [int(c.to_numpy()[0]) for c in sums[1]]

    def evaluate(self, x, y, batch_size):
        """The logs of Model.evaluate (loss, then the metrics), computed on the device."""
        n = x.shape[0]
        sums = self.new_sums()
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            out = self._head(self._upload("x", x[lo:hi]), False)
            yd = self._targets(y[lo:hi])
            self._loss(out, yd, None, sums[0], float(hi - lo), True)
            self._count(sums[1], out, yd)
        total, correct = self.read_sums(sums)
        logs = {"loss": total / max(n, 1)}
        for m, c in zip(self.model.metrics, correct):
            logs[m.name] = c / max(n, 1)
        return logs

    def predict(self, x, batch_size):
        outs = [self.forward(self._upload("x", x[lo:lo + batch_size]), False).to_numpy()
                for lo in range(0, x.shape[0], batch_size)]
        if not outs:
            return np.zeros((0,) + self.model.output_shape, np.float32)
        return np.concatenate(outs) if len(outs) > 1 else outs[0]


def move(model, device):
    """model.to(device): 'cuda' (or 'cuda:0') or 'cpu'. Returns the model."""
    name = device if isinstance(device, str) else repr(device)
    if name not in ("cpu", "cuda", "cuda:0"):
        raise ValueError(f"{model.name}.to: device must be 'cpu' or 'cuda', got {name!r}")
    if name == "cpu":
        runner = model._cuda
        if runner is not None:
            runner.pull()
            model._cuda = None
        model.device = "cpu"
        return model
    _device.require("Model.to")
    if model._cuda is None:
        model._ensure_built()
        model._cuda = DeviceRunner(model)
    model.device = "cuda"
    return model


__all__ = ["DeviceRunner", "move"]
