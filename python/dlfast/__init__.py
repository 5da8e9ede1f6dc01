"""dlfast: hand-written C++ kernels under a Keras-style API, for fast training of small and
medium networks on the CPU. See README.md; the public surface is __all__ below."""

import os as _os
import warnings as _warnings

from . import _core

__version__ = _core.__version__

from . import callbacks, initializers, layers, losses, metrics, ops, optimizers  # noqa: E402
from . import cuda, interop, regularizers, utils  # noqa: E402
from ._random import manual_seed  # noqa: E402
from .models import Model, Sequential  # noqa: E402
from . import functional  # noqa: E402,F401  (Model(inputs, outputs) returns a Functional)

__all__ = ["__version__", "info", "set_num_threads", "get_num_threads", "manual_seed",
           "Sequential", "Model", "layers", "losses", "metrics", "optimizers", "callbacks", "ops",
           "initializers", "regularizers", "utils", "cuda"]


def set_num_threads(n):
    """Threads the kernels may use (OpenMP); small work stays on one thread regardless."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected an int >= 1, got {n!r}")
    _core.set_num_threads(n)


def get_num_threads():
    """Threads the kernels may use: what ``set_num_threads`` set, else OpenMP's default
    (``OMP_NUM_THREADS`` or the number of cores)."""
    return _core.get_num_threads()


def info():
    """What this build is and which kernels run: version, CPU ISA path in use (and the best the
    CPU supports), threads, CUDA availability, build type and compiler."""
    build = _core.build_info()
    return {
        "version": __version__,
        "cpu_isa": _core.cpu_capability(),
        "cpu_isa_supported": build["cpu_capability_supported"],
        "num_threads": _core.get_num_threads(),
        "cuda_available": cuda.is_available(),
        "cuda_devices": cuda.device_count(),
        "cuda_reason": cuda.reason(),
        "build_type": build["build_type"],
        "compiler": build["compiler"],
    }


def _check_capability_request():
    asked = _os.environ.get("DLFAST_CPU_CAPABILITY")
    if asked and asked != _core.cpu_capability():
        _warnings.warn(
            f"DLFAST_CPU_CAPABILITY={asked!r} ignored: expected one of generic, avx2, avx512 "
            f"that this CPU supports (best: {_core.build_info()['cpu_capability_supported']}); "
            f"using {_core.cpu_capability()}", RuntimeWarning, stacklevel=2)


_check_capability_request()
