"""The CPU backend (see dlfast.backend): the kernels are dlfast._core's own functions, so a
layer on the CPU pays no wrapper; the array helpers and the model-level steps are NumPy."""

import numpy as np

from .._core import (activation_backward, activation_forward, avgpool2d_backward,  # noqa: F401
                     avgpool2d_forward, batchnorm_backward, batchnorm_forward, conv2d_backward,
                     conv2d_forward, conv2d_transpose_backward, conv2d_transpose_forward,
                     dense_backward, dense_forward, embedding_backward, embedding_forward,
                     gru_backward, gru_forward, layernorm_backward, layernorm_forward, loss,
                     lstm_backward, lstm_forward, maxpool2d_backward, maxpool2d_forward,
                     simple_rnn_backward, simple_rnn_forward, upsampling2d_backward,
                     upsampling2d_forward, zeropadding2d_backward, zeropadding2d_forward)

# --- array helpers (``tag`` names the buffer on a device; here every result is new) ---------
def add(a, b, tag=None):
    """a + b, a new array."""
    return np.add(a, b)


def copy(a, tag=None):
    return a.copy()


def last_step(a, tag=None):
    """a[:, -1] of a (batch, time, features) array, C-contiguous."""
    return np.ascontiguousarray(a[:, -1])


# --- model level: what Model's train step, fit, evaluate and predict call ------------------
def begin_step(model):
    """Before a training step (the device re-places its weights here when asked)."""


def inputs(x):
    """A prepared host batch as the layers take it."""
    return x


def targets(model, y):
    """A prepared host batch of targets as ``loss`` takes it."""
    return y


def to_host(a):
    return a


def pull():
    """Bring weights and optimizer state back to the host arrays (nothing to do here)."""


def push():
    """Send the host arrays to where the model runs (nothing to do here)."""


def update(model, closure=None):
    """One step of the model's optimizer on its trainable arrays."""
    grads, weights = model._optimizer_arrays()
    model.optimizer.apply(grads, weights, closure=closure)


class Tally:
    """The sums of one epoch (or one evaluate pass): loss times samples and each metric's
    count of correct samples."""

    def __init__(self, model):
        self.model, self.loss, self.correct = model, 0.0, [0] * len(model.metrics)

    def add(self, out, y, n, loss=None):
        """Add a batch of ``n`` samples: its outputs, targets and (if known) mean loss."""
        model = self.model
        if loss is None:
            loss = model._loss(out, y, False)[0]
        self.loss += loss * n
        for i, m in enumerate(model.metrics):
            self.correct[i] += m.correct(y, out, model._head_fused)

    def read(self):
        return self.loss, self.correct


tally = Tally

__all__ = ["activation_backward", "activation_forward", "avgpool2d_backward", "avgpool2d_forward",
           "batchnorm_backward", "batchnorm_forward", "conv2d_backward", "conv2d_forward",
           "conv2d_transpose_backward", "conv2d_transpose_forward", "dense_backward",
           "dense_forward", "loss", "lstm_backward", "lstm_forward", "maxpool2d_backward",
           "maxpool2d_forward", "upsampling2d_backward", "upsampling2d_forward",
           "zeropadding2d_backward", "zeropadding2d_forward", "embedding_backward",
           "embedding_forward", "gru_backward", "gru_forward", "layernorm_backward",
           "layernorm_forward", "simple_rnn_backward", "simple_rnn_forward", "add", "copy", "last_step",
           "begin_step", "inputs", "targets", "to_host", "pull", "push", "update", "Tally",
           "tally"]
