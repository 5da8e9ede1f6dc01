"""The CUDA backend (see dlfast.backend): dlfast.backend.cpu's entry points, with the same
signatures, on device arrays through dlfast._cuda. A layer's results go into buffers cached
by (tag, shape), so a training step allocates nothing after the first; ``Runner`` keeps a
model's weights, gradients and optimizer state on the device (model.to('cuda'))."""

import math

import numpy as np

from ..cuda import _device, ops as device_ops
from ..layers.base import trainable_version
from ..layers import (LSTM, Activation, Add, AveragePooling2D, Conv2D, Dense, Flatten,
                      GlobalAveragePooling2D, Input, MaxPooling2D)
from ..ops import LOSSES

SUPPORTED = "Dense, Activation, ReLU, Flatten, Conv2D, MaxPooling2D, AveragePooling2D, " \
            "GlobalAveragePooling2D, LSTM, Add"


def ext():
    return _device.ext


def rows(a):
    """A device array viewed as (batch, everything else); device reshapes take no -1."""
    return a if a.ndim == 2 else a.reshape(a.shape[0], math.prod(a.shape[1:]))


class Buffers:
    """Device arrays cached by (tag, shape, dtype): allocated on first use, then reused."""

    def __init__(self):
        self._arrays = {}

    def get(self, tag, shape, dtype="float32"):
        key = (tag, tuple(shape), dtype)
        a = self._arrays.get(key)
        if a is None:
            a = self._arrays[key] = ext().empty(tuple(shape), dtype)
        return a


class Kernels(Buffers):
    """One layer's kernels on the device: dlfast.backend.cpu's signatures, results in this
    layer's buffers (valid until the layer's next call)."""

    # --- array helpers ------------------------------------------------------------------
    def add(self, a, b, tag="add"):
        out = self.get(tag, a.shape)
        ext().add(out, a, b)
        return out

    def copy(self, a, tag="copy"):
        out = self.get(tag, a.shape)
        ext().copy_strided(rows(out), rows(a), 0, rows(a).shape[1])
        return out

    def last_step(self, a, tag="last"):
        n, steps, u = a.shape
        out = self.get(tag, (n, u))
        ext().copy_strided(out, a, (steps - 1) * u, steps * u)
        return out

    # --- kernels ------------------------------------------------------------------------
    def activation_forward(self, x, activation, negative_slope=None):
        y = self.get("act_y", x.shape)
        ext().activation_forward(y, x, activation)
        return y

    def activation_backward(self, dy, y, activation, negative_slope=None):
        dx = self.get("act_dx", dy.shape)
        ext().activation_backward(dx, dy, y, activation)
        return dx

    def dense_forward(self, x, kernel, bias, activation):
        y = self.get("y", (x.shape[0], kernel.shape[1]))
        ext().dense_forward(y, x, kernel, bias, activation)
        return y

    def dense_backward(self, dy, x, kernel, y, activation, dkernel, dbias, need_dx=True,
                       accumulate=True):
        dx = self.get("dx", x.shape) if need_dx else None
        ext().dense_backward(dx, dkernel, dbias, dy, x, kernel, y, activation, accumulate)
        return dx

    @staticmethod
    def _conv_geometry(x, kernel, strides, padding, dilation):
        return device_ops.conv_geometry(x.shape[1:3], kernel.shape[:2], strides, padding,
                                        dilation, "conv2d")

    def conv2d_forward(self, x, kernel, bias, strides, padding, dilation, activation):
        out_hw, geometry = self._conv_geometry(x, kernel, strides, padding, dilation)
        y = self.get("y", (x.shape[0],) + out_hw + (kernel.shape[3],))
        ext().conv2d_forward(y, x, kernel, bias, out_hw, geometry, activation)
        return y

    def conv2d_backward(self, dy, x, kernel, y, strides, padding, dilation, activation, dkernel,
                        dbias, need_dx=True, accumulate=True):
        geometry = self._conv_geometry(x, kernel, strides, padding, dilation)[1]
        dx = self.get("dx", x.shape) if need_dx else None
        ext().conv2d_backward(dx, dkernel, dbias, dy, x, kernel, y, geometry, activation,
                              accumulate)
        return dx

    def _pool_forward(self, x, pool, strides, padding, is_max):
        pool, out_hw, geometry = device_ops.pool_geometry(x.shape[1:3], pool, strides, padding,
                                                          "pool2d")
        y = self.get("y", (x.shape[0],) + out_hw + (x.shape[3],))
        ext().pool2d_forward(y, x, pool, geometry, is_max)
        return y

    def _pool_backward(self, dy, input_shape, x, pool, strides, padding, is_max):
        pool, _, geometry = device_ops.pool_geometry(input_shape[1:3], pool, strides, padding,
                                                     "pool2d")
        dx = self.get("dx", input_shape)
        ext().pool2d_backward(dx, dy, x, pool, geometry, is_max)
        return dx

    def maxpool2d_forward(self, x, pool, strides, padding):
        return self._pool_forward(x, pool, strides, padding, True)

    def maxpool2d_backward(self, dy, x, pool, strides, padding):
        return self._pool_backward(dy, x.shape, x, pool, strides, padding, True)

    def avgpool2d_forward(self, x, pool, strides, padding):
        return self._pool_forward(x, pool, strides, padding, False)

    def avgpool2d_backward(self, dy, input_shape, pool, strides, padding):
        return self._pool_backward(dy, tuple(input_shape), None, pool, strides, padding, False)

    def lstm_forward(self, x, kernel, recurrent_kernel, bias, h0, c0):
        n, steps, u = x.shape[0], x.shape[1], recurrent_kernel.shape[0]
        H, C = self.get("H", (n, steps, u)), self.get("C", (n, steps, u))
        Z = self.get("Z", (n, steps, 4 * u))
        ext().lstm_forward(H, C, Z, x, kernel, recurrent_kernel, bias, h0, c0)
        return H, C, Z

    def lstm_backward(self, dH, dh_last, dc_last, x, kernel, recurrent_kernel, h0, c0, H, C, Z,
                      dkernel, drecurrent_kernel, dbias, need_dx=True, need_dstate=False,
                      accumulate=True):
        n, u = x.shape[0], recurrent_kernel.shape[0]
        dx = self.get("dx", x.shape) if need_dx else None
        dh0 = self.get("dh0", (n, u)) if need_dstate else None
        dc0 = self.get("dc0", (n, u)) if need_dstate else None
        ext().lstm_backward(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0, dH, dh_last,
                            dc_last, x, kernel, recurrent_kernel, h0, c0, H, C, Z, accumulate)
        return dx, dh0, dc0


def check_layer(layer):
    """NotImplementedError naming a layer (or its option) the CUDA backend lacks."""
    act = getattr(layer, "_act", None)  # Dense, Conv2D, Activation, LeakyReLU
    if act is not None and act not in device_ops.DEVICE_ACTIVATION_CODES:
        raise NotImplementedError(f"model.to('cuda'): layer '{layer.name}' "
                                  f"({type(layer).__name__}) uses the activation "
                                  f"{layer.activation}, "
                                  f"which has no CUDA implementation yet; keep the model on "
                                  f"the CPU")
    kinds = (Add, Dense, Activation, Flatten, Conv2D, MaxPooling2D, AveragePooling2D,
             GlobalAveragePooling2D, LSTM)
    if not isinstance(layer, kinds) or getattr(layer, "return_state", False):
        raise NotImplementedError(f"model.to('cuda'): layer '{layer.name}' "
                                  f"({type(layer).__name__}"
                                  f"{' with return_state' if isinstance(layer, LSTM) else ''}) "
                                  f"has no CUDA implementation yet; supported: {SUPPORTED}")


# --- model level: dlfast.backend.cpu's begin_step, inputs, targets, loss, tally, update, ... --
class _DeviceUpdates:
    """The optimizer updates dlfast._cuda has, with dlfast._core's signatures (parallel lists
    of arrays, here the one flat device array of all trained weights), so each optimizer's own
    _apply runs on the device: the step is written once (dlfast/optimizers)."""

    @staticmethod
    def sgd_update(weights, grads, velocities, learning_rate, momentum, nesterov, weight_decay):
        for i, (w, g) in enumerate(zip(weights, grads)):
            ext().sgd_update(w, None if velocities is None else velocities[i], g, learning_rate,
                             momentum, nesterov, weight_decay)

    @staticmethod
    def adam_update(weights, grads, momentums, velocities, learning_rate, beta_1, beta_2,
                    epsilon, weight_decay, step):
        for w, g, m, v in zip(weights, grads, momentums, velocities):
            ext().adam_update(w, m, v, g, learning_rate, beta_1, beta_2, epsilon, step,
                              weight_decay)


class _Scalar:
    """A loss on the device; float() reads it back."""

    def __init__(self, array):
        self.array = array

    def __float__(self):
        return float(self.array.to_numpy()[0])


def _offset(view, flat):
    """Element offset of a view inside its flat buffer."""
    return (view.__array_interface__["data"][0] - flat.__array_interface__["data"][0]) \
        // flat.itemsize


class Runner:
    """A model on the device: its trained weights and gradients end to end in one flat device
    array each (one optimizer call per step, as on the CPU), every layer given a ``Kernels``
    and the device views of its arrays; the host arrays (layer.weights, the optimizer's slots)
    are refreshed by ``pull`` (get_weights, save, to('cpu'))."""

    def __init__(self, model):
        if not getattr(model, "runs_on_cuda", False):
            raise NotImplementedError(f"model.to('cuda'): only Sequential and functional models "
                                      f"run on the GPU, got {type(model).__name__}")
        if model.dtype != np.float32:
            raise NotImplementedError(f"model.to('cuda'): the CUDA kernels are float32, the model "
                                      f"is {model.dtype}")
        layers = [layer for layer in model.layers if not isinstance(layer, Input)]
        for layer in layers:
            if getattr(layer, "kernel_regularizer", None) is not None:
                raise NotImplementedError(f"model.to('cuda'): layer '{layer.name}' has a "
                                          f"kernel_regularizer, not supported on the GPU yet")
            check_layer(layer)
        self.model, self.layers = model, layers
        self._place()
        self.slots = {}  # slot name -> its device array, for self.optimizer
        self.optimizer = None
        self.io = Buffers()
        self.loss_step = ext().zeros((1,), "float64")

    def _place(self):
        """The trainable layers' host buffers (model._optimizer_arrays) as one flat device
        array, and each layer's device views; trainable is read here, and a flag set later
        makes the next step place them again (begin_step)."""
        model = self.model
        self.version = trainable_version()
        _, self.host_weights = model._optimizer_arrays()
        self.host_offsets = np.cumsum([0] + [w.size for w in self.host_weights]).tolist()
        self.flat_w = self.flat_g = None
        if self.host_weights:
            self.flat_w = ext().from_numpy(self._host_flat(self.host_weights))
            self.flat_g = ext().zeros((self.host_offsets[-1],))
        for layer in self.layers:
            weights, grads = [], []
            for w in layer.weights:
                off = self._device_offset(w)
                if off is not None:
                    weights.append(self.flat_w.rows(off, off + w.size).reshape(*w.shape))
                    grads.append(self.flat_g.rows(off, off + w.size).reshape(*w.shape))
                else:  # a frozen weight: on the device, its gradient never applied
                    weights.append(ext().from_numpy(np.ascontiguousarray(w, np.float32)))
                    grads.append(ext().zeros(w.shape))
            layer.backend, layer.arrays = Kernels(), (weights, grads)
        model.backend = Kernels()  # a functional model's sums of gradients

    def release(self):
        """Give the layers back their host arrays and the CPU kernels (to('cpu'))."""
        for layer in self.layers + [self.model]:
            layer.__dict__.pop("backend", None)
            layer.arrays = (layer.weights, layer.grads)

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
        if self.flat_w is None:
            return
        self._to_host(self.flat_w, self.host_weights)
        for slot_name, state in self.slots.items():
            self._to_host(state, [self.optimizer.slot(w, slot_name) for w in self.host_weights])

    def push(self):
        if self.flat_w is not None:
            self.flat_w.upload(self._host_flat(self.host_weights))

    def _slot(self, flat_w, slot_name):
        """The optimizer's state ``slot_name`` of every trained weight, as one device array
        (its host arrays uploaded when first asked)."""
        if slot_name not in self.slots:
            self.slots[slot_name] = ext().from_numpy(self._host_flat(
                [self.optimizer.slot(w, slot_name) for w in self.host_weights]))
        return self.slots[slot_name]

    # --- the steps ---------------------------------------------------------------------------
    def begin_step(self, model):
        if self.version != trainable_version():  # a layer was frozen or unfrozen: re-place
            self.pull()  # the optimizer's slots too, uploaded again when next asked
            self._place()
            self.optimizer = None
        opt = model.optimizer
        if opt.needs_closure or not hasattr(_DeviceUpdates, opt.update_kernel or ""):
            raise NotImplementedError(f"model.to('cuda'): optimizer {type(opt).__name__} has no "
                                      f"CUDA implementation yet; use dlfast.optimizers.SGD, "
                                      f"Adam or AdamW")
        if opt is not self.optimizer:  # first step, or compiled again: state from the host
            self.optimizer, self.slots = opt, {}

    def _upload(self, tag, array, dtype="float32"):
        a = np.ascontiguousarray(array, dtype=dtype)
        d = self.io.get(tag, a.shape, dtype)
        d.upload(a)
        return d

    def inputs(self, x):
        return self._upload("x", x)

    def targets(self, model, y):
        """(target, labels) device arrays of a prepared batch of y."""
        if model.loss.kernel_name not in device_ops.DEVICE_LOSSES:
            raise NotImplementedError(f"model.to('cuda'): loss {type(model.loss).__name__} has "
                                      f"no CUDA implementation yet; on the GPU: "
                                      f"{', '.join(device_ops.DEVICE_LOSSES)}")
        if model.loss.kernel_name == "sparse_categorical_crossentropy":
            return None, self._upload("labels", y, "int64")
        return self._upload("target", np.asarray(y).reshape(len(y), -1)), None

    def loss(self, kind, y_true, y_pred, from_logits=False, want_grad=True, delta=1.0, *,
             total=None, scale=1.0):
        """dlfast._core.loss on the device: (the loss, its gradient or None). With ``total``
        the loss times ``scale`` is added there instead (Tally)."""
        out2 = rows(y_pred)
        grad = self.io.get("dout", out2.shape) if want_grad else None
        ext().loss(self.loss_step if total is None else total, grad, out2, y_true[0],
                   y_true[1], kind, bool(from_logits), scale, total is not None)
        return _Scalar(self.loss_step), None if grad is None else grad.reshape(*y_pred.shape)

    def update(self, model, closure=None):
        """The optimizer's own _apply on the flat weights, through _DeviceUpdates."""
        opt = model.optimizer
        if self.flat_w is not None:
            opt._apply([self.flat_g], [self.flat_w], kernels=_DeviceUpdates, slot=self._slot)
        opt.iterations += 1

    def tally(self, model):
        return _Tally(self, model)

    @staticmethod
    def to_host(a):
        return a.to_numpy()


class _Tally:
    """dlfast.backend.cpu.Tally's sums kept on the device, read once (``read``)."""

    def __init__(self, runner, model):
        self.runner, self.model = runner, model
        self.total = ext().zeros((1,), "float64")
        self.counts = [ext().zeros((1,), "int64") for _ in model.metrics]

    def add(self, out, y, n, loss=None):
        model = self.model
        self.runner.loss(LOSSES[model.loss.kernel_name], y, out,
                         model._head_fused or model.loss.from_logits, False, total=self.total,
                         scale=float(n))
        target, labels = y
        out2 = rows(out)
        threshold = 0.0 if model._head_fused else 0.5
        for m, c in zip(model.metrics, self.counts):
            if m.kind == "binary" or labels is None:
                ext().count_correct(c, out2, target, None, threshold)
            else:
                ext().count_correct(c, out2, None, labels, threshold)

    def read(self):
        return float(self.total.to_numpy()[0]), [int(c.to_numpy()[0]) for c in self.counts]


def move(model, device):
    """model.to(device): 'cuda' (or 'cuda:0') or 'cpu'. Returns the model."""
    from . import cpu
    label = device if isinstance(device, str) else repr(device)
    if label not in ("cpu", "cuda", "cuda:0"):
        raise ValueError(f"{model.name}.to: device must be 'cpu' or 'cuda', got {label!r}")
    if label == "cpu":
        if model._runner is not cpu:
            model._runner.pull()
            model._runner.release()
            model._runner = cpu
        model.device = "cpu"
        return model
    _device.require("Model.to")
    if model._runner is cpu:
        model._ensure_built()
        model._runner = Runner(model)
    model.device = "cuda"
    return model
