"""The backend interface (dlfast/backend): one module per device with the same entry points,
every layer and model step written once against it (issue 14). The GPU side itself runs on
the NumPy stand-in in test_cuda.py; here: the two sides agree on names and signatures, the
layers reach kernels only through it, and a layer's forward/backward really go through
whatever backend it is given."""

import ast
import inspect
import pathlib
import re

import numpy as np
import pytest

import dlfast
from dlfast.backend import cpu, cuda
from dlfast.layers import (LSTM, Activation, Add, AveragePooling2D, BatchNormalization, Conv2D,
                           Dense, GlobalAveragePooling2D, MaxPooling2D)

PACKAGE = pathlib.Path(dlfast.__file__).parent


def _parameters(f):
    """Parameter names of a Python function, or of a pybind11 one from its docstring."""
    if inspect.isbuiltin(f) or type(f).__name__ == "builtin_function_or_method":
        first = f.__doc__.splitlines()[0]
        inside = first[first.index("(") + 1:first.rindex(") ->")]
        return [p.split(":")[0].strip() for p in re.split(r",\s*(?=\w+:)", inside)]
    params = list(inspect.signature(f).parameters.values())
    return [p.name for p in params if p.kind is not p.KEYWORD_ONLY and p.name != "self"]


KERNELS = [n for n in dir(cuda.Kernels) if not n.startswith("_") and n not in ("get",)]
STEPS = ["begin_step", "inputs", "targets", "loss", "tally", "update", "to_host", "pull", "push"]


def test_the_parameter_reader_reads_both_kinds():
    assert _parameters(cpu.dense_forward) == ["x", "kernel", "bias", "activation"]
    assert _parameters(cpu.add) == ["a", "b", "tag"]


@pytest.mark.parametrize("name", KERNELS)
def test_every_device_kernel_has_the_cpu_ones_name_and_parameters(name):
    assert hasattr(cpu, name), f"dlfast.backend.cuda.Kernels.{name} has no CPU counterpart"
    assert _parameters(getattr(cuda.Kernels, name)) == _parameters(getattr(cpu, name))


@pytest.mark.parametrize("name", STEPS)
def test_every_model_step_has_the_same_parameters_on_both(name):
    want = _parameters(getattr(cpu, name))
    if name == "tally":  # cpu.tally is the class Tally
        want = _parameters(cpu.Tally.__init__)
    assert _parameters(getattr(cuda.Runner, name)) == want
    tally_methods = ("add", "read")
    for m in tally_methods:
        assert _parameters(getattr(cuda._Tally, m)) == _parameters(getattr(cpu.Tally, m))


def _imports(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "layers").glob("*.py")), ids=lambda p: p.name)
def test_layers_reach_kernels_only_through_the_backend(path):
    assert "_core" not in _imports(path), f"{path.name} imports dlfast._core"
    assert "_core." not in path.read_text()


@pytest.mark.parametrize("path", ["models/model.py", "models/sequential.py", "functional.py",
                                  "_fit.py"])
def test_the_models_have_no_device_branches(path):
    text = (PACKAGE / path).read_text()
    assert not re.search(r"\b_cuda\b|DeviceRunner|device_twin", text)
    assert "_core" not in _imports(PACKAGE / path)


class Recording:
    """A backend that forwards to the CPU one and records each entry point called."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        target = getattr(cpu, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            return target(*args, **kwargs)
        return call


@pytest.mark.parametrize("make,shape,expected", [
    (lambda: Dense(3, activation="relu"), (4, 5), {"dense_forward", "dense_backward"}),
    (lambda: Dense(3, activation="leaky_relu"), (4, 2, 5),
     {"dense_forward", "dense_backward", "activation_forward", "activation_backward"}),
    (lambda: Activation("tanh"), (4, 5), {"activation_forward", "activation_backward"}),
    (lambda: Conv2D(2, 3, padding="same"), (2, 5, 5, 3), {"conv2d_forward", "conv2d_backward"}),
    (lambda: MaxPooling2D(2), (2, 4, 4, 3), {"maxpool2d_forward", "maxpool2d_backward"}),
    (lambda: AveragePooling2D(2), (2, 4, 4, 3), {"avgpool2d_forward", "avgpool2d_backward"}),
    (lambda: GlobalAveragePooling2D(), (2, 4, 4, 3), {"avgpool2d_forward",
                                                       "avgpool2d_backward"}),
    (lambda: LSTM(3), (2, 4, 5), {"lstm_forward", "lstm_backward", "last_step"}),
    (lambda: BatchNormalization(), (6, 3), {"batchnorm_forward", "batchnorm_backward"}),
])
def test_a_layer_computes_through_the_backend_it_is_given(make, shape, expected):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    plain, recorded = make(), make()
    plain.build(shape[1:])
    recorded.build(shape[1:])
    recorded.set_weights(plain.get_weights())
    recorded.backend = backend = Recording()
    y = recorded.forward(x, training=True)
    np.testing.assert_array_equal(y, plain.forward(x, training=True))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(recorded.backward(dy), plain.backward(dy))
    for g1, g2 in zip(recorded.grads, plain.grads):
        np.testing.assert_array_equal(g1, g2)
    assert set(backend.calls) == expected


def test_add_and_a_graphs_gradient_sums_go_through_the_backend():
    x = dlfast.layers.Input((4,))
    h = Dense(4, name="h")(x)
    model = dlfast.Model(x, Add(name="add")([x, h]))
    layer = model.layers[-1]
    layer.backend = model.backend = backend = Recording()
    a = np.ones((2, 4), np.float32)
    out = model.forward(a)
    assert backend.calls == ["add"]
    model.backward(np.ones_like(out))
    assert backend.calls == ["add", "add"]  # the skip path's and h's gradients summed
