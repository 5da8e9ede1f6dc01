"""GPU benchmarks (bench/gpu_check.sh runs them on a device machine): dlfast's CUDA kernels
against PyTorch CUDA (cuBLAS / cuDNN), each checked before it is timed. Rows:

  sgemm 4096^3            dlfast.cuda GEMM vs torch.matmul (cuBLAS, TF32 off)   target >= 0.7x
  sgemm 4096^3 tf32       the same with TF32 tensor cores allowed on both sides (no target)
  cifar train step b64    model.to('cuda').train_on_batch vs PyTorch eager SGD    target >= 1.0x
  lstm(128) train step b64                                                         target >= 1.0x

Both sides of a training step read the loss back (train_on_batch returns it; torch calls
.item()), so each step ends with one host synchronisation. Prints a table last."""

import sys
import time

import numpy as np

import dlfast
from dlfast import cuda

sys.path.insert(0, __import__("os").path.dirname(__file__))


def timeit(fn, sync, repeats=20, warmup=3):
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples))


def sgemm_row(torch, tf32=False):
    """4096^3 against torch.matmul with the same TF32 setting on both sides; the result is
    checked against float64 first (TF32 rounds inputs to 2^-11: a looser bound)."""
    n = 4096
    name = "sgemm 4096^3" + (" tf32" if tf32 else "")
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    da, db = cuda.from_numpy(a), cuda.from_numpy(b)
    dc = cuda.empty((n, n))
    ext = cuda._cuda

    def ours():
        ext.gemm(dc, da, db, None, False, False, False, 0)

    ta, tb = torch.from_dlpack(da), torch.from_dlpack(db)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    cuda.set_tf32(tf32)
    try:
        ours()
        rows = slice(0, 64)  # a float64 check of 64 rows is enough and fast on the host
        want = a[rows].astype(np.float64) @ b
        err = np.abs(dc.to_numpy()[rows] - want).max() / np.abs(want).max()
        if err > (2e-3 if tf32 else 1e-4):
            return (name, None, None, 0.0 if tf32 else 0.7, f"WRONG (max rel err {err:.1e})")
        t_ours = timeit(ours, cuda.synchronize)
        t_torch = timeit(lambda: ta @ tb, torch.cuda.synchronize)
    finally:
        cuda.set_tf32(False)
        torch.backends.cuda.matmul.allow_tf32 = False
    gflops = 2 * n ** 3 / t_ours / 1e9
    return (name, t_ours, t_torch, 0.7 if not tf32 else 0.0,
            f"{gflops:,.0f} GFLOP/s, max rel err {err:.1e}")


def sgemm_tf32_row(torch):
    return sgemm_row(torch, tf32=True)


def train_row(name, model, net, x, tx, labels, torch, lr=0.01):
    """model: compiled with SGD(lr) and a sparse cross-entropy, x its batch; net: the same
    network in PyTorch, tx the batch as its CUDA input."""
    model.to("cuda")
    ty = torch.from_numpy(labels).cuda()
    net = net.cuda()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def torch_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(tx), ty)
        loss.backward()
        opt.step()
        return loss.item()

    l_ours = [model.train_on_batch(x, labels) for _ in range(3)]
    l_torch = [torch_step() for _ in range(3)]
    if not np.allclose(l_ours, l_torch, rtol=2e-3):
        return (name, None, None, 1.0, f"WRONG (losses {l_ours} vs {l_torch})")
    t_ours = timeit(lambda: model.train_on_batch(x, labels), cuda.synchronize)
    t_torch = timeit(torch_step, torch.cuda.synchronize)
    return (name, t_ours, t_torch, 1.0, "")


def cifar_row(torch):
    from cases_conv import cifar_weights, dlfast_cifar, torch_cifar
    w = cifar_weights()
    rng = np.random.default_rng(1)
    x = rng.random((64, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    model = dlfast_cifar()  # compiled: SGD(0.01), sparse cross-entropy
    model.set_weights(w)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().cuda()
    return train_row("cifar train step b64", model, torch_cifar(w, "nchw"), x, tx, labels, torch)


def lstm_row(torch):
    from dlfast.layers import LSTM, Dense, Input
    steps, features, units = 32, 32, 128
    dlfast.manual_seed(0)
    model = dlfast.Sequential([Input((steps, features)), LSTM(units), Dense(10)])
    model.compile(dlfast.optimizers.SGD(0.01),
                  dlfast.losses.SparseCategoricalCrossentropy(from_logits=True))
    kernel, rec, bias, dk, db = model.get_weights()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(features, units, batch_first=True)
            self.fc = nn.Linear(units, 10)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    net = Net()
    with torch.no_grad():  # Keras gates i, f, c~, o = torch's i, f, g, o; torch has two biases
        net.lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T))
        net.lstm.weight_hh_l0.copy_(torch.from_numpy(rec.T))
        net.lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
        net.lstm.bias_hh_l0.zero_()
        net.fc.weight.copy_(torch.from_numpy(dk.T))
        net.fc.bias.copy_(torch.from_numpy(db))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, steps, features)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    return train_row(f"lstm({units}) train step b64", model, net, x, torch.from_numpy(x).cuda(),
                     labels, torch)


def main():
    if not cuda.is_available():
        print(f"gpu_bench: no GPU: {cuda.reason()}", file=sys.stderr)
        return 2
    import torch
    if not torch.cuda.is_available():
        print("gpu_bench: this PyTorch has no CUDA; install a CUDA build to compare",
              file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name(0)}; dlfast {dlfast.__version__}; "
          f"torch {torch.__version__}", flush=True)
    rows = []
    for make in (sgemm_row, sgemm_tf32_row, cifar_row, lstm_row):
        try:
            rows.append(make(torch))
        except Exception as error:  # one failing row must not hide the others
            rows.append((make.__name__, None, None, 0, f"ERROR {type(error).__name__}: {error}"))
        print("done:", rows[-1][0], flush=True)
    print(f"\n{'case':28} {'dlfast ms':>10} {'torch ms':>10} {'speedup':>8} {'target':>7}  note")
    failed = False
    for name, ours, theirs, target, note in rows:
        if ours is None:
            failed = True
            print(f"{name:28} {'-':>10} {'-':>10} {'-':>8} {target:>6.1f}x  {note}")
            continue
        speed = theirs / ours
        verdict = ("MET" if speed >= target else "below target") if target else "(no target)"
        shown = f"{target:>6.1f}x" if target else f"{'-':>7}"
        print(f"{name:28} {ours * 1e3:10.3f} {theirs * 1e3:10.3f} {speed:7.2f}x {shown}  "
              f"{verdict} {note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
