"""GRU kernel benchmark (issue 15): the fused C++ forward + backward through time
(_core.gru_forward, _core.gru_backward; Keras 3's GRU, reset_after=True) against PyTorch's
torch.nn.GRU (batch_first, the same math: torch's n gate is Keras's h~ with reset_after) and a
NumPy implementation (the input projection as one matmul, the time loop in Python), and the
issue's line: the GRU(128) -> Dense(10) train step (dlfast.layers.GRU) against the same step
in PyTorch and NumPy. Checked against float64 NumPy first."""

import numpy as np

import dlfast
from dlfast import _core
from dlfast.layers import GRU, Dense, Input

from harness import Case, expect_close, torch

RNG = np.random.default_rng(1357)
TOL = 2e-4


def randn(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def np_gru_forward(x, W, R, b):
    """Keras layout: kernel (D, 3U), recurrent (U, 3U), bias (2, 3U); gates z, r, h~."""
    n, steps, _ = x.shape
    u = R.shape[0]
    XP = (x.reshape(n * steps, -1) @ W + b[0]).reshape(n, steps, 3 * u)
    h = np.zeros((n, u), x.dtype)
    H, A = [], []
    for t in range(steps):
        rec = h @ R + b[1]
        z = sigmoid(XP[:, t, :u] + rec[:, :u])
        r = sigmoid(XP[:, t, u:2 * u] + rec[:, u:2 * u])
        hh = np.tanh(XP[:, t, 2 * u:] + r * rec[:, 2 * u:])
        h = z * h + (1 - z) * hh
        H.append(h)
        A.append((z, r, hh, rec[:, 2 * u:]))
    return np.stack(H, 1), A


def np_gru_backward(dH, x, W, R, H, A):
    n, steps, _ = x.shape
    u = R.shape[0]
    dX = np.empty((n, steps, 3 * u), x.dtype)
    dRc = np.empty((n, steps, 3 * u), x.dtype)
    dh = np.zeros((n, u), x.dtype)
    for t in reversed(range(steps)):
        z, r, hh, rh = A[t]
        hp = H[:, t - 1] if t > 0 else np.zeros_like(dh)
        g = dh + dH[:, t]
        da_z = g * (hp - hh) * z * (1 - z)
        da_h = g * (1 - z) * (1 - hh * hh)
        da_r = da_h * rh * r * (1 - r)
        dX[:, t] = np.concatenate([da_z, da_r, da_h], 1)
        dRc[:, t] = np.concatenate([da_z, da_r, da_h * r], 1)
        dh = g * z + dRc[:, t] @ R.T
    HP = np.concatenate([np.zeros((n, 1, u), x.dtype), H[:, :-1]], 1).reshape(n * steps, u)
    dX2, dRc2 = dX.reshape(n * steps, -1), dRc.reshape(n * steps, -1)
    dW = x.reshape(n * steps, -1).T @ dX2
    dR = HP.T @ dRc2
    db = np.stack([dX2.sum(0), dRc2.sum(0)])
    return (dX2 @ W.T).reshape(x.shape), dW, dR, db


def torch_gru(W, R, b, d, u):
    m = torch.nn.GRU(d, u, batch_first=True)

    def torch_order(a):  # Keras columns z, r, h -> torch rows r, z, n
        return np.concatenate([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], -1)

    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(torch_order(W).T.copy()))
        m.weight_hh_l0.copy_(torch.from_numpy(torch_order(R).T.copy()))
        m.bias_ih_l0.copy_(torch.from_numpy(torch_order(b[0]).copy()))
        m.bias_hh_l0.copy_(torch.from_numpy(torch_order(b[1]).copy()))
    return m


def kernel_case(n, steps, d, u):
    W, R = randn(d, 3 * u, scale=1 / np.sqrt(d)), randn(u, 3 * u, scale=1 / np.sqrt(u))
    b = randn(2, 3 * u, scale=0.1)
    x, dH = randn(n, steps, d), randn(n, steps, u)
    grads = [np.zeros_like(W), np.zeros_like(R), np.zeros_like(b)]

    def run_dlfast():
        H, Z = _core.gru_forward(x, W, R, b, None)
        dx, _ = _core.gru_backward(dH, None, x, W, R, None, H, Z, *grads, True, False, False)
        return H, dx

    def run_numpy():
        H, A = np_gru_forward(x, W, R, b)
        return H, np_gru_backward(dH, x, W, R, H, A)

    impls = {"dlfast": run_dlfast, "numpy": run_numpy}
    if torch is not None:
        m = torch_gru(W, R, b, d, u)
        tx = torch.from_numpy(x).clone().requires_grad_()
        tdy = torch.from_numpy(dH)

        def run_torch():
            out = m(tx)[0]
            return torch.autograd.grad(out, [tx] + list(m.parameters()), tdy)
        impls["torch"] = run_torch

    def check():
        w64 = [np.float64(a) for a in (x, W, R, b)]
        H, A = np_gru_forward(*w64)
        dx, dW, dR, db = np_gru_backward(np.float64(dH), w64[0], w64[1], w64[2], H, A)
        got_H, got_dx = run_dlfast()
        err = expect_close("dlfast", [("h", got_H, H), ("dx", got_dx, dx), ("dkernel", grads[0], dW),
                                      ("drecurrent", grads[1], dR), ("dbias", grads[2], db)], TOL)
        if torch is not None:
            tg = run_torch()
            err = max(err, expect_close("torch", [("dx", tg[0].numpy(), dx)], TOL))
        return f"rel err {err:.1e}"

    flops = 3 * 2.0 * n * steps * (d + u) * 3 * u
    return Case("gru", f"gru({u}) kernels fwd+bwd N{n} T{steps} D{d}", impls, check, flops=flops,
                notes="kernels only")


def np_train_step(p, x, labels, lr):
    """One SGD step of GRU -> Dense(10, softmax) with sparse cross-entropy, in place."""
    W, R, b, K, kb = p
    n = x.shape[0]
    H, A = np_gru_forward(x, W, R, b)
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
    _, dW, dR, db = np_gru_backward(dH, x, W, R, H, A)
    for w, g in zip(p, (dW, dR, db, dK, dkb)):
        w -= lr * g
    return float(loss)


def train_case(n, steps, d, u, lr=0.05):
    w = [randn(d, 3 * u, scale=1 / np.sqrt(d)), randn(u, 3 * u, scale=1 / np.sqrt(u)),
         randn(2, 3 * u, scale=0.1), randn(u, 10, scale=1 / np.sqrt(u)), randn(10, scale=0.1)]
    x = randn(n, steps, d)
    labels = RNG.integers(0, 10, n)

    def make():
        model = dlfast.Sequential([Input((steps, d)), GRU(u), Dense(10, activation="softmax")])
        model.compile(optimizer=dlfast.optimizers.SGD(lr),
                      loss="sparse_categorical_crossentropy")
        model.set_weights(w)
        return model
    model = make()
    np_params = [a.copy() for a in w]
    impls = {"dlfast": lambda: model.train_on_batch(x, labels),
             "numpy": lambda: np_train_step(np_params, x, labels, lr)}
    if torch is not None:
        m = torch_gru(w[0], w[1], w[2], d, u)
        fc = torch.nn.Linear(u, 10)
        with torch.no_grad():
            fc.weight.copy_(torch.from_numpy(w[3].T))
            fc.bias.copy_(torch.from_numpy(w[4]))
        opt = torch.optim.SGD(list(m.parameters()) + list(fc.parameters()), lr=lr)
        tx, ty = torch.from_numpy(x), torch.from_numpy(labels)

        def torch_step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(fc(m(tx)[0][:, -1]), ty)
            loss.backward()
            opt.step()
            return loss.item()
        impls["torch"] = torch_step

    def check():
        # one step from the same weights: dlfast's loss and new weights against float64 NumPy
        check_model = make()
        loss = check_model.train_on_batch(x, labels)
        p64 = [np.float64(a) for a in w]
        ref_loss = np_train_step(p64, np.float64(x), labels, lr)
        err = expect_close("dlfast", [("loss", np.float64(loss), np.float64(ref_loss))] +
                           [(f"weight {i}", a, r) for i, (a, r) in
                            enumerate(zip(check_model.get_weights(), p64))], TOL)
        return f"rel err {err:.1e}"

    flops = 3 * 2.0 * n * steps * (d + u) * 3 * u - 2.0 * n * steps * d * 3 * u
    return Case("gru", f"gru({u}) -> dense(10) train step N{n} T{steps} D{d}", impls, check,
                flops=flops)


def gru_cases():
    return [kernel_case(64, 32, 64, 128), train_case(64, 32, 64, 128)]
