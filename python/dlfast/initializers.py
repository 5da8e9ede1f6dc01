"""Weight initializers with Keras's names and formulas (fan_in/fan_out as Keras computes them:
for a kernel of shape (..., in, out), the leading axes are the receptive field)."""

import numpy as np

from . import _random


def _fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, dtype):
    """Uniform on [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)) (Keras's default kernel initializer)."""
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / max(1.0, fan_in + fan_out))
    return _random.generator().uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(shape, dtype):
    """Truncated normal (redrawn beyond 2 standard deviations), stddev sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / max(1.0, fan_in + fan_out)), dtype)


def he_uniform(shape, dtype):
    """Uniform on [-limit, limit], limit = sqrt(6 / fan_in)."""
    fan_in, _ = _fans(shape)
    limit = np.sqrt(6.0 / max(1.0, fan_in))
    return _random.generator().uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, dtype):
    """Truncated normal (redrawn beyond 2 standard deviations), stddev sqrt(2 / fan_in)."""
    fan_in, _ = _fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / max(1.0, fan_in)), dtype)


def random_normal(shape, dtype, stddev=0.05):
    """Normal with mean 0 and standard deviation ``stddev`` (Keras's RandomNormal default 0.05)."""
    return (_random.generator().standard_normal(shape) * stddev).astype(dtype)


def random_uniform(shape, dtype, limit=0.05):
    """Uniform on [-limit, limit] (Keras's RandomUniform default 0.05)."""
    return _random.generator().uniform(-limit, limit, size=shape).astype(dtype)


def zeros(shape, dtype):
    """All zeros (the default bias initializer)."""
    return np.zeros(shape, dtype)


def ones(shape, dtype):
    """All ones (BatchNormalization's gamma and moving variance)."""
    return np.ones(shape, dtype)


def orthogonal(shape, dtype, gain=1.0):
    """Keras's orthogonal: the (prod(shape[:-1]), shape[-1]) matrix has orthonormal rows or
    columns (whichever are fewer), from the QR factors of a normal draw, signs fixed by R."""
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    cols = shape[-1]
    a = _random.generator().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)


def _truncated_normal(shape, stddev, dtype):
    # Keras's truncated normal: draws beyond two standard deviations are redrawn; the scale
    # 0.8796... makes the truncated distribution's standard deviation equal `stddev`.
    g = _random.generator()
    out = g.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = g.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return (out * (stddev / 0.87962566103423978)).astype(dtype)


_BY_NAME = {f.__name__: f for f in (glorot_uniform, glorot_normal, he_uniform, he_normal,
                                    random_normal, random_uniform, zeros, ones,
                                    orthogonal)}


def serialize(initializer):
    """The name that ``get`` turns back into ``initializer``: a built-in's name, else the
    callable's ``__name__`` (a saved model then needs it in load_model's custom_objects)."""
    return getattr(initializer, "__name__", type(initializer).__name__)


def get(spec):
    """An initializer from a name or a callable ``f(shape, dtype) -> ndarray``."""
    if callable(spec):
        return spec
    try:
        return _BY_NAME[spec]
    except (KeyError, TypeError):
        raise ValueError(f"unknown initializer {spec!r}; expected a callable or one of "
                         f"{sorted(_BY_NAME)}") from None
