"""Sequential: summary and count_params of the course's iris network, train_on_batch as one
hand-computed SGD step (softmax + cross-entropy fused, so the loss is the from-logits value),
float64 models, fit history / evaluate / predict."""

import numpy as np
import pytest

import dlfast
from dlfast import layers
import reference as ref


def iris_net(**kw):
    return dlfast.Sequential([layers.Input((4,)), layers.Dense(32, activation="relu"),
                              layers.Dense(16, activation="relu"),
                              layers.Dense(3, activation="softmax")], **kw)


def test_iris_network_summary_and_count_params():
    model = iris_net()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 739" in text
    for shape in ("(None, 32)", "(None, 16)", "(None, 3)"):
        assert shape in text
    # each layer's row carries its own parameter count: 4*32+32, 32*16+16, 16*3+3
    rows = [l for l in lines if "(Dense)" in l]
    assert len(rows) == 3
    for row, shape, n in zip(rows, ("(None, 32)", "(None, 16)", "(None, 3)"), (160, 528, 51)):
        assert shape in row and row.rstrip().endswith(str(n))
    assert model.count_params() == 739
    assert "Trainable params: 739" in text


def test_model_compute_output_shape_and_weights():
    model = iris_net()
    assert model.compute_output_shape((4,)) == (3,)
    model.build()
    assert [w.shape for w in model.weights] == [(4, 32), (32,), (32, 16), (16,), (16, 3), (3,)]
    assert [w.shape for w in model.get_weights()] == [w.shape for w in model.weights]
    assert all(np.all(g == 0) for g in model.grads)


def test_model_set_weights_round_trip(rng):
    model = iris_net()
    model.build()
    new = [rng.standard_normal(w.shape) for w in model.weights]
    model.set_weights(new)
    for w, n in zip(model.get_weights(), new):
        np.testing.assert_allclose(w, n.astype(np.float32))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    h = np.maximum(x @ new[0] + new[1], 0)
    h = np.maximum(h @ new[2] + new[3], 0)
    want = ref.act_forward(h @ new[4] + new[5], "softmax")
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-5)


def _two_layer(dtype, out_act, lr, momentum=0.0):
    model = dlfast.Sequential([layers.Input((4,), dtype=dtype),
                               layers.Dense(5, activation="relu"),
                               layers.Dense(3, activation=out_act)])
    model.build()
    return model


def _manual_grads(x, W1, b1, W2, b2, dz_fn):
    """Backprop by hand through relu(x W1 + b1) W2 + b2 -> z; dz_fn(z) gives (loss, dL/dz)."""
    a1 = x @ W1 + b1
    h = np.maximum(a1, 0)
    z = h @ W2 + b2
    loss, dz = dz_fn(z)
    dW2, db2 = h.T @ dz, dz.sum(0)
    dh = dz @ W2.T * (a1 > 0)
    return loss, [x.T @ dh, dh.sum(0), dW2, db2]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy",
                                  "mse", "binary_crossentropy"])
def test_train_on_batch_is_one_sgd_step(dtype, loss, rng):
    out_act = {"mse": "linear", "binary_crossentropy": "sigmoid"}.get(loss, "softmax")
    model = _two_layer(dtype, out_act, 0.1)
    lr = 0.1
    model.compile(optimizer=dlfast.optimizers.SGD(learning_rate=lr), loss=loss)
    W = [w.astype(np.float64) + 0.0 for w in model.get_weights()]
    W[1][...] = rng.uniform(-0.1, 0.1, 5)  # non-zero biases, so their gradients matter
    W[3][...] = rng.uniform(-0.1, 0.1, 3)
    model.set_weights(W)
    W = [w.astype(np.float64) for w in model.get_weights()]
    x = rng.standard_normal((8, 4))
    labels = rng.integers(0, 3, 8)
    if loss == "sparse_categorical_crossentropy":
        y = labels
        fn = lambda z: ref.cce_logits(ref.onehot(labels, 3), z)
    elif loss == "categorical_crossentropy":
        y = ref.onehot(labels, 3)
        fn = lambda z: ref.cce_logits(y, z)
    elif loss == "mse":
        y = rng.standard_normal((8, 3))
        fn = lambda z: ref.mse(y, z)
    else:
        y = rng.integers(0, 2, (8, 3)).astype(float)
        fn = lambda z: ref.bce_logits(y, z)
    want_loss, grads = _manual_grads(x.astype(dtype).astype(np.float64), *W, fn)
    got_loss = model.train_on_batch(x, y)
    assert isinstance(got_loss, float)
    tol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(got_loss, want_loss, rtol=tol)
    for w, w0, g in zip(model.get_weights(), W, grads):
        np.testing.assert_allclose(w, w0 - lr * g, rtol=tol, atol=tol)
    # the loss returned is the one before the step: a second call on the same batch is lower
    assert model.train_on_batch(x, y) < got_loss


def test_train_on_batch_with_momentum_two_steps(rng):
    model = _two_layer("float64", "softmax", 0.05)
    lr, m = 0.05, 0.9
    model.compile(optimizer=dlfast.optimizers.SGD(lr, momentum=m, nesterov=True),
                  loss="sparse_categorical_crossentropy")
    W = model.get_weights()
    V = [np.zeros_like(w) for w in W]
    for _ in range(2):
        x = rng.standard_normal((6, 4))
        labels = rng.integers(0, 3, 6)
        _, grads = _manual_grads(x, *W, lambda z: ref.cce_logits(ref.onehot(labels, 3), z))
        model.train_on_batch(x, labels)
        for i, g in enumerate(grads):
            W[i], V[i] = ref.sgd_step(W[i], g, V[i], lr, m, True, 0.0)
    for w, want in zip(model.get_weights(), W):
        np.testing.assert_allclose(w, want, rtol=1e-12, atol=1e-13)


def test_sequential_dtype_float64_with_an_input_layer(rng):
    # dtype='float64' on the model must win over an Input that does not name a dtype
    model = iris_net(dtype="float64")
    model.build()
    assert model.dtype == np.float64
    assert [w.dtype for w in model.weights] == [np.dtype(np.float64)] * 6
    assert model.predict(rng.standard_normal((2, 4))).dtype == np.float64


@pytest.mark.parametrize("how", ["sequential_dtype", "input_dtype"])
def test_float64_model(how, rng):
    if how == "sequential_dtype":
        model = dlfast.Sequential([layers.Dense(8, activation="tanh", input_shape=(4,)),
                                   layers.Dense(3, activation="softmax")], dtype="float64")
    else:
        model = dlfast.Sequential([layers.Input((4,), dtype="float64"),
                                   layers.Dense(8, activation="tanh"),
                                   layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.standard_normal((20, 4))
    y = rng.integers(0, 3, 20)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert all(w.dtype == np.float64 for w in model.weights)
    p = model.predict(x)
    assert p.dtype == np.float64
    W = model.get_weights()
    want = ref.act_forward(np.tanh(x @ W[0] + W[1]) @ W[2] + W[3], "softmax")
    np.testing.assert_allclose(p, want, rtol=1e-12, atol=1e-14)
    loss, acc = model.evaluate(x, y)
    np.testing.assert_allclose(loss, ref.cce(ref.onehot(y, 3), want)[0], rtol=1e-10)
    assert acc == pytest.approx(np.mean(want.argmax(1) == y))


def test_fit_history_evaluate_predict(rng):
    dlfast.manual_seed(0)
    model = iris_net()
    model.compile(optimizer=dlfast.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = rng.standard_normal((50, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
    hist = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    assert set(hist.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in hist.history.values())
    assert all(0 <= a <= 1 for a in hist.history["accuracy"] + hist.history["val_accuracy"])
    # the validation scores are those of the final model on the last 20% of the data
    val_loss, val_acc = model.evaluate(x[40:], y[40:])
    np.testing.assert_allclose(hist.history["val_loss"][-1], val_loss, rtol=1e-5)
    assert hist.history["val_accuracy"][-1] == pytest.approx(val_acc)
    result = model.evaluate(x, y, batch_size=7)
    assert isinstance(result, list) and len(result) == 2
    p = model.predict(x, batch_size=16)
    assert p.shape == (50, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    # evaluate's numbers match a NumPy computation on the predictions
    np.testing.assert_allclose(result[0], ref.cce(ref.onehot(y, 3), p)[0], rtol=1e-4)
    assert result[1] == pytest.approx(np.mean(p.argmax(1) == y))
    d = model.evaluate(x, y, return_dict=True)
    assert set(d) == {"loss", "accuracy"}


def test_fit_with_validation_data_and_without_metrics(rng):
    model = iris_net()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((30, 4))
    y = rng.integers(0, 3, 30)
    hist = model.fit(x, y, epochs=2, validation_data=(x[:10], y[:10]), verbose=0)
    assert set(hist.history) == {"loss", "val_loss"}
    assert isinstance(model.evaluate(x, y), float)


def test_predict_empty_and_single(rng):
    model = iris_net()
    model.build()
    assert model.predict(np.zeros((0, 4))).shape == (0, 3)
    assert model.predict(rng.standard_normal((1, 4))).shape == (1, 3)


def test_model_zero_grad_and_backward_accumulates(rng):
    model = dlfast.Sequential([layers.Input((4,), dtype="float64"),
                               layers.Dense(6, activation="tanh"),
                               layers.Dense(3, activation="softmax")])
    x = rng.standard_normal((4, 4))
    dy = rng.standard_normal((4, 3))
    model.forward(x)
    model.backward(dy)
    once = [g.copy() for g in model.grads]
    assert any(np.any(g != 0) for g in once)
    model.backward(dy)
    for g, g1 in zip(model.grads, once):
        np.testing.assert_allclose(g, 2 * g1, rtol=1e-14, atol=1e-15)
    model.zero_grad()
    assert all(np.all(g == 0) for g in model.grads)
