"""Model files: one safetensors file holding the weights (and the optimizer's state), with the
model's config, its compile settings and a checksum as JSON in the file's metadata.

    model.save("m.dlfast")                       # include_optimizer=True
    model = dlfast.models.load_model("m.dlfast")  # rebuilt, weights set, compiled again
    model.save_weights("w.dlfast"); model.load_weights("w.dlfast")

Loading never runs code from the file: there is no pickle anywhere; a layer is rebuilt from
its class name, looked up among dlfast's layer classes (or the user's ``custom_objects``), and
its JSON config, passed as keyword arguments (``cls.from_config(config)``).

Writes are atomic: the bytes go to a temporary file in the same folder, which is flushed and
fsynced, then renamed over the target (os.replace) and the folder fsynced; a crash or a kill
leaves the old file or the new one, never a mix. Reads check everything first (format,
checksum, config, names and shapes) and change nothing when something is wrong: a missing
file raises OSError (FileNotFoundError), anything else ValueError saying what is wrong and
chained to what the format library raised.

In the file: tensors "weights/<i>" (the model's weights in ``model.weights`` order) and, with
the optimizer, "optimizer/iterations" (and its scalar state) and "optimizer/<i>/<slot>" for the
optimizer's state of weight i (e.g. "optimizer/3/momentum", shaped as weight 3), whatever
buffers the layers pack their weights in; format version 1 kept one flat array per dtype
("optimizer/0/momentum" for all weights), still read. Metadata "format" ("dlfast"),
"format_version", "dlfast_version", "contents" ("model" or
"weights"), JSON entries "weight_names", "model_config", "training_config" (loss, metrics and
optimizer of a compiled model) and "sha256" over all of it."""

import contextlib
import hashlib
import json
import os
import tempfile

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from . import _core, _keras_h5
from ._configs import _compile_from, _training_config, deserialize, serialize  # noqa: F401

FORMAT = "dlfast"
FORMAT_VERSION = 2
_ALIGN = 16  # version 1: each weight 16-element aligned in its dtype's flat array
_JSON_KEYS = ("weight_names", "model_config", "training_config")


# --- saving -------------------------------------------------------------------------------
def save_model(model, filepath, include_optimizer=True):
    """The model's config, weights and compile settings (and, with include_optimizer, the
    optimizer's state and iteration count) in one file, written atomically."""
    model._ensure_built()
    tensors = {f"weights/{i}": w for i, w in enumerate(model.weights)}
    meta = {"contents": "model", "model_config": serialize(model),
            "weight_names": model.weight_names}
    training = _training_config(model)
    if training is not None:
        meta["training_config"] = training
        if include_optimizer:
            tensors.update((f"optimizer/{k}", v)
                           for k, v in _optimizer_state(model).items())
    _write(filepath, tensors, meta)


def save_weights(model, filepath):
    """The model's weights only (in ``model.weights`` order), written atomically; a name
    ending in ``.h5`` (Keras names them ``*.weights.h5``) writes Keras 3's weights file
    instead (dlfast/_keras_h5.py)."""
    if os.fspath(filepath).endswith(".h5"):
        return _keras_h5.save_weights(model, filepath)
    model._ensure_built()
    _write(filepath, {f"weights/{i}": w for i, w in enumerate(model.weights)},
           {"contents": "weights", "weight_names": model.weight_names})


def _write(filepath, tensors, meta):
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "dlfast_version": _core.__version__}
    for key, value in meta.items():
        metadata[key] = json.dumps(value) if key in _JSON_KEYS else value
    tensors = {k: np.asarray(v, order="C") for k, v in tensors.items()}  # keeps 0-d arrays
    metadata["sha256"] = _digest(metadata, tensors)
    _atomic_write(filepath, safetensors.numpy.save(tensors, metadata=metadata))


def _digest(metadata, tensors):
    """sha256 over the metadata (but this digest) and every tensor's name, dtype, shape and
    bytes: safetensors itself checks only the layout, not the contents."""
    h = hashlib.sha256(json.dumps({k: v for k, v in metadata.items() if k != "sha256"},
                                  sort_keys=True).encode())
    for key in sorted(tensors):
        a = tensors[key]
        h.update(f"\0{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _atomic_write(filepath, data):
    """Write `data` to `filepath` so that a crash leaves either the old file or the new one:
    temporary file in the same folder, write, flush, fsync, rename over, fsync the folder."""
    path = os.path.abspath(os.fspath(filepath))
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))  # mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name != "nt":  # Windows cannot open a folder to fsync it
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _new_file_mode(path):
    """The mode the file had, or what open() would give a new one (0666 less the umask)."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# --- optimizer state, per weight ---------------------------------------------------------
def _state_arrays(model):
    """(arrays, where): the arrays the optimizer keeps its state beside (every layer's packed
    buffer, frozen or not, or a trainable weight itself when its layer packs none) and, for
    each weight of ``model.weights``, (array index, element offset) or None."""
    arrays, where, seen = [], [], {}
    for layer in model._leaf_layers():
        packed = getattr(layer, "_packed", None)
        for i, (w, t) in enumerate(zip(layer.weights, layer.weight_trainable)):
            if packed is not None and i in packed[2]:
                key = id(packed[0])
                if key not in seen:
                    seen[key] = len(arrays)
                    arrays.append(packed[0])
                where.append((seen[key], packed[2][i]))
            elif t and packed is None:
                where.append((len(arrays), 0))
                arrays.append(w)
            else:
                where.append(None)
    return arrays, where


def _optimizer_state(model):
    """The optimizer's state as {"iterations", scalars..., "<i>/<slot>": array shaped as
    weight i}."""
    arrays, where = _state_arrays(model)
    state = model.optimizer.get_state(arrays)
    out = {k: v for k, v in state.items() if "/" not in k}
    for i, (w, loc) in enumerate(zip(model.weights, where)):
        if loc is None:
            continue
        k, off = loc
        for key, value in state.items():
            position, _, slot = key.partition("/")
            if slot and int(position) == k:
                out[f"{i}/{slot}"] = value.reshape(-1)[off:off + w.size].reshape(w.shape)
    return out


def _set_optimizer_state(model, state):
    """Put back what _optimizer_state gave (checked entry by entry first)."""
    arrays, where = _state_arrays(model)
    weights = model.weights
    scalars, slots = {}, {}
    for key, value in state.items():
        position, _, slot = key.partition("/")
        if not slot:
            scalars[key] = value
            continue
        if not position.isdigit() or int(position) >= len(weights) or \
                where[int(position)] is None:
            raise ValueError(f"optimizer state entry '{key}': the model has no trainable weight "
                             f"{position}")
        w, value = weights[int(position)], np.asarray(value)
        if value.shape != w.shape:
            raise ValueError(f"optimizer state entry '{key}' has shape {value.shape}, weight "
                             f"{position} has shape {w.shape}")
        k, off = where[int(position)]
        full = slots.setdefault(f"{k}/{slot}", np.zeros(arrays[k].size, arrays[k].dtype))
        full[off:off + w.size] = value.reshape(-1)
    model.optimizer.set_state(arrays, {**scalars, **{
        key: full.reshape(arrays[int(key.partition("/")[0])].shape)
        for key, full in slots.items()}})


def _state_from_version_1(model, state):
    """Version 1's optimizer state (one flat array per dtype: the trainable weights of that
    dtype in order, each 16-element aligned) as per-weight entries."""
    groups = {}
    for i, (w, t) in enumerate(zip(model.weights, model.weight_trainable)):
        if t:
            groups.setdefault(w.dtype, []).append(i)
    weights = model.weights
    out = {k: v for k, v in state.items() if "/" not in k}
    for k, members in enumerate(groups.values()):
        offsets = np.cumsum([0] + [-(-weights[i].size // _ALIGN) * _ALIGN for i in members])
        for key, value in state.items():
            position, _, slot = key.partition("/")
            if not slot or position != str(k):
                continue
            value = np.asarray(value).reshape(-1)
            if value.size != offsets[-1]:
                raise ValueError(f"optimizer state entry '{key}' has {value.size} elements, the "
                                 f"model's trainable weights take {offsets[-1]}")
            for i, off in zip(members, offsets):
                out[f"{i}/{slot}"] = value[off:off + weights[i].size].reshape(weights[i].shape)
    return out


def version_of(meta):
    return int(meta["format_version"])


# --- loading ------------------------------------------------------------------------------
def load_model(filepath, custom_objects=None, compile=True):
    """The model saved by ``model.save(filepath)``: rebuilt from its config, weights set and,
    when it was compiled (and compile is True), compiled again with the saved loss, metrics
    and optimizer, whose state is restored when it was saved. custom_objects: {class name:
    class} for the user's own layers, losses, optimizers (and initializers, by name)."""
    meta, tensors, path = _read(filepath)
    if meta.get("contents") != "model":
        raise ValueError(f"{path} holds only weights (written by save_weights): build the "
                         f"model and call model.load_weights(path)")
    try:
        model = deserialize(meta["model_config"], custom_objects)
        model._ensure_built()
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot rebuild the model from the file's config: {e}") from e
    _set_weights(model, tensors, path)
    training = meta.get("training_config")
    if compile and training is not None:
        try:
            _compile_from(model, training, custom_objects)
            state = {k[len("optimizer/"):]: v for k, v in tensors.items()
                     if k.startswith("optimizer/")}
            if state:
                if version_of(meta) == 1:
                    state = _state_from_version_1(model, state)
                _set_optimizer_state(model, state)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: cannot restore the training configuration: {e}") from e
    return model


def load_weights(model, filepath):
    """Set the model's weights from a file written by save_weights or save (same structure:
    the weights are matched by position, their shapes must agree); checks every array before
    writing any. A Keras 3 weights file (HDF5, e.g. ``*.weights.h5``) is read in Keras's
    layout (dlfast/_keras_h5.py)."""
    if _keras_h5.is_hdf5(filepath):
        return _keras_h5.load_weights(model, filepath)
    _, tensors, path = _read(filepath)
    model._ensure_built()
    _set_weights(model, tensors, path)


def _set_weights(model, tensors, path):
    saved = {k for k in tensors if k.startswith("weights/")}
    want = [f"weights/{i}" for i in range(len(model.weights))]
    if saved != set(want):
        raise ValueError(f"{path} holds {len(saved)} weight arrays, the model has "
                         f"{len(want)} ({', '.join(model.weight_names)}): not this model's file")
    try:
        model.set_weights([tensors[k] for k in want])  # checks every shape before writing
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: the file's weights do not fit the model: {e}") from e


def _read(filepath):
    """(metadata with its JSON entries decoded, {name: array}, path) of a dlfast file."""
    path = os.fspath(filepath)
    with open(path, "rb"):  # a missing or unreadable file: OSError, as it comes
        pass
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, ValueError, TypeError, UnicodeError) as e:
        raise ValueError(f"{path} is not a readable safetensors file (truncated or "
                         f"corrupted?): {e}") from e
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not a dlfast one (its metadata has "
                         f"no format '{FORMAT}')")
    try:
        version = int(metadata["format_version"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: bad or missing format_version in the metadata") from e
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {version}; this dlfast "
                         f"({_core.__version__}) reads up to {FORMAT_VERSION}")
    if metadata.get("sha256") != _digest(metadata, tensors):
        raise ValueError(f"{path} is corrupted: its contents do not match the checksum "
                         f"written with them")
    meta = dict(metadata)
    for key in _JSON_KEYS:
        if key in meta:
            try:
                meta[key] = json.loads(meta[key])
            except (ValueError, RecursionError) as e:  # RecursionError: nested too deep
                raise ValueError(f"{path}: metadata entry '{key}' is not valid JSON: {e}") from e
            _check_depth(meta[key], f"{path}: metadata entry '{key}'")
    return meta, tensors, path


#: How deep a file's JSON may nest. A real config nests a few levels per model inside a model;
#: deeper ones are refused before anything recurses over them (which would raise
#: RecursionError, or crash in a C library, not ValueError).
MAX_JSON_DEPTH = 100


def _check_depth(value, what):
    """ValueError when value (decoded JSON) nests deeper than MAX_JSON_DEPTH; iterative."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels: not a "
                                 f"config dlfast writes")
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
