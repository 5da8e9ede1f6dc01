"""dlfast.utils.gradcheck: it passes on layers whose backward is right (library layers, models,
users' own Layer subclasses), FAILS on a user layer with a deliberately wrong backward (and
names what is wrong), measures the error as its formula says, replays randomness, and refuses
bad arguments clearly."""

import numpy as np
import pytest

import dlfast
from dlfast import _random, layers
from dlfast.layers import Layer
from dlfast.utils import gradcheck


class Scale(Layer):
    """A user's layer: y = tanh(x) * w (w per feature), written without dlfast kernels.
    ``dx_factor`` / ``dw_factor`` spoil the backward on purpose when != 1."""

    def __init__(self, dx_factor=1.0, dw_factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.dx_factor, self.dw_factor = dx_factor, dw_factor

    def build_weights(self, input_shape):
        self.add_weight("w", (input_shape[-1],), lambda s, d: np.linspace(0.5, 1.5, s[0], dtype=d))

    def call_forward(self, x, training):
        self._x = x
        return np.tanh(x) * self.weights[0]

    def call_backward(self, dy, need_dx=True, accumulate=True):
        t = np.tanh(self._x)
        dw = (dy * t).reshape(-1, t.shape[-1]).sum(axis=0) * self.dw_factor
        if accumulate:
            self.grads[0] += dw
        else:
            self.grads[0][...] = dw
        return dy * (1 - t * t) * self.weights[0] * self.dx_factor


class Noise(Layer):
    """A user's random layer: y = x * m with m ~ U(0.5, 1.5) drawn from dlfast's generator on
    every training forward (or from its own ``rng`` when seeded); backward reuses m."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rng = None if seed is None else np.random.default_rng(seed)

    def call_forward(self, x, training):
        gen = self.rng if self.rng is not None else _random.generator()
        self._m = gen.uniform(0.5, 1.5, x.shape) if training else np.ones(x.shape)
        return x * self._m

    def call_backward(self, dy, need_dx=True, accumulate=True):
        return dy * self._m


def test_passes_on_a_right_user_layer():
    report = gradcheck(Scale(), (3, 5))
    assert report.passed, str(report)
    assert set(report.errors) == {"input", "w"}
    assert report.max_error < 1e-7
    report.raise_if_failed()  # does not raise


@pytest.mark.parametrize("spoil, bad", [({"dx_factor": 1.01}, "input"),
                                        ({"dw_factor": 0.5}, "w")])
def test_fails_on_a_wrong_backward_and_names_it(spoil, bad):
    report = gradcheck(Scale(**spoil), (4,))
    assert not report.passed
    assert report.failed == [bad]
    # the worst relative error of a gradient scaled by f is |f - 1| / max(f, 1)
    f = next(iter(spoil.values()))
    assert report.errors[bad] == pytest.approx(abs(f - 1) / max(f, 1), rel=1e-4)
    good = "w" if bad == "input" else "input"
    assert report.errors[good] < 1e-7
    with pytest.raises(AssertionError, match=bad):
        report.raise_if_failed()
    assert "FAIL" in str(report)


def test_a_tiny_error_fails_a_tight_tolerance_only():
    report = gradcheck(Scale(dx_factor=1 + 1e-4), (4,))
    assert report.errors["input"] == pytest.approx(1e-4, rel=1e-3)
    assert not report.passed  # default float64 tolerance 1e-5
    assert gradcheck(Scale(dx_factor=1 + 1e-4), (4,), tolerance=1e-3).passed


def test_unbuilt_layer_is_built_in_float64_and_weights_are_restored():
    layer = layers.Dense(3, activation="tanh")
    report = gradcheck(layer, (5,))
    assert layer.dtype == np.float64 and layer.weights[0].dtype == np.float64
    assert report.passed, str(report)
    assert set(report.errors) == {"input", "kernel", "bias"}
    before = layer.get_weights()
    gradcheck(layer, (5,))
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_with_a_user_layer():
    model = dlfast.Sequential([layers.Dense(4, activation="sigmoid"), Scale(),
                               layers.Dense(2)])
    report = gradcheck(model, (3,), batch_size=5)
    assert report.passed, str(report)
    assert list(report.errors) == ["input", *model.weight_names]
    bad = dlfast.Sequential([layers.Dense(4, activation="sigmoid"), Scale(dw_factor=2.0),
                             layers.Dense(2)])
    failed = gradcheck(bad, (3,)).failed
    assert failed == [bad.weight_names[2]]  # only the spoiled layer's weight


def test_built_float32_layer_is_refused():
    layer = layers.Dense(2)
    layer.build((3,))
    with pytest.raises(ValueError, match="float32.*float64"):
        gradcheck(layer, (3,))
    # but it can be smoke-checked in float32, with float32's looser defaults
    assert gradcheck(layer, (3,), dtype="float32").passed


def test_randomness_is_replayed_for_every_evaluation():
    dlfast.manual_seed(3)
    assert gradcheck(Noise(), (6,)).passed
    assert gradcheck(Noise(seed=5), (6,)).passed  # a layer's own generator too
    # the generator advanced exactly as one forward would have
    dlfast.manual_seed(3)
    gradcheck(Noise(), (6,))
    after = _random.generator().uniform()
    dlfast.manual_seed(3)  # (gradcheck's own x and R come from its seed, not dlfast's)
    layer = Noise(dtype="float64")
    layer.forward(np.zeros((4, 6)), training=True)
    assert _random.generator().uniform() == after


def test_without_replay_the_same_check_would_fail():
    """The replay is what makes a random layer checkable: a layer whose generator is hidden
    from gradcheck draws a new mask per evaluation and fails."""

    class HiddenNoise(Noise):
        def __init__(self):
            super().__init__()
            self._hidden = np.random.default_rng(1)

        def call_forward(self, x, training):
            self._m = self._hidden.uniform(0.5, 1.5, x.shape)
            return x * self._m

    assert not gradcheck(HiddenNoise(), (6,)).passed


def test_max_entries_samples_each_array():
    class Counting(Scale):
        forwards = 0

        def call_forward(self, x, training):
            Counting.forwards += 1
            return super().call_forward(x, training)

    report = gradcheck(Counting(), (3,), batch_size=4, max_entries=5)
    assert report.passed
    # one forward for backward, then a pair per checked entry: 5 of x's 12, all 3 of w's
    assert Counting.forwards == 1 + 2 * (5 + 3)
    assert len(report.worst["input"][0]) == 2


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"input_shape": (None, 3)}, ValueError, "fully known"),
    ({"input_shape": (0,)}, ValueError, "positive"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"dtype": "int32"}, TypeError, "float32 or float64"),
    ({"eps": -1.0}, ValueError, "eps"),
])
def test_bad_arguments(kwargs, exc, match):
    args = {"input_shape": (3,), **kwargs}
    with pytest.raises(exc, match=match):
        gradcheck(layers.Dense(2), **args)


def test_not_a_layer():
    with pytest.raises(TypeError, match="dlfast layer"):
        gradcheck(lambda x: x, (3,))


def test_exactly_zero_gradients_pass_and_small_real_errors_still_fail():
    """A bias followed by BatchNormalization has a gradient of exactly zero: finite
    differences give rounding noise there, which must not read as an error; a 0.1% error
    in a backward upstream of the same layers must."""
    dlfast.manual_seed(0)
    good = dlfast.Sequential([layers.Dense(4), layers.BatchNormalization(), Scale()])
    report = gradcheck(good, (3,), batch_size=5)
    assert report.passed, str(report)
    assert report.errors[good.weight_names[1]] == 0.0  # the dense bias
    bad = dlfast.Sequential([layers.Dense(4), layers.BatchNormalization(),
                             Scale(dx_factor=1.001)])
    report = gradcheck(bad, (3,), batch_size=5)
    assert "input" in report.failed and bad.weight_names[0] in report.failed
    assert report.errors["input"] == pytest.approx(1e-3, rel=0.05)
