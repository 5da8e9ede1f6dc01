"""The package's one random generator: initializers, shuffling and dropout draw from it, so
``dlfast.manual_seed(s)`` makes a run repeatable; and ``Replay``, which makes a forward draw
again what an earlier one drew (gradcheck's evaluations, SGD-G2's probe)."""

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed everything random in dlfast (initializers, shuffling, dropout)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def generator():
    return _generator


class Replay:
    """Puts every random generator a forward of ``obj`` (a layer or model) may draw from back
    to the state they had when the Replay was made: dlfast's own (``manual_seed``) and each
    layer's ``rng`` attribute that is a NumPy Generator (a seeded Dropout's). A forward run
    after ``rewind()`` draws the same dropout masks as the first forward run after creation."""

    def __init__(self, obj):
        self.generators = [_generator]
        stack = [obj]
        while stack:
            layer = stack.pop()
            rng = getattr(layer, "rng", None)
            if isinstance(rng, np.random.Generator) and all(rng is not g
                                                            for g in self.generators):
                self.generators.append(rng)
            stack.extend(getattr(layer, "layers", ()))
        self.start = self.snapshot()

    def snapshot(self):
        return [g.bit_generator.state for g in self.generators]

    def restore(self, states):
        for g, s in zip(self.generators, states):
            g.bit_generator.state = s

    def rewind(self):
        self.restore(self.start)
