"""dlfast.interop.load_torch_state_dict (issue 16): PyTorch modules' outputs equal dlfast's
after the import (float32, 1e-5), and bad state dicts raise ValueError/TypeError naming both
sides, changing nothing. Needs PyTorch (CI installs it for this file: .ci/run)."""

import numpy as np
import pytest

import dlfast
from dlfast.interop import load_torch_state_dict
from dlfast.layers import (LSTM, BatchNormalization, Conv2D, Dense, Flatten, Input,
                           MaxPooling2D)

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                            "torch==2.13.0, the CPU build)")
nn = torch.nn


def torch_out(module, x_nhwc=None, x=None):
    module.eval()
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))) \
            if x_nhwc is not None else torch.from_numpy(x)
        return module(t).numpy()


def seeded(module):
    torch.manual_seed(0)
    for p in module.parameters():  # away from PyTorch's init so a mix-up shows
        nn.init.uniform_(p, -0.5, 0.5)
    return module


def test_a_linear_stack(rng):
    net = seeded(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    model = dlfast.Sequential([Input((4,)), Dense(8, activation="relu"), Dense(3)])
    assert load_torch_state_dict(model, net.state_dict()) is model
    x = rng.standard_normal((10, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), torch_out(net, x=x), rtol=1e-5, atol=1e-6)


def test_a_cnn_with_the_dense_after_flatten_permuted(rng):
    net = seeded(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 5)))
    model = dlfast.Sequential([Input((8, 8, 3)), Conv2D(4, 3, padding="same", activation="relu"),
                               MaxPooling2D(2), Conv2D(6, 3, activation="relu"), Flatten(),
                               Dense(5)])
    load_torch_state_dict(model, net.state_dict())
    x = rng.standard_normal((4, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), torch_out(net, x_nhwc=x), rtol=1e-5, atol=1e-5)


def test_the_same_in_a_functional_model(rng):
    net = seeded(nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(27, 2)))
    inp = Input((5, 5, 2))
    out = Dense(2)(Flatten()(Conv2D(3, 3)(inp)))
    model = dlfast.Model(inp, out)
    load_torch_state_dict(model, net.state_dict())
    x = rng.standard_normal((3, 5, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), torch_out(net, x_nhwc=x), rtol=1e-5, atol=1e-5)


class LastStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 7, batch_first=True)
        self.fc = nn.Linear(7, 2)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


def test_an_lstm_with_its_two_biases_summed(rng):
    net = seeded(LastStep())
    model = dlfast.Sequential([Input((6, 5)), LSTM(7), Dense(2)])
    load_torch_state_dict(model, net.state_dict())
    x = rng.standard_normal((3, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), torch_out(net, x=x), rtol=1e-5, atol=1e-5)


def test_batchnorm_running_statistics(rng):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(36, 6),
                        nn.BatchNorm1d(6))
    net.train()
    with torch.no_grad():  # move the running statistics away from (0, 1)
        for _ in range(5):
            net(torch.randn(8, 3, 5, 5) * 2 + 1)
    model = dlfast.Sequential([Input((5, 5, 3)), Conv2D(4, 3),
                               BatchNormalization(epsilon=1e-5, momentum=0.9), Flatten(),
                               Dense(6), BatchNormalization(epsilon=1e-5, momentum=0.9)])
    load_torch_state_dict(model, net.state_dict())
    x = rng.standard_normal((4, 5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), torch_out(net, x_nhwc=x), rtol=1e-4, atol=1e-5)


def test_numpy_arrays_serve_as_well(rng):
    net = seeded(nn.Linear(3, 2))
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    model = dlfast.Sequential([Input((3,)), Dense(2)])
    load_torch_state_dict(model, state)  # a bare module: its parameters have no prefix
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), torch_out(net, x=x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_net,make_layers,message", [
    (lambda: nn.Sequential(nn.Linear(4, 3)), lambda: [Dense(3), Dense(2)],
     r"the state dict has 1 modules with weights \(0\), the model 2 layers with weights"),
    (lambda: nn.Sequential(nn.Linear(4, 3)), lambda: [Dense(5, name="d5")],
     r"PyTorch module '0' gives kernel of shape \(4, 3\) \(after conversion\), dlfast layer "
     r"'d5' has \(4, 5\)"),
    (lambda: nn.Sequential(nn.Linear(4, 3, bias=False)), lambda: [Dense(3, name="d")],
     r"no value for dlfast layer 'd''s bias"),
    (lambda: nn.Sequential(nn.Linear(4, 3)), lambda: [Dense(3, use_bias=False, name="d")],
     r"PyTorch module '0' has a bias, dlfast layer 'd' has use_bias=False"),
    (lambda: nn.Sequential(nn.Conv1d(4, 3, 1)), lambda: [Dense(3, name="d")],
     r"PyTorch module '0' \(parameters \['bias', 'weight'\]\) does not match dlfast layer "
     r"'d' \(Dense, which mirrors nn.Linear\)"),
])
def test_mismatches_name_both_sides_and_change_nothing(make_net, make_layers, message):
    model = dlfast.Sequential([Input((4,))] + make_layers())
    before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        load_torch_state_dict(model, make_net().state_dict())
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_a_two_layer_lstm_is_refused():
    net = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    model = dlfast.Sequential([Input((5, 3)), LSTM(4)])
    with pytest.raises(ValueError, match=r"only one-layer, one-direction nn.LSTM"):
        load_torch_state_dict(model, net.state_dict())


def test_not_a_state_dict():
    model = dlfast.Sequential([Input((3,)), Dense(2)])
    with pytest.raises(TypeError, match=r"expected a state dict .* got list"):
        load_torch_state_dict(model, [1, 2])
    with pytest.raises(TypeError, match=r"entry 'weight' is not numeric"):
        load_torch_state_dict(model, {"weight": "abc"})
