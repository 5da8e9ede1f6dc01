"""Keras 3's weights file (``*.weights.h5``), both ways, with h5py (optional: the ``keras``
extra). The layout Keras 3 writes: one group per layer under ``layers/``, named by its class in
snake case with a counter for repeats in the same model (``dense``, ``dense_1``; not the
layer's name, which is the ``name`` attribute of its ``vars`` group), the layer's variables as
datasets ``vars/0``, ``vars/1``, ... in Keras's order (dlfast's too), an LSTM's under
``cell/vars``, a Bidirectional's under ``forward_layer`` and ``backward_layer``, a nested
model's under its own ``layers/``. Nothing from the file is run; every array is checked
against the model before any is written."""

import os
import re

import numpy as np

from . import registry

#: the first bytes of every HDF5 file
SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: dlfast class name -> Keras's, where they differ
KERAS_CLASS = {"Input": "InputLayer"}


def is_hdf5(path):
    try:
        with open(path, "rb") as f:
            return f.read(8) == SIGNATURE
    except OSError:
        return False


def _h5py(what):
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{what}: Keras weights files (.weights.h5) need h5py: pip install "
                          f"h5py (or the 'keras' extra: pip install \"dlfast[keras]\")") from None
    return h5py


def _snake(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _entries(model, prefix="layers"):
    """[(group path, layer, [(variables path, name attribute, arrays)])] for every layer of
    ``model`` in Keras's layout (nested models flattened into their own ``layers/``)."""
    out, counts = [], {}
    for layer in model.layers:
        base = _snake(KERAS_CLASS.get(type(layer).__name__, type(layer).__name__))
        n = counts.get(base, 0)
        counts[base] = n + 1
        group = f"{prefix}/{base}" + (f"_{n}" if n else "")
        if registry.is_model_class(type(layer)):
            out.append((group, layer, [(f"{group}/vars", layer.name, [])]))
            out += _entries(layer, f"{group}/layers")
        elif hasattr(layer, "forward_layer"):  # Bidirectional
            parts = [(f"{group}/vars", layer.name, [])]
            for side, sub in (("forward_layer", layer.forward_layer),
                              ("backward_layer", layer.backward_layer)):
                parts += _recurrent(f"{group}/{side}", sub)
            out.append((group, layer, parts))
        elif getattr(layer, "keras_cell", None):  # LSTM: its weights are its cell's
            out.append((group, layer, _recurrent(group, layer)))
        else:
            out.append((group, layer, [(f"{group}/vars", layer.name, layer.weights)]))
    return out


def _recurrent(group, layer):
    return [(f"{group}/vars", layer.name, []),
            (f"{group}/cell/vars", layer.keras_cell, layer.weights)]


def save_weights(model, filepath):
    """``model.save_weights("*.weights.h5")``: the file keras_model.load_weights reads."""
    h5py = _h5py("save_weights")
    model._ensure_built()
    model._runner.pull()
    path = os.fspath(filepath)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        f.create_group("layers")
        for _, _, parts in _entries(model):
            for vars_path, name, arrays in parts:
                g = f.require_group(vars_path)
                g.attrs["name"] = name
                for i, a in enumerate(arrays):
                    g.create_dataset(str(i), data=np.asarray(a))
    os.replace(tmp, path)


def load_weights(model, filepath):
    """``model.load_weights("*.weights.h5")`` from a file keras_model.save_weights wrote for
    the same architecture: checks every array, then writes them all."""
    h5py = _h5py("load_weights")
    model._ensure_built()
    path = os.fspath(filepath)
    new = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        for group, layer, parts in _entries(model):
            for vars_path, _, arrays in parts:
                g = f.get(vars_path)
                if arrays and not isinstance(g, h5py.Group):
                    raise ValueError(f"{path}: no group '{vars_path}' for layer '{layer.name}' "
                                     f"({type(layer).__name__}): not a Keras weights file of "
                                     f"this model's architecture")
                saved = sorted((k for k in (g.keys() if g is not None else ())
                                if k.isdigit()), key=int)
                if len(saved) != len(arrays):
                    raise ValueError(f"{path}: '{vars_path}' holds {len(saved)} arrays, layer "
                                     f"'{layer.name}' ({type(layer).__name__}) has "
                                     f"{len(arrays)}")
                for key, w in zip(saved, arrays):
                    d = g[key]
                    if not isinstance(d, h5py.Dataset) or d.shape != w.shape:
                        raise ValueError(f"{path}: '{vars_path}/{key}' has shape "
                                         f"{getattr(d, 'shape', None)}, layer '{layer.name}'s "
                                         f"weight has {w.shape}")
                    value = d[()]
                    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                        raise ValueError(f"{path}: '{vars_path}/{key}' does not hold numbers")
                    new[id(w)] = value
    model.set_weights([new.get(id(w), w) for w in model.weights])
