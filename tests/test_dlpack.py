"""DLPack on the CPU (issue 16): CPU objects with __dlpack__ are taken wherever arrays are,
without a copy when they are contiguous float32/float64, and dlfast.ops results go back to
PyTorch with torch.from_dlpack without one. The objects here are PyTorch tensors (skipped
without PyTorch: CI installs it for this file) and a minimal DLPack producer of our own."""

import numpy as np
import pytest

import dlfast
from dlfast import _arrays, ops
from dlfast.layers import Dense, Input


class Producer:
    """Anything with __dlpack__ / __dlpack_device__: here, a NumPy array behind them."""

    def __init__(self, a, device=(1, 0)):
        self.a, self.device = a, device

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.device


def test_a_dlpack_producer_is_read_without_a_copy(rng):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    got = _arrays.to_array(Producer(a), None, "x")
    assert got.dtype == np.float32 and np.shares_memory(got, a)
    y = ops.dense_forward(Producer(a), Producer(np.eye(3, dtype=np.float32)), None, "relu")
    np.testing.assert_array_equal(y, np.maximum(a, 0))


def test_a_producer_on_another_device_is_refused():
    with pytest.raises(TypeError, match=r"dense_forward: argument 'x' is a Producer on a device "
                                        r"other than the CPU \(DLPack device type 2\)"):
        ops.dense_forward(Producer(np.ones((2, 2), np.float32), (2, 0)),
                          np.ones((2, 2), np.float32))


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                               "torch==2.13.0, the CPU build)")


def test_torch_tensors_in_ops_and_back_without_copies(torch, rng):
    x = torch.from_numpy(rng.standard_normal((5, 4)).astype(np.float32))
    w = torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32))
    assert np.shares_memory(_arrays.to_array(x, None, "x"), x.numpy())
    y = ops.dense_forward(x, w, None, "linear")
    np.testing.assert_allclose(y, x.numpy() @ w.numpy(), rtol=1e-6, atol=1e-6)
    back = torch.from_dlpack(y)
    assert back.data_ptr() == y.ctypes.data  # the result's memory, not a copy
    float64 = torch.from_numpy(rng.standard_normal((2, 2)))
    assert np.shares_memory(_arrays.to_array(float64, None, "x"), float64.numpy())


def test_fit_predict_evaluate_and_layers_take_tensors(torch, rng):
    dlfast.manual_seed(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64)
    model = dlfast.Sequential([Input((4,)), Dense(8, activation="relu"),
                               Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    twin = dlfast.Sequential([Input((4,)), Dense(8, activation="relu"),
                              Dense(2, activation="softmax")])
    twin.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    twin.set_weights(model.get_weights())
    tx, ty = torch.from_numpy(x), torch.from_numpy(labels)
    h1 = model.fit(tx, ty, epochs=2, batch_size=8, shuffle=False, verbose=0)
    h2 = twin.fit(x, labels, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert h1.history == h2.history
    np.testing.assert_array_equal(model.predict(tx), twin.predict(x))
    assert model.evaluate(tx, ty) == twin.evaluate(x, labels)
    layer = model.layers[0]
    out = layer.forward(tx)
    np.testing.assert_array_equal(out, layer.forward(x))
    dx = layer.backward(torch.from_numpy(np.ones_like(out)))
    assert dx.shape == x.shape


def test_a_tensor_that_requires_grad_is_refused_with_the_fix(torch):
    t = torch.ones((2, 3), requires_grad=True)
    with pytest.raises(TypeError, match=r"does not export through DLPack.*\.detach\(\)"):
        ops.relu_forward(t)
