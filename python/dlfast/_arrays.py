"""Turning user input into the C-contiguous float arrays the kernels take, with errors that
say whose argument was wrong, what was expected and what came."""

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def to_array(x, dtype, label):
    """x as a C-contiguous array. With a dtype, bool/int/float input is cast to it (as Keras
    casts layer inputs); with dtype None it must already be float32 or float64. `label` starts
    the error message, e.g. "matmul: argument 'a'" or "dense: input"."""
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
