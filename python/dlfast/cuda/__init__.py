"""dlfast on an NVIDIA GPU (optional): device arrays that speak DLPack, the CUDA kernels
(``dlfast.cuda.ops``) and, through ``model.to('cuda')``, training on the device.

The GPU code is its own extension module, ``dlfast._cuda``, built when a CUDA compiler is
found (``DLFAST_CUDA=AUTO|ON|OFF`` at install time). Everything here imports on any machine;
``is_available()`` says whether a GPU can be used and ``reason()`` why not.
"""

import numpy as np

try:
    from .. import _cuda
except ImportError as error:  # built without CUDA
    _cuda = None
    _import_error = str(error)

__all__ = ["is_available", "device_count", "reason", "Array", "empty", "zeros", "from_numpy",
           "from_dlpack", "to_numpy", "synchronize", "set_tf32", "tf32_enabled", "ops"]

_status = None


def _query():
    global _status
    if _status is None:
        if _cuda is None:
            _status = (0, "this build has no CUDA module (installed with DLFAST_CUDA=OFF, or no "
                          "CUDA compiler was found at build time)")
        else:
            count, why = _cuda.status()
            _status = (int(count), why)
    return _status


def is_available():
    """True when the CUDA module is built and a GPU with a working driver is present."""
    return _query()[0] > 0


def device_count():
    """The number of CUDA devices this build can use (0 without the module, driver or GPU)."""
    return _query()[0]


def reason():
    """Why the GPU is unavailable ('' when it is available)."""
    return _query()[1]


def _require(what):
    if not is_available():
        raise RuntimeError(f"dlfast.cuda.{what}: no GPU available: {reason()}")


Array = _cuda.Array if _cuda is not None else None


def empty(shape, dtype="float32"):
    """An uninitialised device array (float32, float64 or int64)."""
    _require("empty")
    return _cuda.empty(shape, np.dtype(dtype).name)


def zeros(shape, dtype="float32"):
    _require("zeros")
    return _cuda.zeros(shape, np.dtype(dtype).name)


def from_numpy(array, dtype=None):
    """A device copy of a host array. float32, float64 and int64 are kept; other numbers are
    cast to ``dtype`` (float32 by default)."""
    _require("from_numpy")
    a = np.asarray(array)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    elif a.dtype not in (np.float32, np.float64, np.int64):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"dlfast.cuda.from_numpy: expected a numeric array, got dtype "
                            f"{a.dtype}")
        a = a.astype(np.float32)
    return _cuda.from_numpy(np.ascontiguousarray(a))


def from_dlpack(obj):
    """A device array sharing the memory of a CUDA array from another library (CuPy,
    PyTorch, ...) through DLPack: no copy. It must be C-contiguous, float32/float64/int64."""
    _require("from_dlpack")
    return _cuda.from_dlpack(obj)


def to_numpy(array):
    """A host copy of a device array (NumPy arrays pass through)."""
    if isinstance(array, np.ndarray):
        return array
    return array.to_numpy()


def synchronize():
    """Wait for all queued GPU work."""
    _require("synchronize")
    _cuda.synchronize()


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
    if _cuda is not None:
        _cuda.set_allow_tf32(_tf32)


def tf32_enabled():
    """Whether TF32 tensor cores are allowed (see :func:`set_tf32`)."""
    return _tf32


_tf32 = False

from . import ops  # noqa: E402
