"""The package's one random generator: initializers, shuffling (and later dropout) draw from it,
so ``dlfast.manual_seed(s)`` makes a run repeatable."""

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed everything random in dlfast (initializers, shuffling)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def generator():
    return _generator
