"""Weights from other libraries: ``load_torch_state_dict`` puts a PyTorch module's weights into
a dlfast model whose layers mirror it. PyTorch itself is not needed: a state dict is a
mapping of names to tensors (or NumPy arrays), read through ``numpy()``."""

from collections import OrderedDict

import numpy as np

from .layers import LSTM, BatchNormalization, Conv2D, Dense, Flatten

__all__ = ["load_torch_state_dict"]

#: the PyTorch module each dlfast layer class mirrors, as this loader recognises it
MIRRORS = {Dense: "nn.Linear", Conv2D: "nn.Conv2d", LSTM: "nn.LSTM (one layer, one direction)",
           BatchNormalization: "nn.BatchNorm1d / nn.BatchNorm2d"}


def _array(name, value):
    if hasattr(value, "detach"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"load_torch_state_dict: entry '{name}' is not numeric "
                        f"({type(value).__name__})")
    return a


def _modules(state_dict):
    """[(module name, {parameter: array})] in registration order (the state dict's own)."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"load_torch_state_dict: expected a state dict (a mapping of names to "
                        f"tensors, e.g. module.state_dict()), got {type(state_dict).__name__}")
    modules = OrderedDict()
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"load_torch_state_dict: state dict keys must be strings, got "
                            f"{key!r}")
        module, _, param = key.rpartition(".")
        modules.setdefault(module, {})[param] = _array(key, value)
    return list(modules.items())


def _kind(params):
    """The dlfast layer class a PyTorch module's parameters describe (None: unknown)."""
    if "weight_ih_l0" in params:
        return LSTM
    if "running_mean" in params:
        return BatchNormalization
    weight = params.get("weight")
    if weight is not None and weight.ndim == 2:
        return Dense
    if weight is not None and weight.ndim == 4:
        return Conv2D
    return None


def _flatten_before(model, layer):
    """The Flatten feeding ``layer`` directly, or None."""
    inbound = model._inbound_layers()
    if inbound is not None:
        sources = inbound.get(layer, [])
        return sources[0] if len(sources) == 1 and isinstance(sources[0], Flatten) else None
    leaves = list(model._leaf_layers())
    i = leaves.index(layer)
    return leaves[i - 1] if i > 0 and isinstance(leaves[i - 1], Flatten) else None


def _dense(model, layer, p):
    kernel = p["weight"].T
    flatten = _flatten_before(model, layer)
    if flatten is not None and flatten.input_shape is not None and len(flatten.input_shape) == 3:
        # PyTorch flattened (C, H, W), dlfast flattens (H, W, C): put the rows in dlfast's order
        h, w, c = flatten.input_shape
        if kernel.shape[0] == h * w * c:
            kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return [kernel, p.get("bias")]


def _lstm(model, layer, p):
    extra = sorted(k for k in p if not k.endswith("_l0"))
    if extra or any(k.endswith("_reverse") for k in p):
        raise ValueError(f"load_torch_state_dict: only one-layer, one-direction nn.LSTM maps to "
                         f"a dlfast LSTM; got the parameters {sorted(p)}")
    # PyTorch's gate rows i, f, g, o are Keras's columns i, f, c~, o: transposes, biases summed
    bias = None
    if "bias_ih_l0" in p:
        bias = p["bias_ih_l0"] + p.get("bias_hh_l0", 0)
    return [p["weight_ih_l0"].T, p["weight_hh_l0"].T, bias]


def _batchnorm(model, layer, p):
    values = ([p.get("weight")] if layer.scale else []) + ([p.get("bias")] if layer.center else [])
    return values + [p["running_mean"], p["running_var"]]


CONVERT = {Dense: _dense, Conv2D: lambda model, layer, p: [p["weight"].transpose(2, 3, 1, 0),
                                                            p.get("bias")],
           LSTM: _lstm, BatchNormalization: _batchnorm}


def load_torch_state_dict(model, state_dict):
    """Put ``state_dict`` (``torch_module.state_dict()``) into ``model``'s layers, module by
    module in registration order against the model's layers that have weights, in order:

    - ``nn.Linear`` -> Dense (weight transposed); the first Dense after a Flatten of an
      image gets its rows permuted, since PyTorch flattens (C, H, W) and dlfast (H, W, C);
    - ``nn.Conv2d`` -> Conv2D (OIHW -> HWIO; stride, padding and dilation are the layers'
      own business: give Conv2D the same ones);
    - ``nn.LSTM`` (one layer, one direction) -> LSTM (gate rows i, f, g, o are Keras's
      i, f, c~, o; weight_ih and weight_hh transposed, the two biases summed);
    - ``nn.BatchNorm1d`` / ``2d`` -> BatchNormalization (weight, bias, running_mean,
      running_var; ``num_batches_tracked`` is ignored). PyTorch's defaults differ from
      Keras's: eps 1e-5 (Keras 1e-3) and a momentum of 0.1 meaning moving = 0.9 * moving +
      0.1 * batch (Keras: momentum=0.9 for the same); build the dlfast layer with
      ``epsilon=1e-5, momentum=0.9`` to get PyTorch's numbers.

    Every entry is checked before any weight is written (count, kind and shape, a mismatch
    naming both sides); nothing is changed when one fails. Returns the model."""
    model._ensure_built()
    modules = [(name, p) for name, p in _modules(state_dict)
               if set(p) - {"num_batches_tracked"}]
    layers = [layer for layer in model._leaf_layers() if layer.weights]
    if len(modules) != len(layers):
        raise ValueError(f"load_torch_state_dict: the state dict has {len(modules)} modules "
                         f"with weights ({', '.join(n or '<root>' for n, _ in modules)}), the "
                         f"model {len(layers)} layers with weights "
                         f"({', '.join(layer.name for layer in layers)})")
    new = {}
    for (module, params), layer in zip(modules, layers):
        label = f"PyTorch module '{module or '<root>'}'"
        kind = _kind(params)
        if kind is None or not isinstance(layer, kind) or type(layer) not in CONVERT:
            mirror = MIRRORS.get(type(layer), "nothing this loader knows")
            raise ValueError(f"load_torch_state_dict: {label} (parameters {sorted(params)}) "
                             f"does not match dlfast layer '{layer.name}' "
                             f"({type(layer).__name__}, which mirrors {mirror})")
        values = CONVERT[type(layer)](model, layer, params)
        if len(values) < len(layer.weights):  # bias=False beside use_bias=False
            values += [None] * (len(layer.weights) - len(values))
        for w, wname, v in zip(layer.weights, layer.weight_names, values):
            if v is None:
                raise ValueError(f"load_torch_state_dict: {label} has no value for dlfast "
                                 f"layer '{layer.name}''s {wname} (bias=False against "
                                 f"use_bias=True?)")
            if v.shape != w.shape:
                raise ValueError(f"load_torch_state_dict: {label} gives {wname} of shape "
                                 f"{v.shape} (after conversion), dlfast layer '{layer.name}' "
                                 f"has {w.shape}")
            new[id(w)] = v
        if len([v for v in values if v is not None]) > len(layer.weights):
            raise ValueError(f"load_torch_state_dict: {label} has a bias, dlfast layer "
                             f"'{layer.name}' has use_bias=False")
    model.set_weights([new.get(id(w), w) for w in model.weights])
    return model
