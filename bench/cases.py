"""The benchmark cases: GEMM, a Dense layer's forward+backward, full training steps.

Every case builds its inputs once, gives the same work to dlfast, NumPy and (when installed)
PyTorch, and a check against a NumPy float64 reference that runs before any timing."""

import numpy as np

import dlfast
from dlfast import ops
from dlfast.layers import Dense, Input

from harness import Case, CheckFailed, expect_close, torch

RNG = np.random.default_rng(1234)
MLP = (784, 256, 128, 10)
IRIS = (4, 32, 16, 3)
GEMM_TOL = 1e-4   # norm-wise relative error of float32 against float64; a wrong answer is ~1


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def f64(a):
    return np.asarray(a, np.float64)


# --- GEMM -----------------------------------------------------------------------------------

def gemm_case(name, m, n, k, trans_a=False, trans_b=False, group="gemm"):
    """C (m, n) = op(A) @ op(B) with op(X) = X.T where asked; A, B stored as the kernel takes
    them (A (k, m) when trans_a, B (n, k) when trans_b). NumPy and torch get the transposed
    views, which their BLAS reads without a copy."""
    a = randn(k, m) if trans_a else randn(m, k)
    b = randn(n, k) if trans_b else randn(k, n)
    a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
    impls = {"dlfast": lambda: ops.matmul(a, b, trans_a=trans_a, trans_b=trans_b),
             "numpy": lambda: a_op @ b_op}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ta_op, tb_op = (ta.t() if trans_a else ta), (tb.t() if trans_b else tb)
        impls["torch"] = lambda: torch.mm(ta_op, tb_op)

    def check():
        ref = f64(a_op) @ f64(b_op)
        err = expect_close("dlfast", [("C", impls["dlfast"](), ref)], GEMM_TOL)
        return f"rel err {err:.1e}"

    return Case(group, name, impls, check, flops=2.0 * m * n * k)


def gemm_cases():
    cases = [gemm_case(f"sgemm {s}x{s}x{s}", s, s, s) for s in (256, 512, 1024, 2048)]
    for batch in (16, 64, 128):
        for i, (d_in, d_out) in enumerate(zip(MLP[:-1], MLP[1:])):
            cases.append(gemm_case(f"fwd  x@W   {batch}x{d_in} @ {d_in}x{d_out}",
                                   batch, d_out, d_in))
            cases.append(gemm_case(f"bwd  dW=xT@dz {d_in}x{batch} @ {batch}x{d_out}",
                                   d_in, d_out, batch, trans_a=True))
            if i > 0:  # the first layer's dx is not needed in training
                cases.append(gemm_case(f"bwd  dx=dz@WT {batch}x{d_out} @ {d_out}x{d_in}",
                                       batch, d_in, d_out, trans_b=True))
    return cases


# --- Dense forward + backward ---------------------------------------------------------------

def dense_numpy(x, w, b, dy):
    y = x @ w
    y += b
    np.maximum(y, 0, out=y)
    dz = dy * (y > 0)
    return y, dz @ w.T, x.T @ dz, dz.sum(axis=0)


def dense_case(batch=64, d_in=784, d_out=256):
    x, dy = randn(batch, d_in), randn(batch, d_out)
    w = (randn(d_in, d_out) * np.sqrt(2.0 / d_in)).astype(np.float32)
    b = (0.1 * randn(d_out)).astype(np.float32)
    layer = Dense(d_out, activation="relu")
    layer.build((d_in,))
    layer.set_weights([w, b])

    def run_dlfast():
        layer.zero_grad()
        y = layer.forward(x, training=True)
        return y, layer.backward(dy), layer.grads[0], layer.grads[1]

    impls = {"dlfast": run_dlfast, "numpy": lambda: dense_numpy(x, w, b, dy)}
    if torch is not None:
        lin = torch.nn.Linear(d_in, d_out)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        xt, dyt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)

        def run_torch():
            lin.zero_grad()
            xt.grad = None
            y = torch.relu(lin(xt))
            y.backward(dyt)
            return y, xt.grad, lin.weight.grad, lin.bias.grad
        impls["torch"] = run_torch

    def check():
        ref = dense_numpy(f64(x), f64(w), f64(b), f64(dy))
        names = ("y", "dx", "dkernel", "dbias")
        err = expect_close("dlfast", list(zip(names, run_dlfast(), ref)), GEMM_TOL)
        if torch is not None:
            y, dx, dwt, db = (t.detach().numpy() for t in run_torch())
            expect_close("torch", list(zip(names, (y, dx, dwt.T, db), ref)), GEMM_TOL)
        return f"rel err {err:.1e}"

    name = f"Dense {d_in}->{d_out} relu fwd+bwd b{batch}"
    return Case("dense", name, impls, check, flops=3 * 2.0 * batch * d_in * d_out)


# --- full training step ---------------------------------------------------------------------

def numpy_train_step(params, x, y, lr, sparse):
    """One SGD step of a ReLU MLP with a softmax cross-entropy head, in place on
    params = [W1, b1, W2, b2, ...]. y: int labels (sparse) or one-hot rows. Returns the loss
    before the step. Works in the arrays' dtype (float32 for timing, float64 as reference)."""
    n, depth = x.shape[0], len(params) // 2
    acts = [x]
    for i in range(depth):
        z = acts[-1] @ params[2 * i]
        z += params[2 * i + 1]
        if i < depth - 1:
            np.maximum(z, 0, out=z)
            acts.append(z)
    z -= z.max(axis=1, keepdims=True)            # stable softmax: logits shifted, z <= 0
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    e /= s                                       # probabilities
    if sparse:
        rows = np.arange(n)
        loss = (np.log(s).sum() - z[rows, y].sum()) / n
        e[rows, y] -= 1
    else:                                        # one-hot rows
        loss = (np.log(s).sum() - (z * y).sum()) / n
        e -= y
    dz = e
    dz *= 1.0 / n
    for i in range(depth - 1, -1, -1):
        w, b, h = params[2 * i], params[2 * i + 1], acts[i]
        dw, db = h.T @ dz, dz.sum(axis=0)
        if i > 0:
            dz = dz @ w.T
            dz *= h > 0
        dw *= lr
        w -= dw
        db *= lr
        b -= db
    return float(loss)


def init_weights(sizes):
    ws = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (d_in + d_out))
        ws.append(RNG.uniform(-limit, limit, (d_in, d_out)).astype(np.float32))
        ws.append((0.05 * randn(d_out)).astype(np.float32))
    return ws


def dlfast_model(sizes, loss, lr):
    layers = [Input((sizes[0],))]
    layers += [Dense(u, activation="relu") for u in sizes[1:-1]]
    layers.append(Dense(sizes[-1], activation="softmax"))
    model = dlfast.Sequential(layers)
    model.build()
    model.compile(optimizer=dlfast.optimizers.SGD(learning_rate=lr), loss=loss)
    return model


def torch_model(weights):
    mods = []
    for i in range(0, len(weights), 2):
        w, b = weights[i], weights[i + 1]
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        mods += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


def torch_weights(model):
    out = []
    for m in model:
        if isinstance(m, torch.nn.Linear):
            out += [m.weight.detach().numpy().T, m.bias.detach().numpy()]
    return out


def train_case(name, sizes, batch, sparse, lr=0.01):
    """model.train_on_batch(x, y) against a hand-written NumPy step and a PyTorch step."""
    w0 = init_weights(sizes)
    x = randn(batch, sizes[0])
    labels = RNG.integers(0, sizes[-1], batch)
    onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
    y = labels if sparse else onehot
    loss_name = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"

    model = dlfast_model(sizes, loss_name, lr)
    model.set_weights(w0)
    np_params = [w.copy() for w in w0]
    impls = {"dlfast": lambda: model.train_on_batch(x, y),
             "numpy": lambda: numpy_train_step(np_params, x, y, lr, sparse)}
    if torch is not None:
        tnet = torch_model(w0)
        topt = torch.optim.SGD(tnet.parameters(), lr=lr)
        tcrit = torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(labels)

        def torch_step():
            topt.zero_grad()
            loss = tcrit(tnet(tx), ty)
            loss.backward()
            topt.step()
            return loss.item()
        impls["torch"] = torch_step

    def check():
        ref_params = [f64(w) for w in w0]
        ref_loss = numpy_train_step(ref_params, f64(x), y if sparse else f64(y), lr, sparse)
        ref_delta = [r - w for r, w in zip(ref_params, w0)]
        got = {"dlfast": (impls["dlfast"](), lambda: model.get_weights()),
               "numpy": (impls["numpy"](), lambda: np_params)}
        if torch is not None:
            got["torch"] = (impls["torch"](), lambda: torch_weights(tnet))
        worst = 0.0
        for label, (loss, weights) in got.items():
            pairs = [("loss", loss, ref_loss)]
            pairs += [(f"update of weight {i}", w - w_start, d)
                      for i, (w, w_start, d) in enumerate(zip(weights(), w0, ref_delta))]
            e = expect_close(label, pairs, 2e-3)
            worst = e if label == "dlfast" else worst
        return f"1 step: loss, updates rel err {worst:.1e} (dlfast)"

    # per layer: forward 2, dW 2, dx 2 multiply-add flops per weight and sample; the first
    # layer's dx (the input's gradient) is never computed
    flops = 6.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    flops -= 2.0 * batch * sizes[0] * sizes[1]
    notes = f"{'sparse' if sparse else 'categorical'} CE, SGD lr {lr}"
    return Case("train", name, impls, check, flops=flops, notes=notes)


def step_gemms_case(name, sizes, batch):
    """The matrix products of one training step of the MLP `sizes`, back to back: per layer
    x@W, x^T@dz and (but for the first layer) dz@W^T, each a new array as in gemm_case. Beside
    the train step's line it shows how much of a step is products, which no fusion or lower
    overhead removes: with products only as fast as NumPy's, a step can beat NumPy's step by
    at most (NumPy's step time) / (the products' time)."""
    products = []  # (A, B, trans_a, trans_b): op(A) @ op(B), A and B stored as gemm_case's
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        x, w, dz = randn(batch, d_in), randn(d_in, d_out), randn(batch, d_out)
        products.append((x, w, False, False))
        products.append((x, dz, True, False))
        if i > 0:
            products.append((dz, w, False, True))

    def op(a, t):
        return a.T if t else a

    impls = {"dlfast": lambda: [ops.matmul(a, b, trans_a=ta, trans_b=tb)
                                for a, b, ta, tb in products],
             "numpy": lambda: [op(a, ta) @ op(b, tb) for a, b, ta, tb in products]}
    if torch is not None:
        tprod = [(op(torch.from_numpy(a), ta), op(torch.from_numpy(b), tb))
                 for a, b, ta, tb in products]
        impls["torch"] = lambda: [torch.mm(a, b) for a, b in tprod]

    def check():
        refs = [f64(op(a, ta)) @ f64(op(b, tb)) for a, b, ta, tb in products]
        err = expect_close("dlfast", [(f"product {i}", c, r) for i, (c, r) in
                                      enumerate(zip(impls["dlfast"](), refs))], GEMM_TOL)
        return f"{len(products)} products, rel err {err:.1e}"

    flops = sum(2.0 * op(a, ta).shape[0] * op(a, ta).shape[1] * op(b, tb).shape[1]
                for a, b, ta, tb in products)
    return Case("train", name, impls, check, flops=flops)


def train_cases():
    return [train_case("iris 4-32-16-3 train step b16", IRIS, 16, sparse=False),
            train_case("mlp 784-256-128-10 train step b64", MLP, 64, sparse=True),
            step_gemms_case("mlp 784-256-128-10 step's 8 GEMMs only b64", MLP, 64)]


def all_cases():
    return gemm_cases() + [dense_case()] + train_cases()


# --- where the iris step's microseconds go --------------------------------------------------

def iris_breakdown(time_fn):
    """Median time of each part of dlfast's train_on_batch for the iris network, by calling
    the model's internal steps (private names; None if they changed). time_fn(fn) -> seconds."""
    from dlfast import _core
    from dlfast.ops import LOSSES

    def desc(layer):
        return f"Dense {layer.input_shape[0]}->{layer.units} {layer.activation}"

    w0 = init_weights(IRIS)
    x = randn(16, IRIS[0])
    y = np.eye(IRIS[-1], dtype=np.float32)[RNG.integers(0, IRIS[-1], 16)]
    model = dlfast_model(IRIS, "categorical_crossentropy", 0.01)
    model.set_weights(w0)
    try:
        model.train_on_batch(x, y)
        code, fused = LOSSES[model.loss.kernel_name], model._head_fused
        out = model._head_forward(x, True)
        _, dout = _core.loss(code, y, out, fused, True)
        (grads, weights), opt = model._optimizer_arrays(), model.optimizer
        parts = {
            "train_on_batch (total)": lambda: model.train_on_batch(x, y),
            "input checks (check_input/_prepare_y)": lambda: model._prepare_y(
                y, model.check_input(x).shape[0]),
            "forward (_head_forward)": lambda: model._head_forward(x, True),
            "loss + grad (_core.loss)": lambda: _core.loss(code, y, out, fused, True),
            "backward (call_backward, writes grads)": lambda: model.call_backward(
                dout, need_dx=False, accumulate=False),
            "optimizer (optimizer.apply)": lambda: opt.apply(grads, weights),
        }
        h, last = x, len(model.layers) - 1
        for i, layer in enumerate(model.layers):   # per-layer forward, logits for the last
            act = 0 if i == last and fused else None
            parts[f"  forward {desc(layer)}"] = (
                lambda l=layer, h=h, a=act: l.call_forward(h, True, act=a))
            parts[f"  backward {desc(layer)}"] = None   # filled below, needs the cache
            h = layer.call_forward(h, True, act=act)
        dy = dout
        for layer in reversed(model.layers):
            need_dx = layer is not model.layers[0]
            parts[f"  backward {desc(layer)}"] = (
                lambda l=layer, d=dy, n=need_dx: l.call_backward(d, n, False))
            dy = layer.call_backward(dy, need_dx, False)
    except AttributeError as e:
        return {"unavailable": str(e)}
    return {k: time_fn(fn) for k, fn in parts.items()}
