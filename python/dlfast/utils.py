"""Utilities: ``gradcheck``, a finite-difference check of any layer's or model's backward;
``to_categorical``, class labels to one-hot rows (Keras's)."""

import numpy as np

from . import _random
from .layers.base import Layer, normalize_shape, positive_int

__all__ = ["gradcheck", "GradcheckReport", "to_categorical"]

# Central-difference step and pass/fail tolerance per dtype. float64: the truncation error
# (~eps^2) and the rounding error (~1e-16 * |loss| / eps) both stay near 1e-10 at eps = 1e-6.
# float32 is only a smoke test: rounding dominates, so the step and the tolerance are large.
_DEFAULTS = {np.dtype("float64"): (1e-6, 1e-5), np.dtype("float32"): (1e-3, 5e-2)}

# An entry is compared relative to max(|analytic|, |numeric|), but never to less than this
# fraction of the largest gradient of its array: entries that are (nearly) zero would
# otherwise turn the finite differences' rounding noise into a large "relative" error.
_RELATIVE_FLOOR = 1e-3
# The objective sum(y * R) is computed with a rounding error of some machine epsilons times
# sum|y * R|, more where a layer cancels large intermediates (BatchNormalization's x - mean:
# measured up to 3.6 of them); a central difference divides it by 2*eps. Differences below
# this many such units are noise, not errors (a gradient that is exactly zero, e.g. the bias
# of a layer followed by BatchNormalization, then checks clean). Errors hidden this way are
# below the tolerance on all but near-zero entries.
_NOISE_ULPS = 16


class GradcheckReport:
    """What ``gradcheck`` found.

    ``errors`` maps ``'input'`` and every trainable weight's name (``layer.weight_names``)
    to the worst relative error of ``backward``'s gradient against the finite differences;
    ``passed`` says whether all of them are within ``tolerance``; ``worst`` gives, per
    name, the worst entry's index (a tuple) and its (analytic, numeric) values.
    ``str(report)`` is a small table; ``report.raise_if_failed()`` raises AssertionError
    naming what failed (handy in tests).
    """

    def __init__(self, errors, worst, tolerance, eps, dtype, noise):
        self.noise = noise  # absolute differences below this were not counted as errors
        self.errors = errors
        self.worst = worst
        self.tolerance = tolerance
        self.eps = eps
        self.dtype = dtype

    @property
    def input_error(self):
        """The worst relative error of the input gradient."""
        return self.errors["input"]

    @property
    def weight_errors(self):
        """{weight name: worst relative error} for every trainable weight."""
        return {k: v for k, v in self.errors.items() if k != "input"}

    @property
    def max_error(self):
        """The worst relative error over the input and all weights."""
        return max(self.errors.values())

    @property
    def failed(self):
        """Names whose error exceeds the tolerance (or is not finite)."""
        return [k for k, v in self.errors.items() if not v <= self.tolerance]

    @property
    def passed(self):
        """True when every error is within the tolerance."""
        return not self.failed

    def raise_if_failed(self):
        """AssertionError with the report's table when anything failed."""
        if self.failed:
            raise AssertionError("gradcheck failed:\n" + str(self))

    def __str__(self):
        width = max(len(k) for k in self.errors)
        lines = [f"gradcheck ({self.dtype.name}, eps={self.eps:g}, tolerance="
                 f"{self.tolerance:g}, noise {self.noise:.1e}): "
                 f"{'passed' if self.passed else 'FAILED'}"]
        for name, err in self.errors.items():
            index, analytic, numeric = self.worst[name]
            status = "ok" if err <= self.tolerance else "FAIL"
            lines.append(f"  {name.ljust(width)}  {err:.3e}  {status:4}  worst entry {index}: "
                         f"backward {analytic:.6g}, finite differences {numeric:.6g}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"<GradcheckReport passed={self.passed} max_error={self.max_error:.3e} "
                f"tolerance={self.tolerance:g}>")


def gradcheck(layer_or_model, input_shape, dtype="float64", batch_size=4, training=True,
              eps=None, tolerance=None, seed=0, max_entries=None, regularization=True):
    """Check ``backward`` against central finite differences.

    The scalar objective is ``sum(forward(x, training) * R)`` for a random input ``x`` of
    shape ``(batch_size,) + input_shape`` and a random projection ``R`` of the output (both
    standard normal, drawn from ``seed``), so ``backward(R)`` must return d/dx and add
    d/dw into ``grads``. Works for any layer or model, including a user's own ``Layer``
    subclass. Non-trainable weights (e.g. BatchNormalization's moving statistics) are not
    checked. With ``regularization`` (the default) the objective also holds the weight
    penalties (``regularization_loss()``) and the analytic gradient their gradients
    (``add_regularization_grads()`` after backward), as in a training step.

    - ``dtype``: an unbuilt layer/model is built in this dtype; a built one must already
      have it (finite differences need float64 to mean much).
    - ``training``: the mode of every forward. Randomness is replayed: before each forward
      the state of dlfast's generator (``manual_seed``) and of every layer's own ``rng``
      (a ``numpy.random.Generator``, e.g. a seeded Dropout's) is put back, so a Dropout
      draws the same mask on every evaluation.
    - ``eps``, ``tolerance``: the difference step and the largest accepted error
      (defaults: 1e-6 and 1e-5 for float64; 1e-3 and 5e-2 for float32).
    - ``max_entries``: check at most this many randomly chosen entries of each array
      (None: all of them; a forward pair per entry).

    The relative error of an entry is ``max(|a - n| - noise, 0) / max(|a|, |n|, 1e-3 * m)``
    with ``a`` from backward, ``n`` from finite differences, ``m`` the largest ``|a|`` or
    ``|n|`` of the array and ``noise = 16 * machine_eps * sum|y * R| / (2 * eps)`` the
    finite differences' rounding noise (so that noise on near-zero entries is not mistaken
    for an error); each array reports its worst entry. Weights are restored afterwards (a training forward may update
    state such as moving statistics); ``grads`` are left holding backward's gradients.
    ReLU-like kinks within ``eps`` of an input make finite differences meaningless there:
    pick another ``seed`` if a check fails by a kink.

    Returns a ``GradcheckReport``.
    """
    obj = layer_or_model
    if not isinstance(obj, Layer):
        raise TypeError(f"gradcheck: expected a dlfast layer or model, got {type(obj).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in _DEFAULTS:
        raise TypeError(f"gradcheck: dtype must be float32 or float64, got {dtype}")
    input_shape = normalize_shape(input_shape, "gradcheck: input_shape")
    if None in input_shape:
        raise ValueError(f"gradcheck: input_shape must be fully known, got {input_shape}")
    batch_size = positive_int(batch_size, "gradcheck: batch_size")
    default_eps, default_tol = _DEFAULTS[dtype]
    eps = default_eps if eps is None else float(eps)
    tolerance = default_tol if tolerance is None else float(tolerance)
    if not eps > 0 or not tolerance > 0:
        raise ValueError(f"gradcheck: eps and tolerance must be positive, got eps={eps}, "
                         f"tolerance={tolerance}")
    _use_dtype(obj, dtype)
    obj.build(input_shape)

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(batch_size),) + input_shape).astype(dtype)
    replay = _random.Replay(obj)
    saved = obj.get_weights()
    try:
        obj.zero_grad()
        replay.rewind()
        y = obj.forward(x, training=training)
        projection = rng.standard_normal(y.shape).astype(dtype)
        magnitude = float(np.sum(np.abs(y.astype(np.float64) * projection)))
        dx = obj.backward(projection)
        if regularization:
            magnitude += abs(obj.add_regularization_grads())
        noise = _NOISE_ULPS * np.finfo(dtype).eps * max(magnitude, 1.0) / (2 * eps)
        after_first_forward = replay.snapshot()

        def objective():
            replay.rewind()
            out = obj.forward(x, training=training)
            penalty = obj.regularization_loss() if regularization else 0.0
            return float(np.sum(out.astype(np.float64) * projection)) + penalty

        checked = [("input", x, dx)]
        trainable = _trainable_flags(obj)
        names = _unique(list(obj.weight_names))
        for name, w, g, t in zip(names, obj.weights, obj.grads, trainable):
            if t:
                checked.append((name, w, g.copy()))
        errors, worst = {}, {}
        for name, array, analytic in checked:
            if analytic is None or analytic.shape != array.shape:
                raise ValueError(f"gradcheck: backward's gradient for {name!r} has shape "
                                 f"{None if analytic is None else analytic.shape}, expected "
                                 f"{array.shape}")
            index = _entries(array.size, max_entries, rng)
            numeric = _central_differences(objective, array, index, eps)
            errors[name], worst[name] = _worst_error(analytic.reshape(-1)[index], numeric,
                                                     index, array.shape, noise)
    finally:
        obj.set_weights(saved)
    replay.restore(after_first_forward)
    return GradcheckReport(errors, worst, tolerance, eps, dtype, noise)


def _use_dtype(obj, dtype):
    """Build-time dtype for an unbuilt layer or model (and its unbuilt sublayers); a built
    one must already have it."""
    if obj.built:
        if obj.dtype != dtype:
            raise ValueError(f"gradcheck: {obj.name} is built in {obj.dtype.name}, the check "
                             f"asked for {dtype.name}; create it with dtype='{dtype.name}' or "
                             f"pass it unbuilt")
        return
    obj.dtype = dtype
    if hasattr(obj, "_dtype_given"):  # a model: its layers take its dtype when it builds
        obj._dtype_given = True
    for sub in getattr(obj, "layers", ()):
        if not sub.built:
            _use_dtype(sub, dtype)


def _trainable_flags(obj):
    flags = getattr(obj, "weight_trainable", None)
    if flags is None:
        flags = [True] * len(obj.weights)
    return [bool(f) and obj.trainable for f in flags]


def _unique(names):
    seen = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}#{k}")
    return out


def _entries(size, max_entries, rng):
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, int(max_entries), replace=False))


def _central_differences(f, array, index, eps):
    """(f(p + eps) - f(p - eps)) / 2eps for the chosen flat entries of `array`, changed in
    place and restored."""
    flat = array.reshape(-1)
    if not np.shares_memory(flat, array):
        raise ValueError("gradcheck: weights must be C-contiguous arrays")
    out = np.empty(len(index))
    for k, i in enumerate(index):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[k] = (fp - fm) / (2 * eps)
    return out


def _worst_error(analytic, numeric, index, shape, noise):
    """The worst relative error and (its entry as an index tuple, analytic, numeric)."""
    at = lambda k: tuple(int(i) for i in np.unravel_index(index[k], shape))
    a = analytic.astype(np.float64)
    if a.size == 0:
        return 0.0, (None, float("nan"), float("nan"))
    scale = max(np.max(np.abs(a)), np.max(np.abs(numeric)))
    if not np.isfinite(scale) or not np.all(np.isfinite(a)):
        k = int(np.argmax(~np.isfinite(a) | ~np.isfinite(numeric)))
        return float("inf"), (at(k), float(a[k]), float(numeric[k]))
    excess = np.maximum(np.abs(a - numeric) - noise, 0.0)
    if not excess.any():  # all within the noise (this includes scale == 0)
        k = int(np.argmax(np.abs(a - numeric)))
        return 0.0, (at(k), float(a[k]), float(numeric[k]))
    denom = np.maximum(np.maximum(np.abs(a), np.abs(numeric)), _RELATIVE_FLOOR * scale)
    err = excess / denom
    k = int(np.argmax(err))
    return float(err[k]), (at(k), float(a[k]), float(numeric[k]))


def to_categorical(x, num_classes=None):
    """Keras's to_categorical: integer class labels of any shape -> float32 one-hot arrays with
    the class axis last; a trailing axis of length 1 is dropped first ((n, 1) -> (n, classes)).
    ``num_classes`` defaults to max(x) + 1. Labels must be whole numbers in
    [0, num_classes): anything else raises ValueError (TypeError for non-numbers)."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"to_categorical: x must hold integer class labels, got dtype {a.dtype}")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if np.any(bad):
            raise ValueError(f"to_categorical: class labels must be whole numbers, got "
                             f"{float(a[bad].reshape(-1)[0])!r}")
    labels = a.astype(np.int64)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    labels = labels.reshape(-1)
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical: class labels must be >= 0, got {labels.min()}")
    if num_classes is None:
        if not labels.size:
            raise ValueError("to_categorical: cannot infer num_classes from no labels; pass "
                             "num_classes")
        num_classes = int(labels.max()) + 1
    else:
        try:
            whole = not isinstance(num_classes, (bool, np.bool_)) and \
                int(num_classes) == num_classes and num_classes >= 1
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise ValueError(f"to_categorical: num_classes must be a positive integer, got "
                             f"{num_classes!r}")
        num_classes = int(num_classes)
        if labels.size and labels.max() >= num_classes:
            raise ValueError(f"to_categorical: class label {labels.max()} is out of range for "
                             f"num_classes={num_classes} (labels must be < num_classes)")
    out = np.zeros((labels.size, num_classes), np.float32)
    out[np.arange(labels.size), labels] = 1.0
    return out.reshape(shape + (num_classes,))
