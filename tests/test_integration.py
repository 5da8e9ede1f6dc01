"""Where the training toolbox's parts meet: SGD-G2's probe with Dropout (same masks) and
BatchNormalization (moving statistics moved once per step), checked against float64 NumPy
written here."""

import numpy as np
import pytest

import dlfast
from dlfast import layers, optimizers
import reference as ref


class RecordingSGDG2(optimizers.SGDG2):
    """SGDG2 that keeps copies of the model's per-layer gradients as apply() receives them
    (g, at theta) and as the model's closure leaves them (g~, at the probe point)."""

    def apply(self, grads, weights, closure=None):
        self.step_grads = [g.copy() for g in self.model.grads]

        def probe():
            loss = closure()
            self.probe_grads = [g.copy() for g in self.model.grads]
            return loss

        return super().apply(grads, weights, closure=probe)


def twins(make, rng):
    """Two models from make() with the same weights (and the first one's weights)."""
    a, b = make(), make()
    for name, w in zip(a.weight_names, a.weights):
        w[...] = rng.uniform(0.5, 1.5, w.shape) if name.endswith("variance") else \
            rng.uniform(-0.8, 0.8, w.shape)
    b.set_weights(a.get_weights())
    return a, b, a.get_weights()


# --- SGD-G2's probe: same dropout masks, moving statistics moved once ------------------------

def dropout_mlp(seed):
    """x -> Dense(5, tanh) -> Dropout(0.5) -> Dense(2): mse on its output."""
    return dlfast.Sequential([layers.Input((4,)), layers.Dense(5, activation="tanh"),
                              layers.Dropout(0.5, seed=seed), layers.Dense(2)],
                             dtype="float64")


def mlp_grads(x, y, W1, b1, W2, b2, mask):
    """Gradients of mean((dropout(tanh(x W1 + b1)) W2 + b2 - y)^2) for a fixed mask."""
    a = np.tanh(x @ W1 + b1)
    d = a * mask
    out = d @ W2 + b2
    dout = 2.0 * (out - y) / out.size
    dz = (dout @ W2.T) * mask * (1.0 - a ** 2)
    return [x.T @ dz, dz.sum(0), d.T @ dout, dout.sum(0)]


@pytest.mark.parametrize("seed", [None, 7], ids=["dlfast-generator", "layer-seed"])
def test_sgdg2_probe_reuses_the_steps_dropout_mask(seed, rng):
    """The probe gradient is the gradient at theta - h g of the SAME objective (the step's
    mask): both gradients and the new step against NumPy with that mask; the mask is the
    one a plain SGD step draws, and the generators end where an SGD step leaves them."""
    g2_model, sgd_model, (W1, b1, W2, b2) = twins(lambda: dropout_mlp(seed), rng)
    h, beta = 0.3, 0.9
    opt = RecordingSGDG2(learning_rate=h, beta=beta)
    opt.model = g2_model
    g2_model.compile(optimizer=opt, loss="mse")
    sgd_model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))

    dlfast.manual_seed(11)
    sgd_model.train_on_batch(x, y)
    sgd_mask = sgd_model.layers[1]._mask.copy()
    after_sgd = dlfast._random.generator().random(3)
    dlfast.manual_seed(11)
    g2_model.train_on_batch(x, y)
    after_g2 = dlfast._random.generator().random(3)
    mask = g2_model.layers[1]._mask  # the last forward's: the probe's

    np.testing.assert_array_equal(mask, sgd_mask)
    assert 0 < np.count_nonzero(mask) < mask.size  # some units were dropped
    np.testing.assert_array_equal(after_g2, after_sgd)
    if seed is not None:  # the layer's own generator is also where an SGD step leaves it
        np.testing.assert_array_equal(g2_model.layers[1].rng.random(3),
                                      sgd_model.layers[1].rng.random(3))
    g = mlp_grads(x, y, W1, b1, W2, b2, mask)
    g_flat = np.concatenate([a.ravel() for a in g])
    probe_at = [w - h * gw for w, gw in zip((W1, b1, W2, b2), g)]
    g_probe = mlp_grads(x, y, *probe_at, mask)
    for got, want, what in zip(opt.step_grads + opt.probe_grads, g + g_probe,
                               ["g/W1", "g/b1", "g/W2", "g/b2", "probe/W1", "probe/b1",
                                "probe/W2", "probe/b2"]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13, err_msg=what)
    h_new = ref.sgdg2_next_step(h, g_flat, np.concatenate([a.ravel() for a in g_probe]), beta)
    assert opt.step_size == pytest.approx(h_new, rel=1e-10)
    for got, w, gw in zip(g2_model.get_weights(), (W1, b1, W2, b2), g):
        np.testing.assert_allclose(got, w - h_new * gw, rtol=1e-10, atol=1e-13)


def bn_mlp():
    """x -> Dense(3) -> BatchNormalization(momentum=0.9) -> tanh -> Dense(2)."""
    return dlfast.Sequential([layers.Input((4,)), layers.Dense(3),
                              layers.BatchNormalization(momentum=0.9),
                              layers.Activation("tanh"), layers.Dense(2)], dtype="float64")


def test_sgdg2_step_moves_the_moving_statistics_once(rng):
    g2_model, sgd_model, weights = twins(bn_mlp, rng)
    W1, b1 = weights[:2]
    mm0, mv0 = weights[4], weights[5]  # moving_mean, moving_variance (randomized above)
    g2_model.compile(optimizer=optimizers.SGDG2(learning_rate=0.5), loss="mse")
    sgd_model.compile(optimizer=optimizers.SGD(0.5), loss="mse")
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    g2_model.train_on_batch(x, y)
    sgd_model.train_on_batch(x, y)
    # Keras's moving averages of the batch statistics of Dense's output at the step's theta
    z = x @ W1 + b1
    want_mean = 0.9 * mm0 + 0.1 * z.mean(0)
    want_var = 0.9 * mv0 + 0.1 * z.var(0)
    for model in (g2_model, sgd_model):
        bn = model.layers[1]
        np.testing.assert_allclose(bn.weights[2], want_mean, rtol=1e-12, err_msg=model.name)
        np.testing.assert_allclose(bn.weights[3], want_var, rtol=1e-12, err_msg=model.name)
    # and the weights did take an SGD-G2 step (the probe ran, the step moved)
    assert not np.allclose(g2_model.get_weights()[0], W1)


def test_sgdg2_probe_that_fails_leaves_the_state_as_the_step_left_it(rng):
    """A closure that raises inside the probe: the weights go back to theta (SGDG2), the
    moving statistics stay as the step's forward left them and the error comes through."""
    model = bn_mlp()
    model.compile(optimizer=optimizers.SGDG2(learning_rate=0.5), loss="mse")
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    theta = model.get_weights()
    bn = model.layers[1]
    calls = []
    original = bn.call_forward

    def second_forward_fails(x, training):
        calls.append(training)
        if len(calls) == 2:  # the probe's forward: after the moving statistics moved
            original(x, training)
            raise RuntimeError("probe failed")
        return original(x, training)

    bn.call_forward = second_forward_fails
    with pytest.raises(RuntimeError, match="probe failed"):
        model.train_on_batch(x, y)
    z = x @ theta[0] + theta[1]
    got = model.get_weights()
    np.testing.assert_allclose(got[4], 0.9 * theta[4] + 0.1 * z.mean(0), rtol=1e-12)
    np.testing.assert_allclose(got[5], 0.9 * theta[5] + 0.1 * z.var(0), rtol=1e-12)
    for i in (0, 1, 2, 3, 6, 7):  # trainable weights: back at theta
        np.testing.assert_allclose(got[i], theta[i], rtol=1e-14, atol=1e-15)
