"""dlfast on an NVIDIA GPU (optional): device arrays that speak DLPack, the CUDA kernels
(``dlfast.cuda.ops``) and, through ``model.to('cuda')``, training on the device.

The GPU code is its own extension module, ``dlfast._cuda``, built when a CUDA compiler is
found (``DLFAST_CUDA=AUTO|ON|OFF`` at install time). Everything here imports on any machine;
``is_available()`` says whether a GPU can be used and ``reason()`` why not.
"""

import numpy as np

from . import _device
from ._device import ext as _cuda  # the extension at import (tests read it; calls use _device)

__all__ = ["is_available", "device_count", "reason", "Array", "empty", "zeros", "from_numpy",
           "from_dlpack", "to_numpy", "synchronize", "set_tf32", "tf32_enabled", "ops"]


def is_available():
    """True when the CUDA module is built and a GPU with a working driver is present."""
    return _device.query()[0] > 0


def device_count():
    """The number of CUDA devices this build can use (0 without the module, driver or GPU)."""
    return _device.query()[0]


def reason():
    """Why the GPU is unavailable ('' when it is available)."""
    return _device.query()[1]


Array = _cuda.Array if _cuda is not None else None


def empty(shape, dtype="float32"):
    """An uninitialised device array (float32, float64 or int64)."""
    return _device.require("empty").empty(shape, np.dtype(dtype).name)


def zeros(shape, dtype="float32"):
    """A device array of zeros (float32, float64 or int64)."""
    return _device.require("zeros").zeros(shape, np.dtype(dtype).name)


def from_numpy(array, dtype=None):
    """A device copy of a host array. float32, float64 and int64 are kept; other numbers are
    cast to ``dtype`` (float32 by default)."""
    a = np.asarray(array)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    elif a.dtype not in (np.float32, np.float64, np.int64):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"dlfast.cuda.from_numpy: expected a numeric array, got dtype "
                            f"{a.dtype}")
        a = a.astype(np.float32)
    return _device.require("from_numpy").from_numpy(np.ascontiguousarray(a))


def from_dlpack(obj):
    """A device array sharing the memory of a CUDA array from another library (CuPy,
    PyTorch, ...) through DLPack: no copy. It must be C-contiguous, float32/float64/int64."""
    return _device.require("from_dlpack").from_dlpack(obj)


def to_numpy(array):
    """A host copy of a device array (NumPy arrays pass through)."""
    if isinstance(array, np.ndarray):
        return array
    return array.to_numpy()


def synchronize():
    """Wait for all queued GPU work."""
    _device.require("synchronize").synchronize()


def set_tf32(enabled):
    """Allow (True) or forbid (False, the default) TF32 tensor cores in every matrix product
    on the GPU: dense layers, convolutions, LSTMs, ``ops.gemm``. Inputs are then rounded to
    a 10-bit mantissa (about 3 decimal digits; sums stay float32), several times faster on
    GPUs of compute capability 8.0 and newer; on older GPUs products stay float32. Like
    ``torch.backends.cuda.matmul.allow_tf32``, off by default because it changes results.
    Needs no GPU (a build without the CUDA module keeps the setting and ignores it)."""
    global _tf32
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"dlfast.cuda.set_tf32: expected True or False, got "
                        f"{type(enabled).__name__} {enabled!r}")
    _tf32 = bool(enabled)
    if _device.ext is not None:
        _device.ext.set_allow_tf32(_tf32)


def tf32_enabled():
    """Whether TF32 tensor cores are allowed (see ``set_tf32``)."""
    return _tf32


_tf32 = False

from . import ops  # noqa: E402
