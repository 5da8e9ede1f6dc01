"""LSTM benchmarks: forward, forward+backward and the training step of LSTM -> Dense(10), against
a NumPy implementation (the input projection as one matmul, the time loop in Python) and
PyTorch's torch.nn.LSTM (batch_first). Each case is checked against float64 NumPy first."""

import numpy as np

import dlfast
from dlfast.layers import LSTM, Dense, Input

from harness import Case, expect_close, torch

RNG = np.random.default_rng(2468)
TOL = 2e-4


def randn(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# --- NumPy implementation (Keras layout, gates i, f, c~, o) ------------------------------------

def np_lstm_forward(x, W, R, b):
    """Every h (N, L, U) plus what backward needs."""
    n, steps, d = x.shape
    u = R.shape[0]
    z_all = (x.reshape(n * steps, d) @ W + b).reshape(n, steps, 4 * u)
    h, c = np.zeros((n, u), x.dtype), np.zeros((n, u), x.dtype)
    H = np.empty((n, steps, u), x.dtype)
    C = np.empty((n, steps, u), x.dtype)
    A = np.empty((n, steps, 4 * u), x.dtype)
    for t in range(steps):
        z = z_all[:, t] + h @ R
        a = A[:, t]
        a[:, :2 * u] = sigmoid(z[:, :2 * u])
        a[:, 2 * u:3 * u] = np.tanh(z[:, 2 * u:3 * u])
        a[:, 3 * u:] = sigmoid(z[:, 3 * u:])
        c = a[:, u:2 * u] * c + a[:, :u] * a[:, 2 * u:3 * u]
        h = a[:, 3 * u:] * np.tanh(c)
        C[:, t], H[:, t] = c, h
    return H, C, A


def np_lstm_backward(dH, x, W, R, H, C, A):
    """(dx, dW, dR, db) from the gradient of every h; weight gradients as one matmul each."""
    n, steps, d = x.shape
    u = R.shape[0]
    dZ = np.empty((n, steps, 4 * u), x.dtype)
    dh_next = np.zeros((n, u), x.dtype)
    dc = np.zeros((n, u), x.dtype)
    for t in reversed(range(steps)):
        a = A[:, t]
        i, f, g, o = a[:, :u], a[:, u:2 * u], a[:, 2 * u:3 * u], a[:, 3 * u:]
        dh = dH[:, t] + dh_next
        tc = np.tanh(C[:, t])
        dc = dc + dh * o * (1 - tc * tc)
        c_prev = C[:, t - 1] if t else 0.0
        dz = dZ[:, t]
        dz[:, :u] = dc * g * i * (1 - i)
        dz[:, u:2 * u] = dc * c_prev * f * (1 - f)
        dz[:, 2 * u:3 * u] = dc * i * (1 - g * g)
        dz[:, 3 * u:] = dh * tc * o * (1 - o)
        dh_next = dz @ R.T
        dc = dc * f
    dz2 = dZ.reshape(n * steps, 4 * u)
    h_prev = np.concatenate([np.zeros((n, 1, u), x.dtype), H[:, :-1]], axis=1)
    dW = x.reshape(n * steps, d).T @ dz2
    dR = h_prev.reshape(n * steps, u).T @ dz2
    return (dz2 @ W.T).reshape(x.shape), dW, dR, dz2.sum(0)


def np_train_step(p, x, labels, lr):
    """One SGD step of LSTM -> Dense(10, softmax) with sparse cross-entropy, in place."""
    W, R, b, K, kb = p
    n = x.shape[0]
    H, C, A = np_lstm_forward(x, W, R, b)
    h = H[:, -1]
    z = h @ K + kb
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    e /= s
    rows = np.arange(n)
    loss = (np.log(s).sum() - z[rows, labels].sum()) / n
    e[rows, labels] -= 1
    e /= n
    dK, dkb = h.T @ e, e.sum(0)
    dH = np.zeros_like(H)
    dH[:, -1] = e @ K.T
    _, dW, dR, db = np_lstm_backward(dH, x, W, R, H, C, A)
    for w, g in zip(p, (dW, dR, db, dK, dkb)):
        w -= lr * g
    return float(loss)


# --- cases ------------------------------------------------------------------------------------

def lstm_weights(d, u):
    return [randn(d, 4 * u, scale=1 / np.sqrt(d)), randn(u, 4 * u, scale=1 / np.sqrt(u)),
            randn(4 * u, scale=0.1)]


def torch_lstm(w, d, u):
    m = torch.nn.LSTM(d, u, batch_first=True)
    with torch.no_grad():  # torch: weight_ih (4U, D), gates i, f, g, o; one bias is enough
        m.weight_ih_l0.copy_(torch.from_numpy(w[0].T))
        m.weight_hh_l0.copy_(torch.from_numpy(w[1].T))
        m.bias_ih_l0.copy_(torch.from_numpy(w[2]))
        m.bias_hh_l0.zero_()
    return m


def layer_cases(n, steps, d, u):
    w = lstm_weights(d, u)
    x = randn(n, steps, d)
    dH = randn(n, steps, u)
    tag = f"N{n} T{steps} D{d} U{u}"
    flops_fwd = 2.0 * n * steps * (d + u) * 4 * u
    layer = LSTM(u, return_sequences=True)
    layer.build((steps, d))
    layer.set_weights(w)

    def dlfast_fwd_bwd():
        layer.forward(x, training=True)
        return layer.backward(dH)

    fwd = {"dlfast": lambda: layer.forward(x),
           "numpy": lambda: np_lstm_forward(x, *w)[0]}
    bwd = {"dlfast": dlfast_fwd_bwd,
           "numpy": lambda: np_lstm_backward(dH, x, w[0], w[1], *np_lstm_forward(x, *w))}
    if torch is not None:
        m = torch_lstm(w, d, u)
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dH)
        txg = tx.clone().requires_grad_()

        def torch_fwd():
            with torch.no_grad():
                return m(tx)[0]

        def torch_bwd():
            out = m(txg)[0]
            return torch.autograd.grad(out, [txg] + list(m.parameters()), tdy)
        fwd["torch"], bwd["torch"] = torch_fwd, torch_bwd

    w64 = [np.float64(a) for a in w]
    ref = np_lstm_forward(np.float64(x), *w64)

    def check_fwd():
        return f"rel err {expect_close('dlfast', [('h', layer.forward(x), ref[0])], TOL):.1e}"

    def check_bwd():
        dx, dW, dR, db = np_lstm_backward(np.float64(dH), np.float64(x), w64[0], w64[1], *ref)
        layer.zero_grad()
        got = dlfast_fwd_bwd()
        err = expect_close("dlfast", [("dx", got, dx), ("dkernel", layer.grads[0], dW),
                                      ("drecurrent", layer.grads[1], dR),
                                      ("dbias", layer.grads[2], db)], TOL)
        return f"rel err {err:.1e}"

    return [Case("lstm", f"lstm fwd {tag}", fwd, check_fwd, flops=flops_fwd),
            Case("lstm", f"lstm fwd+bwd {tag}", bwd, check_bwd, flops=3 * flops_fwd)]


def train_case(n, steps, d, u, lr=0.05):
    w = lstm_weights(d, u) + [randn(u, 10, scale=1 / np.sqrt(u)), randn(10, scale=0.1)]
    x = randn(n, steps, d)
    labels = RNG.integers(0, 10, n)
    model = dlfast.Sequential([Input((steps, d)), LSTM(u), Dense(10, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    model.set_weights(w)
    np_params = [a.copy() for a in w]
    impls = {"dlfast": lambda: model.train_on_batch(x, labels),
             "numpy": lambda: np_train_step(np_params, x, labels, lr)}
    if torch is not None:
        m = torch_lstm(w, d, u)
        fc = torch.nn.Linear(u, 10)
        with torch.no_grad():
            fc.weight.copy_(torch.from_numpy(w[3].T))
            fc.bias.copy_(torch.from_numpy(w[4]))
        params = list(m.parameters()) + list(fc.parameters())
        opt = torch.optim.SGD(params, lr=lr)
        tx, ty = torch.from_numpy(x), torch.from_numpy(labels)

        def torch_step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(fc(m(tx)[0][:, -1]), ty)
            loss.backward()
            opt.step()
            return loss.item()
        impls["torch"] = torch_step

    def check():
        # One step from the same weights: dlfast's loss and new weights against float64 NumPy.
        check_model = dlfast.Sequential([Input((steps, d)), LSTM(u),
                                         Dense(10, activation="softmax")])
        check_model.compile(optimizer=dlfast.optimizers.SGD(lr),
                            loss="sparse_categorical_crossentropy")
        check_model.set_weights(w)
        loss = check_model.train_on_batch(x, labels)
        p64 = [np.float64(a) for a in w]
        ref_loss = np_train_step(p64, np.float64(x), labels, lr)
        err = expect_close("dlfast", [("loss", np.float64(loss), np.float64(ref_loss))] +
                           [(f"weight {i}", a, r) for i, (a, r) in
                            enumerate(zip(check_model.get_weights(), p64))], TOL)
        return f"rel err {err:.1e}"

    # forward, the weight gradients and dh through time; the input's gradient dx (2*d*4u per
    # sample and step) is never computed for a first layer
    flops = 3 * 2.0 * n * steps * (d + u) * 4 * u - 2.0 * n * steps * d * 4 * u
    return Case("lstm", f"lstm({u}) -> dense(10) train step N{n} T{steps} D{d}", impls, check,
                flops=flops)


def lstm_cases():
    return (layer_cases(64, 32, 64, 128) + [train_case(64, 32, 64, 128)]
            + layer_cases(32, 20, 32, 64) + [train_case(32, 20, 32, 64)])
