"""Convolution and pooling benchmarks: the course's CIFAR-10 layers, max pooling, and the
CIFAR model's full training step, against NumPy (im2col) and PyTorch in NCHW and
channels_last. Each case is checked against a float64 NumPy result before it is timed."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import dlfast
from dlfast import ops
from dlfast.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

from harness import Case, expect_close, torch

RNG = np.random.default_rng(4321)
TOL = 2e-4


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def f64(a):
    return np.asarray(a, np.float64)


# --- NumPy reference implementations (NHWC, HWIO, 'valid', stride 1) -------------------------

def np_im2col(x, r, s):
    """(N, H, W, C) -> (N*P*Q, R*S*C) patches in (r, s, c) order."""
    n, _, _, c = x.shape
    win = sliding_window_view(x, (r, s), axis=(1, 2))          # (N, P, Q, C, R, S)
    p, q = win.shape[1], win.shape[2]
    return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n * p * q, r * s * c)


def np_conv_forward(x, w, b):
    r, s, c, k = w.shape
    cols = np_im2col(x, r, s)
    n, h, wd, _ = x.shape
    y = cols @ w.reshape(r * s * c, k)
    y += b
    return y.reshape(n, h - r + 1, wd - s + 1, k), cols


def np_conv_backward(dz, cols, x_shape, w):
    """(dx, dw, db) of a 'valid' stride-1 convolution, from the forward's im2col."""
    r, s, c, k = w.shape
    n, h, wd, _ = x_shape
    p, q = h - r + 1, wd - s + 1
    dz2 = dz.reshape(-1, k)
    dw = (cols.T @ dz2).reshape(w.shape)
    db = dz2.sum(axis=0)
    dcols = (dz2 @ w.reshape(r * s * c, k).T).reshape(n, p, q, r, s, c)
    dx = np.zeros(x_shape, dz.dtype)
    for i in range(r):
        for j in range(s):
            dx[:, i:i + p, j:j + q, :] += dcols[:, :, :, i, j, :]
    return dx, dw, db


def np_maxpool2(x):
    n, h, w, c = x.shape
    return x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def np_maxpool2_backward(dy, x, y):
    n, h, w, c = x.shape
    up = lambda a: a.repeat(2, axis=1).repeat(2, axis=2)
    dx = np.zeros_like(x)
    dx[:, :h // 2 * 2, :w // 2 * 2] = (x[:, :h // 2 * 2, :w // 2 * 2] == up(y)) * up(dy)
    return dx


# --- single layers ----------------------------------------------------------------------------

def to_torch_conv(x, w, layout):
    """NCHW tensors (channels_last memory when asked) for x (NHWC) and w (HWIO)."""
    fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=fmt)
    return tx, tw


def conv_case(name, n, hw, cin, cout, k=3, padding="valid"):
    x, w, b = randn(n, hw, hw, cin), randn(k, k, cin, cout) * 0.1, randn(cout) * 0.1
    p = hw - k + 1 if padding == "valid" else hw
    dy = randn(n, p, p, cout)
    flops_fwd = 2.0 * n * p * p * k * k * cin * cout
    cases = []
    fwd = {"dlfast": lambda: ops.conv2d_forward(x, w, b, padding=padding)}
    bwd = {"dlfast": lambda: ops.conv2d_backward(dy, x, w, b, padding=padding)}
    if padding == "valid":
        fwd["numpy"] = lambda: np_conv_forward(x, w, b)[0]
        cols = np_conv_forward(x, w, b)[1]
        bwd["numpy"] = lambda: np_conv_backward(dy, cols, x.shape, w)
    if torch is not None:
        pad = 0 if padding == "valid" else k // 2
        for layout in ("nchw", "cl"):
            tx, tw = to_torch_conv(x, w, layout)
            tb = torch.from_numpy(b)
            fwd[f"torch_{layout}"] = (lambda tx=tx, tw=tw, tb=tb: torch.nn.functional.conv2d(
                tx, tw, tb, padding=pad))
            txg, twg, tbg = tx.clone().requires_grad_(), tw.clone().requires_grad_(), \
                tb.clone().requires_grad_()
            tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(
                memory_format=torch.channels_last if layout == "cl" else torch.contiguous_format)

            def torch_bwd(txg=txg, twg=twg, tbg=tbg, tdy=tdy):
                out = torch.nn.functional.conv2d(txg, twg, tbg, padding=pad)
                return torch.autograd.grad(out, (txg, twg, tbg), tdy)
            bwd[f"torch_{layout}"] = torch_bwd

    def check_fwd():
        ref = f64(np_conv_forward(np.pad(f64(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
                                  if padding == "same" else f64(x), f64(w), f64(b))[0])
        return f"rel err {expect_close('dlfast', [('y', fwd['dlfast'](), ref)], TOL):.1e}"

    def check_bwd():
        xp = np.pad(f64(x), ((0, 0), (1, 1), (1, 1), (0, 0))) if padding == "same" else f64(x)
        _, cols = np_conv_forward(xp, f64(w), f64(b))
        dx, dw, db = np_conv_backward(f64(dy), cols, xp.shape, f64(w))
        if padding == "same":
            dx = dx[:, 1:-1, 1:-1]
        got = bwd["dlfast"]()
        err = expect_close("dlfast", [("dx", got[0], dx), ("dkernel", got[1], dw),
                                      ("dbias", got[2], db)], TOL)
        return f"rel err {err:.1e}"

    cases.append(Case("conv", f"{name} fwd", fwd, check_fwd, flops=flops_fwd))
    cases.append(Case("conv", f"{name} bwd (data+weights)", bwd, check_bwd, flops=2 * flops_fwd))
    return cases


def pool_case(n=64, hw=32, c=32):
    x = randn(n, hw, hw, c)
    dy = randn(n, hw // 2, hw // 2, c)
    def dlfast_pool():
        ops.maxpool2d_forward(x, 2)
        return ops.maxpool2d_backward(dy, x, 2)

    impls = {"dlfast": dlfast_pool,
             "numpy": lambda: np_maxpool2_backward(dy, x, np_maxpool2(x))}
    if torch is not None:
        for layout in ("nchw", "cl"):
            fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
            tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
            tx.requires_grad_()
            tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=fmt)

            def torch_pool(tx=tx, tdy=tdy):
                out = torch.nn.functional.max_pool2d(tx, 2)
                return torch.autograd.grad(out, tx, tdy)
            impls[f"torch_{layout}"] = torch_pool

    def check():
        ref = np_maxpool2_backward(f64(dy), f64(x), np_maxpool2(f64(x)))
        got = ops.maxpool2d_backward(dy, x, 2)
        return f"rel err {expect_close('dlfast', [('dx', got, ref)], 1e-6):.1e}"
    return Case("conv", f"maxpool 2x2 fwd+bwd ({n},{hw},{hw},{c})", impls, check)


# --- the CIFAR model's training step --------------------------------------------------------

CIFAR_LAYERS = [(3, 32), (32, 64), (64, 64)]


def cifar_weights():
    ws = []
    for cin, cout in CIFAR_LAYERS:
        limit = np.sqrt(6.0 / (9 * cin + 9 * cout))
        ws += [RNG.uniform(-limit, limit, (3, 3, cin, cout)).astype(np.float32),
               (0.05 * randn(cout)).astype(np.float32)]
    for d_in, d_out in [(4 * 4 * 64, 64), (64, 10)]:
        limit = np.sqrt(6.0 / (d_in + d_out))
        ws += [RNG.uniform(-limit, limit, (d_in, d_out)).astype(np.float32),
               (0.05 * randn(d_out)).astype(np.float32)]
    return ws


def numpy_cifar_step(p, x, labels, lr):
    """One SGD step of the course's CIFAR model in NumPy (im2col convolutions), in place."""
    n = x.shape[0]
    h0, cols0 = np_conv_forward(x, p[0], p[1]); a0 = np.maximum(h0, 0)
    m0 = np_maxpool2(a0)
    h1, cols1 = np_conv_forward(m0, p[2], p[3]); a1 = np.maximum(h1, 0)
    m1 = np_maxpool2(a1)
    h2, cols2 = np_conv_forward(m1, p[4], p[5]); a2 = np.maximum(h2, 0)
    f = a2.reshape(n, -1)
    h3 = f @ p[6] + p[7]; a3 = np.maximum(h3, 0)
    z = a3 @ p[8] + p[9]
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z); s = e.sum(axis=1, keepdims=True); e /= s
    rows = np.arange(n)
    loss = (np.log(s).sum() - z[rows, labels].sum()) / n
    e[rows, labels] -= 1; e /= n
    g = [None] * 10
    g[8], g[9] = a3.T @ e, e.sum(0)
    d3 = (e @ p[8].T) * (h3 > 0)
    g[6], g[7] = f.T @ d3, d3.sum(0)
    d2 = (d3 @ p[6].T).reshape(a2.shape) * (h2 > 0)
    dm1, g[4], g[5] = np_conv_backward(d2, cols2, m1.shape, p[4])
    d1 = np_maxpool2_backward(dm1, a1, m1) * (h1 > 0)
    dm0, g[2], g[3] = np_conv_backward(d1, cols1, m0.shape, p[2])
    d0 = np_maxpool2_backward(dm0, a0, m0) * (h0 > 0)
    _, g[0], g[1] = np_conv_backward(d0, cols0, x.shape, p[0])
    for w, gw in zip(p, g):
        w -= lr * gw
    return float(loss)


def dlfast_cifar():
    model = dlfast.Sequential([
        Input((32, 32, 3)),
        Conv2D(32, 3, activation="relu"), MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"), MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"),
        Flatten(), Dense(64, activation="relu"), Dense(10, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model


def torch_cifar(w, layout):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(ci, co, 3) for ci, co in CIFAR_LAYERS)
            self.fc1, self.fc2 = nn.Linear(1024, 64), nn.Linear(64, 10)

        def forward(self, x):
            x = torch.relu(self.convs[0](x)); x = torch.nn.functional.max_pool2d(x, 2)
            x = torch.relu(self.convs[1](x)); x = torch.nn.functional.max_pool2d(x, 2)
            x = torch.relu(self.convs[2](x))
            x = x.permute(0, 2, 3, 1).flatten(1)   # Keras's (H, W, C) flatten order
            return self.fc2(torch.relu(self.fc1(x)))

    net = Net()
    with torch.no_grad():
        for i, conv in enumerate(net.convs):
            conv.weight.copy_(torch.from_numpy(w[2 * i]).permute(3, 2, 0, 1))
            conv.bias.copy_(torch.from_numpy(w[2 * i + 1]))
        for lin, (kw, kb) in zip((net.fc1, net.fc2), ((w[6], w[7]), (w[8], w[9]))):
            lin.weight.copy_(torch.from_numpy(kw.T)); lin.bias.copy_(torch.from_numpy(kb))
    if layout == "cl":
        net = net.to(memory_format=torch.channels_last)
    return net


def cifar_train_case(batch=64, lr=0.01):
    w0 = cifar_weights()
    x = RNG.random((batch, 32, 32, 3), dtype=np.float32)
    labels = RNG.integers(0, 10, batch)
    model = dlfast_cifar()
    model.set_weights(w0)
    np_params = [w.copy() for w in w0]
    impls = {"dlfast": lambda: model.train_on_batch(x, labels),
             "numpy": lambda: numpy_cifar_step(np_params, x, labels, lr)}
    if torch is not None:
        ty = torch.from_numpy(labels)
        for layout in ("nchw", "cl"):
            net = torch_cifar(w0, layout)
            opt = torch.optim.SGD(net.parameters(), lr=lr)
            crit = torch.nn.CrossEntropyLoss()
            fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
            tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)

            def step(net=net, opt=opt, crit=crit, tx=tx):
                opt.zero_grad()
                loss = crit(net(tx), ty)
                loss.backward()
                opt.step()
                return loss.item()
            impls[f"torch_{layout}"] = step

    def check():
        ref = [f64(w) for w in w0]
        ref_loss = numpy_cifar_step(ref, f64(x), labels, lr)
        got_loss = impls["dlfast"]()
        pairs = [("loss", got_loss, ref_loss)]
        pairs += [(f"update of weight {i}", w - s, r - s)
                  for i, (w, s, r) in enumerate(zip(model.get_weights(), w0, ref))]
        return f"1 step: loss, updates rel err {expect_close('dlfast', pairs, 2e-3):.1e}"

    # forward, dW and dx of every layer, 2 flops per multiply-add, less the first layer's dx
    # (the input's gradient is never computed)
    flops = 3 * 2.0 * batch * (30 * 30 * 9 * 3 * 32 + 13 * 13 * 9 * 32 * 64 + 4 * 4 * 9 * 64 * 64
                               + 1024 * 64 + 64 * 10) - 2.0 * batch * 30 * 30 * 9 * 3 * 32
    return Case("conv", f"cifar model train step b{batch}", impls, check, flops=flops)


# --- transposed convolution (Keras's Conv2DTranspose) ----------------------------------------

def np_conv_transpose_forward(x, w, b, stride, pad_before, out_hw):
    """Keras's conv2d_transpose in NumPy, NHWC, kernel (kh, kw, F, Cin): one GEMM gives every
    input pixel's window, (M, Cin) @ (Cin, kh*kw*F), then kh*kw strided adds scatter the
    windows (col2im), and the pad rows are cropped. Returns y and the GEMM's input x2d."""
    n, h, wd, cin = x.shape
    r, s, f, _ = w.shape
    x2 = x.reshape(-1, cin)
    cols = (x2 @ w.reshape(r * s * f, cin).T).reshape(n, h, wd, r, s, f)
    full = np.zeros((n, (h - 1) * stride + r, (wd - 1) * stride + s, f), x.dtype)
    for i in range(r):
        for j in range(s):
            full[:, i:i + (h - 1) * stride + 1:stride, j:j + (wd - 1) * stride + 1:stride] += \
                cols[:, :, :, i, j]
    y = full[:, pad_before:pad_before + out_hw[0], pad_before:pad_before + out_hw[1]] + b
    return y, x2


def np_conv_transpose_backward(dy, x2, x_shape, w, stride, pad_before):
    """(dx, dkernel, dbias) of np_conv_transpose_forward: the windows of dy (im2col of the
    zero-padded dy, through sliding_window_view) against the kernel (dx) and x (dkernel)."""
    n, h, wd, cin = x_shape
    r, s, f, _ = w.shape
    hf, wf = (h - 1) * stride + r, (wd - 1) * stride + s
    dyp = np.zeros((n, hf, wf, f), dy.dtype)
    oh, ow = min(dy.shape[1], hf - pad_before), min(dy.shape[2], wf - pad_before)
    dyp[:, pad_before:pad_before + oh, pad_before:pad_before + ow] = dy[:, :oh, :ow]
    win = sliding_window_view(dyp, (r, s), axis=(1, 2))[:, ::stride, ::stride]  # N,h,w,F,R,S
    cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n * h * wd, r * s * f)
    w2 = w.reshape(r * s * f, cin)
    dx = (cols @ w2).reshape(x_shape)
    dw = (cols.T @ x2).reshape(w.shape)
    return dx, dw, dy.reshape(-1, f).sum(axis=0)


def conv_transpose_case(n=64, hw=8, cin=64, cout=32, k=4, stride=2):
    """Keras Conv2DTranspose(cout, k, strides=stride, padding='same') forward + backward (a
    GAN generator's upsampling layer). Keras's 'same' for k=4, s=2 puts 1 row of padding
    before, TensorFlow's placement: torch's padding=1 crops the same rows."""
    x, w, b = randn(n, hw, hw, cin), randn(k, k, cout, cin) * 0.1, randn(cout) * 0.1
    out = hw * stride
    pad_before = max((hw - 1) * stride + k - out, 0) // 2
    dy = randn(n, out, out, cout)
    kw = dict(strides=stride, padding="same")

    def dlfast_step():
        y = ops.conv2d_transpose_forward(x, w, b, **kw)
        return (y,) + ops.conv2d_transpose_backward(dy, x, w, b, y=y, **kw)

    def numpy_step():
        y, x2 = np_conv_transpose_forward(x, w, b, stride, pad_before, (out, out))
        return (y,) + np_conv_transpose_backward(dy, x2, x.shape, w, stride, pad_before)

    impls = {"dlfast": dlfast_step, "numpy": numpy_step}
    if torch is not None:
        tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(
            memory_format=torch.channels_last).requires_grad_()
        tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(
            memory_format=torch.channels_last).requires_grad_()   # (Cin, F, kh, kw)
        tb = torch.from_numpy(b).requires_grad_()
        tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(
            memory_format=torch.channels_last)
        tpad = k // 2 - 1 if k % 2 == 0 else k // 2  # 1 for k=4, s=2: Keras's pad_before

        def torch_step():
            y = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride=stride, padding=tpad)
            return (y,) + torch.autograd.grad(y, (tx, tw, tb), tdy)
        impls["torch_cl"] = torch_step

    def check():
        y, x2 = np_conv_transpose_forward(f64(x), f64(w), f64(b), stride, pad_before, (out, out))
        ref = (y,) + np_conv_transpose_backward(f64(dy), x2, x.shape, f64(w), stride, pad_before)
        names = ("y", "dx", "dkernel", "dbias")
        err = expect_close("dlfast", list(zip(names, dlfast_step(), ref)), TOL)
        expect_close("numpy", list(zip(names, numpy_step(), ref)), TOL)
        if torch is not None:
            ty, tdx, tdw, tdb = (t.detach().numpy() for t in impls["torch_cl"]())
            expect_close("torch_cl", [("y", ty.transpose(0, 2, 3, 1), ref[0]),
                                      ("dx", tdx.transpose(0, 2, 3, 1), ref[1]),
                                      ("dkernel", tdw.transpose(2, 3, 1, 0), ref[2]),
                                      ("dbias", tdb, ref[3])], TOL)
        return f"y, dx, dkernel, dbias rel err {err:.1e} (numpy, torch_cl checked too)"

    flops = 3 * 2.0 * n * hw * hw * cin * k * k * cout  # y, dx, dkernel: one product each
    return Case("conv", f"Conv2DTranspose {cin}->{cout} {k}x{k} stride {stride} 'same' "
                f"{hw}x{hw}->{out}x{out} batch {n} forward+backward", impls, check, flops=flops)


def conv_cases():
    cases = []
    cases += conv_case("conv 3->32 3x3 32x32 b64", 64, 32, 3, 32)
    cases += conv_case("conv 32->64 3x3 15x15 b64", 64, 15, 32, 64)
    cases += conv_case("conv 64->64 3x3 6x6 b64", 64, 6, 64, 64)
    cases += conv_case("conv 32->32 3x3 same 32x32 b64", 64, 32, 32, 32, padding="same")
    cases.append(pool_case())
    cases.append(cifar_train_case())
    cases.append(conv_transpose_case())
    return cases
