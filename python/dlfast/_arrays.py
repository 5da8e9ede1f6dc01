"""Turning user input into the C-contiguous float arrays the kernels take, with errors that
say whose argument was wrong, what was expected and what came."""

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_DLPACK_CPU = 1  # DLDeviceType kDLCPU


def from_dlpack(x, label):
    """A CPU object with ``__dlpack__`` (a PyTorch tensor, a JAX array) as a NumPy array that
    shares its memory (no copy); ``x`` itself when it has no ``__dlpack__`` or is a NumPy
    array. TypeError for an object on another device, or one that will not export."""
    if isinstance(x, np.ndarray) or not hasattr(x, "__dlpack__"):
        return x
    device = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else _DLPACK_CPU
    if device != _DLPACK_CPU:
        raise TypeError(f"{label} is a {type(x).__name__} on a device other than the CPU "
                        f"(DLPack device type {device}); copy it to the CPU first "
                        f"(PyTorch: .cpu()), or use dlfast.cuda for GPU arrays")
    try:
        return np.from_dlpack(x)
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        hint = " (PyTorch: call .detach() first)" if "grad" in str(e) else ""
        raise TypeError(f"{label}: a {type(x).__name__} that does not export through DLPack: "
                        f"{e}{hint}") from None


def to_array(x, dtype, label):
    """x as a C-contiguous array. With a dtype, bool/int/float input is cast to it (as Keras
    casts layer inputs); with dtype None it must already be float32 or float64. `label` starts
    the error message, e.g. "matmul: argument 'a'" or "dense: input"."""
    x = from_dlpack(x, label)
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{label} must be array-like numbers, got {type(x).__name__} "
                            f"({e})") from None
    if dtype is None:
        if x.dtype not in FLOATS:
            raise TypeError(f"{label} must be a float32 or float64 array, got dtype {x.dtype}")
    elif x.dtype != dtype:
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{label} must hold numbers (bool, int or float), got an array of "
                            f"dtype {x.dtype}")
        x = x.astype(dtype)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)
