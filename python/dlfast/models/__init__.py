"""Models: the Model base class holds what every model does (Keras's compile, fit, evaluate,
predict, train_on_batch, summary, save); Sequential (a stack of layers) and the functional
model (``Model(inputs, outputs)``, a graph of layer calls: dlfast/functional.py) only say how
the data flows. A model is a layer: forward/backward/weights/grads work on it as on any layer.

A model owns no weights: they live in its layers, each layer's trainable weights packed in one
buffer (and its gradients in another) when it is built (Layer._pack_parameters). A layer held
by two models (a GAN's discriminator, alone and inside the combined model) is one set of
arrays, and ``trainable`` is read at every step: an optimizer step is one C++ call over the
buffers of the layers that are trainable now (``_optimizer_arrays``). The training step calls
the layers' kernels directly (their inputs were checked once, at the model's door) and fuses a
final softmax/sigmoid into the cross-entropy (from logits: stable, and one pass fewer)."""

from ..saving import load_model
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]
