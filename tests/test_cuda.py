"""The optional CUDA module. Without a GPU (or without the module) only the first block runs:
the package still imports and says why the GPU is unavailable. On a GPU machine every CUDA op
is checked against the CPU op (dlfast.ops, itself tested against float64 NumPy) on the shape
lists of the CPU kernel tests, DLPack passes arrays both ways without copies, and a short
training run on the GPU follows the CPU run's loss curve."""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import dlfast
from dlfast import cuda, ops
from test_kernels_conv import CASES as CONV_CASES
from test_kernels_lstm import SHAPES as LSTM_SHAPES
from test_kernels_pool import CASES as POOL_CASES

ROOT = pathlib.Path(__file__).resolve().parents[1]
gpu = pytest.mark.skipif(not cuda.is_available(), reason=f"no GPU: {cuda.reason()}")
no_gpu = pytest.mark.skipif(cuda.is_available(), reason="a GPU is present")


# --- everywhere -----------------------------------------------------------------------------

def test_import_and_availability_are_consistent():
    assert isinstance(cuda.is_available(), bool)
    assert cuda.device_count() >= 0
    assert cuda.is_available() == (cuda.device_count() > 0)
    info = dlfast.info()
    assert info["cuda_available"] == cuda.is_available()
    assert info["cuda_devices"] == cuda.device_count()
    assert info["cuda_reason"] == cuda.reason()


@no_gpu
def test_without_a_gpu_the_reason_is_given_and_device_work_refused():
    assert cuda.reason()  # a sentence saying why
    with pytest.raises(RuntimeError, match="no GPU available"):
        cuda.from_numpy(np.zeros(3, np.float32))
    with pytest.raises(RuntimeError, match="no GPU available"):
        cuda.ops.matmul(np.eye(2), np.eye(2))
    model = dlfast.Sequential([dlfast.layers.Input((3,)), dlfast.layers.Dense(2)])
    with pytest.raises(RuntimeError, match="no GPU available"):
        model.to("cuda")
    assert model.device == "cpu"


@pytest.mark.skipif(cuda._cuda is None, reason="built without the CUDA module")
def test_the_cuda_module_imports_and_names_its_architectures():
    import dlfast._cuda as ext
    build = ext.build_info()
    assert "90-real" in build["architectures"]
    count, why = ext.status()
    assert count == cuda.device_count() and why == cuda.reason()


def test_model_to_rejects_unknown_devices():
    model = dlfast.Sequential([dlfast.layers.Input((3,)), dlfast.layers.Dense(2)])
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        model.to("tpu")
    assert model.to("cpu") is model


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not on PATH")
def test_the_build_option_rejects_unknown_values(tmp_path):
    # CMakeLists.txt checks DLFAST_CUDA before it looks for Python, pybind11 or OpenMP (build
    # dependencies a test environment need not have), so plain cmake is enough to see it fail.
    cmake = shutil.which("cmake")
    assert cmake, "cmake is in the test extra (pyproject.toml) and must be on PATH"
    proc = subprocess.run([cmake, "-S", str(ROOT), "-B", str(tmp_path), "-DDLFAST_CUDA=maybe"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "DLFAST_CUDA must be AUTO, ON or OFF, got 'maybe'" in proc.stderr


# --- device arrays and DLPack ---------------------------------------------------------------

@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_numpy_round_trip(dtype):
    a = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * 3 - 7).astype(dtype)
    d = cuda.from_numpy(a)
    assert d.shape == (2, 3, 5) and d.dtype == np.dtype(dtype) and d.size == 30
    assert d.nbytes == a.nbytes and d.device == "cuda:0"
    np.testing.assert_array_equal(d.to_numpy(), a)
    np.testing.assert_array_equal(d.reshape(6, 5).to_numpy(), a.reshape(6, 5))
    np.testing.assert_array_equal(d.rows(1, 2).to_numpy(), a[1:2])
    d.upload(a[::-1].copy())
    np.testing.assert_array_equal(d.to_numpy(), a[::-1])
    with pytest.raises(ValueError, match="expected shape"):
        d.upload(a[:1])
    with pytest.raises(ValueError, match="cannot view"):
        d.reshape(7, 4)


@gpu
def test_arrays_free_their_memory():
    # 200 arrays of 256 MiB would not fit on any GPU if deleted arrays were not freed
    for _ in range(200):
        a = cuda.empty((64, 1024, 1024))
        del a
    cuda.synchronize()


@gpu
def test_dlpack_between_dlfast_arrays_shares_memory():
    a = cuda.from_numpy(np.arange(12, dtype=np.float32).reshape(3, 4))
    assert a.__dlpack_device__() == (2, 0)
    b = cuda.from_dlpack(a)
    assert b.data_ptr == a.data_ptr and b.shape == (3, 4)
    cuda.ops.sgd_update([b], [cuda.from_numpy(np.ones((3, 4), np.float32))], learning_rate=1.0)
    np.testing.assert_array_equal(a.to_numpy(), np.arange(12, dtype=np.float32).reshape(3, 4) - 1)
    with pytest.raises(TypeError, match="CPU"):
        cuda.from_dlpack(np.zeros(3, np.float32))


@gpu
def test_dlpack_with_torch_both_ways():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    a = cuda.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    t = torch.from_dlpack(a)
    assert t.is_cuda and t.data_ptr() == a.data_ptr
    assert torch.equal(t.cpu(), torch.arange(6, dtype=torch.float32).reshape(2, 3))
    t.mul_(2)  # the same memory
    np.testing.assert_array_equal(a.to_numpy(), 2 * np.arange(6).reshape(2, 3))
    u = torch.randn(5, 7, device="cuda")
    b = cuda.from_dlpack(u)
    assert b.data_ptr == u.data_ptr() and b.shape == (5, 7)
    np.testing.assert_array_equal(b.to_numpy(), u.cpu().numpy())
    del u  # the array keeps torch's memory alive
    assert b.to_numpy().shape == (5, 7)
    with pytest.raises(ValueError, match="C-contiguous"):
        cuda.from_dlpack(torch.randn(4, 6, device="cuda").t())


# --- ops against the CPU ops ----------------------------------------------------------------

def close(gpu_value, cpu_value, k=1, what=""):
    """fp32 tolerance growing with the reduction length k."""
    got = cuda.to_numpy(gpu_value)
    want = np.asarray(cpu_value)
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=3e-6 * np.sqrt(k) * scale,
                               err_msg=what)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@gpu
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 13, 5), (33, 65, 17), (129, 257, 300),
                                   (1100, 130, 67), (64, 64, 5000), (3, 2, 1100)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_gemm_matches_numpy(m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(m * 7 + n + k)
    a = rand(rng, *((k, m) if trans_a else (m, k)))
    b = rand(rng, *((n, k) if trans_b else (k, n)))
    want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
    close(cuda.ops.matmul(a, b, trans_a, trans_b), want, k)


@pytest.fixture
def tf32():
    """TF32 allowed for one test, then forbidden again whatever happens."""
    cuda.set_tf32(True)
    yield
    cuda.set_tf32(False)


def tf32_residual(a, b, want, k):
    """max |got - want| of a product with inputs rounded to TF32 (10-bit mantissa), in units
    of the bound sqrt(k) * 2^-10 * max|a| * max|b| (rounding both inputs moves each term by
    at most ~2^-10 of its size; the errors of k terms add up like a random walk)."""
    bound = np.sqrt(k) * 2.0 ** -10 * np.abs(a).max() * np.abs(b).max()
    return lambda got: np.abs(cuda.to_numpy(got) - want).max() / bound


@gpu
@pytest.mark.parametrize("m,n,k", [(7, 13, 5), (129, 257, 300), (1100, 130, 67),
                                   (64, 64, 5000)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_gemm_with_tf32_is_within_tf32_rounding_and_off_by_default(tf32, m, n, k, trans_a,
                                                                    trans_b):
    rng = np.random.default_rng(m + n * 3 + k)
    a = rand(rng, *((k, m) if trans_a else (m, k)))
    b = rand(rng, *((n, k) if trans_b else (k, n)))
    opa, opb = (a.T if trans_a else a), (b.T if trans_b else b)
    want = opa.astype(np.float64) @ opb
    err = tf32_residual(opa, opb, want, k)
    got = cuda.ops.matmul(a, b, trans_a, trans_b)
    assert err(got) < 1.0
    cuda.set_tf32(False)  # full float32 again: far more accurate than the TF32 bound
    close(cuda.ops.matmul(a, b, trans_a, trans_b), want, k)
    cuda.set_tf32(True)
    if k >= 64 and cuda._cuda.tf32_active():  # a GPU with TF32 tensor cores
        assert err(got) > 1e-3  # TF32 really ran: its rounding is visible


@gpu
def test_conv_with_tf32_stays_close_to_the_cpu(tf32):
    rng = np.random.default_rng(7)
    x, w, b = rand(rng, 8, 15, 15, 32), rand(rng, 3, 3, 32, 64) * 0.1, rand(rng, 64)
    want = ops.conv2d_forward(x, w, b)
    got = cuda.to_numpy(cuda.ops.conv2d_forward(x, w, b))
    assert np.abs(got - want).max() < 3e-3 * np.abs(want).max()


@gpu
@pytest.mark.parametrize("shape", [(1,), (7, 3), (33, 5, 5, 8), (1000, 129)])
def test_add_matches_numpy_also_in_place(shape):
    rng = np.random.default_rng(len(shape))
    a, b = rand(rng, *shape), rand(rng, *shape)
    da, db, out = cuda.from_numpy(a), cuda.from_numpy(b), cuda.empty(shape)
    cuda._cuda.add(out, da, db)
    np.testing.assert_array_equal(out.to_numpy(), a + b)
    cuda._cuda.add(da, da, db)  # out is a: the Add layer's running sum
    np.testing.assert_array_equal(da.to_numpy(), a + b)
    with pytest.raises(ValueError, match="add: argument 'b' must have shape"):
        cuda._cuda.add(out, da, cuda.empty((shape[0] + 1,) + shape[1:]))


@gpu
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("n,d,u", [(1, 3, 2), (31, 17, 10), (200, 129, 65)])
def test_dense_matches_cpu(activation, n, d, u):
    rng = np.random.default_rng(n + d + u)
    x, w, b, dy = rand(rng, n, d), rand(rng, d, u), rand(rng, u), rand(rng, n, u)
    close(cuda.ops.dense_forward(x, w, b, activation), ops.dense_forward(x, w, b, activation), d)
    for g, c in zip(cuda.ops.dense_backward(dy, x, w, b, activation),
                    ops.dense_backward(dy, x, w, b, activation)):
        close(g, c, max(n, u))


@gpu
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (37, 100), (4, 3, 70)])
def test_activations_match_cpu(activation, shape):
    rng = np.random.default_rng(len(shape))
    x, dy = rand(rng, *shape) * 3, rand(rng, *shape)
    y = ops.activation_forward(x, activation)
    close(cuda.ops.activation_forward(x, activation), y, 1, "forward")
    close(cuda.ops.activation_backward(dy, y, activation),
          ops.activation_backward(dy, y, activation), shape[-1], "backward")


@gpu
@pytest.mark.parametrize("loss", ["mse", "binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("n,c", [(1, 1), (7, 10), (64, 100)])
def test_losses_match_cpu(loss, from_logits, n, c):
    if loss == "mse" and from_logits:
        pytest.skip("mse has no from_logits")
    rng = np.random.default_rng(n * c)
    logits = rand(rng, n, c) * 2
    if loss == "sparse_categorical_crossentropy":
        y_true = rng.integers(0, c, n)
    elif loss == "categorical_crossentropy":
        y_true = np.eye(c, dtype=np.float32)[rng.integers(0, c, n)]
    else:
        y_true = rng.random((n, c)).astype(np.float32)
    y_pred = logits if from_logits or loss == "mse" else (
        ops.softmax_forward(logits) if "categorical" in loss else ops.sigmoid_forward(logits))
    want_loss, want_grad = ops.loss_value_and_grad(loss, y_true, y_pred, from_logits)
    got_loss, got_grad = cuda.ops.loss_value_and_grad(loss, y_true, y_pred, from_logits)
    assert got_loss == pytest.approx(want_loss, rel=1e-5, abs=1e-6)
    close(got_grad, want_grad, c)


@gpu
def test_out_of_range_labels_give_nan_not_a_crash():
    loss, grad = cuda.ops.loss_value_and_grad("sparse_categorical_crossentropy",
                                              cuda.from_numpy(np.array([0, 5], np.int64)),
                                              np.zeros((2, 3), np.float32), True)
    assert np.isnan(loss) and np.isnan(grad.to_numpy()[1]).all()


@gpu
@pytest.mark.parametrize("c", [1, 3, 40])
def test_count_correct_matches_numpy(c):
    rng = np.random.default_rng(c)
    n = 77
    y = rand(rng, n, c)
    y[3] = 0  # ties: the first maximum wins, as argmax
    ext = cuda._cuda
    count = cuda.zeros((1,), "int64")
    if c == 1:
        t = (rng.random((n, 1)) > 0.5).astype(np.float32)
        ext.count_correct(count, cuda.from_numpy(y), cuda.from_numpy(t), None, 0.0)
        want = np.count_nonzero((y[:, 0] > 0) == (t[:, 0] > 0.5))
    else:
        labels = rng.integers(0, c, n)
        labels[:20] = y[:20].argmax(1)
        ext.count_correct(count, cuda.from_numpy(y), None, cuda.from_numpy(labels), 0.0)
        want = np.count_nonzero(y.argmax(1) == labels)
        onehot = np.eye(c, dtype=np.float32)[labels]
        ext.count_correct(count, cuda.from_numpy(y), cuda.from_numpy(onehot), None, 0.0)
        want *= 2
    assert int(count.to_numpy()[0]) == want


@gpu
@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 0.0),
                                                  (0.9, True, 0.01), (0.0, False, 0.1)])
def test_sgd_matches_cpu(momentum, nesterov, wd):
    rng = np.random.default_rng(3)
    w, g, v = rand(rng, 1001), rand(rng, 1001), rand(rng, 1001)
    dw, dg, dv = cuda.from_numpy(w), cuda.from_numpy(g), cuda.from_numpy(v)
    for _ in range(3):
        ops.sgd_update([w], [g], [v] if momentum else None, 0.1, momentum, nesterov, wd)
        cuda.ops.sgd_update([dw], [dg], [dv] if momentum else None, 0.1, momentum, nesterov, wd)
    close(dw, w)
    if momentum:
        close(dv, v)


@gpu
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_matches_the_keras_formula(wd):
    rng = np.random.default_rng(4)
    w, g = rand(rng, 517).astype(np.float64), rand(rng, 517).astype(np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    dw, dm, dv, dg = (cuda.from_numpy(a.astype(np.float32)) for a in (w, m, v, g))
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    for t in range(1, 4):
        w = w - lr * wd * w  # Keras 3's decoupled weight decay, before the step
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
        cuda.ops.adam_update(dw, dm, dv, dg, lr, b1, b2, eps, t, weight_decay=wd)
    close(dw, w)
    close(dm, m)
    close(dv, v)


@gpu
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"-{c[8]}")
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_conv2d_matches_cpu(case, activation):
    n, h, w, c, r, s, k, strides, padding, dilation = case
    rng = np.random.default_rng(n + h + w + c + k)
    x, kernel, bias = rand(rng, n, h, w, c), rand(rng, r, s, c, k), rand(rng, k)
    args = dict(strides=strides, padding=padding, dilation_rate=dilation, activation=activation)
    y = ops.conv2d_forward(x, kernel, bias, **args)
    close(cuda.ops.conv2d_forward(x, kernel, bias, **args), y, r * s * c, "forward")
    dy = rand(rng, *y.shape)
    names = ("dx", "dkernel", "dbias")
    for name, g, want in zip(names, cuda.ops.conv2d_backward(dy, x, kernel, bias, **args),
                             ops.conv2d_backward(dy, x, kernel, bias, **args)):
        close(g, want, n * y.shape[1] * y.shape[2] * k, name)


@gpu
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-{c[3]}")
def test_pooling_matches_cpu(case):
    shape, pool, strides, padding = case
    rng = np.random.default_rng(sum(shape))
    x = rand(rng, *shape)
    for kind in ("maxpool2d", "avgpool2d"):
        y = getattr(ops, f"{kind}_forward")(x, pool, strides, padding)
        close(getattr(cuda.ops, f"{kind}_forward")(x, pool, strides, padding), y, 1, kind)
        dy = rand(rng, *y.shape)
        close(getattr(cuda.ops, f"{kind}_backward")(dy, x, pool, strides, padding),
              getattr(ops, f"{kind}_backward")(dy, x, pool, strides, padding), 9, kind + " dx")
    dy = rand(rng, shape[0], shape[3])
    close(cuda.ops.global_avgpool2d_forward(x), ops.global_avgpool2d_forward(x), 1)
    close(cuda.ops.global_avgpool2d_backward(dy, x), ops.global_avgpool2d_backward(dy, x), 1)


@gpu
@pytest.mark.parametrize("shape", LSTM_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_cpu(shape, with_state):
    n, steps, d, u = shape
    rng = np.random.default_rng(n + steps + d + u)
    x = rand(rng, n, steps, d)
    kernel, rec, bias = rand(rng, d, 4 * u) * 0.5, rand(rng, u, 4 * u) * 0.5, rand(rng, 4 * u)
    h0 = c0 = dh_last = dc_last = None
    if with_state:
        h0, c0, dh_last, dc_last = (rand(rng, n, u) for _ in range(4))
    for got, want in zip(cuda.ops.lstm_forward(x, kernel, rec, bias, h0, c0),
                         ops.lstm_forward(x, kernel, rec, bias, h0, c0)):
        close(got, want, d + u, "forward")
    dh = rand(rng, n, steps, u)
    names = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0")
    for name, got, want in zip(names,
                               cuda.ops.lstm_backward(dh, x, kernel, rec, bias, h0, c0, dh_last,
                                                      dc_last),
                               ops.lstm_backward(dh, x, kernel, rec, bias, h0, c0, dh_last,
                                                 dc_last)):
        if want is None:
            assert got is None, name
            continue
        close(got, want, n * steps * 4 * u, name)


@gpu
def test_bad_arguments_raise_before_any_launch():
    ext = cuda._cuda
    a, b = cuda.zeros((3, 4)), cuda.zeros((5, 6))
    with pytest.raises(ValueError, match="argument 'B' must have shape"):
        ext.gemm(cuda.zeros((3, 6)), a, b, None, False, False, False, 0)
    with pytest.raises(TypeError, match="must be a dlfast.cuda.Array"):
        ext.gemm(cuda.zeros((3, 6)), np.zeros((3, 4), np.float32), b, None, False, False, False, 0)
    with pytest.raises(TypeError, match="must be float32"):
        ext.activation_forward(cuda.zeros((3,), "float64"), cuda.zeros((3,), "float64"), 1)
    with pytest.raises(ValueError, match="argument 'C' must have shape"):
        ext.gemm(cuda.zeros((3, 5)), a, cuda.zeros((4, 6)), None, False, False, False, 0)
    with pytest.raises(ValueError, match="kernel in-channels"):
        cuda.ops.conv2d_forward(cuda.zeros((1, 5, 5, 3)), cuda.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match="larger than the input"):
        cuda.ops.conv2d_forward(cuda.zeros((1, 2, 2, 3)), cuda.zeros((3, 3, 3, 4)))


# --- training on the GPU --------------------------------------------------------------------

L = dlfast.layers


def _models():
    return {
        "mlp": (lambda: [L.Input((12,)), L.Dense(32, activation="relu"), L.Dense(16),
                         L.ReLU(), L.Dense(5, activation="softmax")], (12,)),
        "cnn": (lambda: [L.Input((12, 12, 3)), L.Conv2D(8, 3, activation="relu"),
                         L.MaxPooling2D(2), L.Conv2D(8, 3, padding="same", strides=2,
                                                     activation="relu"),
                         L.AveragePooling2D(2, padding="same"), L.Flatten(),
                         L.Dense(5, activation="softmax")], (12, 12, 3)),
        "gap": (lambda: [L.Input((9, 9, 2)), L.Conv2D(6, 3, activation="tanh"),
                         L.GlobalAveragePooling2D(), L.Dense(5), L.Activation("softmax")],
                (9, 9, 2)),
        "lstm": (lambda: [L.Input((7, 4)), L.LSTM(16, return_sequences=True), L.LSTM(8),
                          L.Dense(5, activation="softmax")], (7, 4)),
        "residual": (_residual_mlp, (12,)),
        "residual_cnn": (_residual_cnn, (8, 8, 3)),
    }


def _residual_mlp():
    """Functional: two residual joins; h feeds a Dense and an Add (its gradient is a sum),
    and the second Add hands one gradient array to both of its inputs."""
    x = L.Input((12,))
    h = L.Dense(16, activation="relu")(x)
    s = L.ReLU()(L.Add()([h, L.Dense(16)(L.Dense(16, activation="relu")(h))]))
    t = L.Add()([s, L.Dense(16, activation="tanh")(s)])
    return dlfast.Model(x, L.Dense(5, activation="softmax")(t))


def _residual_cnn():
    x = L.Input((8, 8, 3))
    c = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    s = L.Add()([c, L.Conv2D(4, 3, padding="same")(c)])
    f = L.Flatten()(L.MaxPooling2D(2)(s))
    return dlfast.Model(x, L.Dense(5, activation="softmax")(f))


def _model(build):
    layers = build()
    return layers if isinstance(layers, dlfast.Model) else dlfast.Sequential(layers)


def _sgd():
    return dlfast.optimizers.SGD(0.05, momentum=0.9)


def _adam():
    """Adam with every option the GPU path takes: decoupled weight decay and a schedule."""
    lr = dlfast.optimizers.schedules.ExponentialDecay(0.005, decay_steps=3, decay_rate=0.8)
    return dlfast.optimizers.Adam(lr, beta_1=0.85, beta_2=0.99, weight_decay=0.02)


def _pair(kind, optimizer=_sgd):
    build, shape = _models()[kind]
    dlfast.manual_seed(5)
    cpu_model = _model(build)
    gpu_model = _model(build)
    gpu_model.build(shape)
    cpu_model.build(shape)
    gpu_model.set_weights(cpu_model.get_weights())
    for m in (cpu_model, gpu_model):
        m.compile(optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((70,) + shape).astype(np.float32)
    y = rng.integers(0, 5, 70)
    return cpu_model, gpu_model.to("cuda"), x, y


@gpu
@pytest.mark.parametrize("optimizer", [_sgd, _adam], ids=["sgd", "adam"])
@pytest.mark.parametrize("kind", ["mlp", "cnn", "gap", "lstm", "residual", "residual_cnn"])
def test_training_on_the_gpu_follows_the_cpu_loss_curve(kind, optimizer):
    cpu_model, gpu_model, x, y = _pair(kind, optimizer)
    assert gpu_model.device == "cuda"
    cpu_losses = [cpu_model.train_on_batch(x[:32], y[:32]) for _ in range(6)]
    gpu_losses = [gpu_model.train_on_batch(x[:32], y[:32]) for _ in range(6)]
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=2e-3)
    assert gpu_losses[-1] < gpu_losses[0]
    hc = cpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    hg = gpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hg.history["loss"], hc.history["loss"], rtol=3e-3)
    np.testing.assert_allclose(hg.history["accuracy"], hc.history["accuracy"], atol=1.5 / 70)
    np.testing.assert_allclose(gpu_model.predict(x, batch_size=25), cpu_model.predict(x),
                               rtol=1e-2, atol=1e-4)
    ev_c = cpu_model.evaluate(x, y, return_dict=True)
    ev_g = gpu_model.evaluate(x, y, batch_size=9, return_dict=True)
    assert ev_g["loss"] == pytest.approx(ev_c["loss"], rel=3e-3)
    for wg, wc in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_allclose(wg, wc, rtol=1e-2, atol=1e-4)
    gpu_model.to("cpu")  # back on the host, training goes on from the same state
    assert gpu_model.device == "cpu"
    assert gpu_model.train_on_batch(x[:32], y[:32]) == pytest.approx(
        cpu_model.train_on_batch(x[:32], y[:32]), rel=3e-3)


@gpu
def test_unsupported_layers_and_optimizers_are_named():
    model = dlfast.Sequential([L.Input((4,)), L.Dense(3), L.Dropout(0.5), L.Dense(2)])
    with pytest.raises(NotImplementedError, match="Dropout"):
        model.to("cuda")

    class Plain(dlfast.optimizers.Optimizer):
        def __init__(self):
            super().__init__(0.1, "Plain")

    model = dlfast.Sequential([L.Input((4,)), L.Dense(2)])
    model.compile(Plain(), "mse")
    model.to("cuda")
    with pytest.raises(NotImplementedError, match="Plain"):
        model.train_on_batch(np.zeros((3, 4), np.float32), np.zeros((3, 2), np.float32))


# --- the Python side of the GPU path, on a NumPy stand-in (runs everywhere) ----------------

def test_tf32_is_off_by_default_and_takes_only_booleans():
    assert cuda.tf32_enabled() is False
    if cuda._cuda is not None:
        assert cuda._cuda.allow_tf32() is False
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="set_tf32: expected True or False"):
            cuda.set_tf32(bad)
    assert cuda.tf32_enabled() is False


def test_set_tf32_reaches_the_module(standin):
    try:
        cuda.set_tf32(True)
        assert cuda.tf32_enabled() and standin.allow_tf32()
    finally:
        cuda.set_tf32(False)
    assert not cuda.tf32_enabled() and not standin.allow_tf32()


@pytest.mark.parametrize("kind", ["mlp", "cnn", "gap", "lstm", "residual", "residual_cnn"])
def test_model_to_cuda_plumbing_on_the_standin(standin, kind):
    cpu_model, gpu_model, x, y = _pair(kind)
    assert isinstance(gpu_model._runner.flat_w, standin.Array)
    cpu_losses = [cpu_model.train_on_batch(x[:32], y[:32]) for _ in range(3)]
    gpu_losses = [gpu_model.train_on_batch(x[:32], y[:32]) for _ in range(3)]
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-6)
    hc = cpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                       validation_data=(x[:20], y[:20]))
    hg = gpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                       validation_data=(x[:20], y[:20]))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(hg.history[key], hc.history[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(gpu_model.predict(x, batch_size=25), cpu_model.predict(x),
                               rtol=1e-5, atol=1e-6)
    for wg, wc in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_allclose(wg, wc, rtol=1e-5, atol=1e-6)
    gpu_model.to("cpu")
    assert gpu_model.train_on_batch(x[:32], y[:32]) == pytest.approx(
        cpu_model.train_on_batch(x[:32], y[:32]), rel=1e-5)


def test_device_ops_plumbing_on_the_standin(standin):
    rng = np.random.default_rng(0)
    x, k, b = rand(rng, 2, 7, 6, 3), rand(rng, 3, 3, 3, 4), rand(rng, 4)
    args = dict(strides=2, padding="same", dilation_rate=1, activation="relu")
    y = ops.conv2d_forward(x, k, b, **args)
    close(cuda.ops.conv2d_forward(x, k, b, **args), y)
    dy = rand(rng, *y.shape)
    for got, want in zip(cuda.ops.conv2d_backward(dy, x, k, b, **args),
                         ops.conv2d_backward(dy, x, k, b, **args)):
        close(got, want)
    dp = rand(rng, *ops.avgpool2d_forward(x, 3, 2, "same").shape)
    close(cuda.ops.avgpool2d_backward(dp, x, 3, 2, "same"), ops.avgpool2d_backward(dp, x, 3, 2,
                                                                                   "same"))
    xs = rand(rng, 3, 5, 4)
    kernel, rec, dh_last = rand(rng, 4, 8), rand(rng, 2, 8), rand(rng, 3, 2)
    for got, want in zip(cuda.ops.lstm_backward(None, xs, kernel, rec, dh_last=dh_last),
                         ops.lstm_backward(None, xs, kernel, rec, dh_last=dh_last)):
        if want is not None:
            close(got, want)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "lstm"])
def test_adam_on_the_standin_equals_the_cpu_run(standin, kind, tmp_path):
    """Adam (weight decay, schedule) on the stand-in: the same kernels as the CPU run, so the
    same numbers to the bit: losses, fit history with validation, weights, the m and v slots
    as save() writes them, and after to('cpu') training goes on as if never interrupted."""
    from safetensors.numpy import load_file
    cpu_model, gpu_model, x, y = _pair(kind, _adam)
    cpu_losses = [cpu_model.train_on_batch(x[:32], y[:32]) for _ in range(3)]
    gpu_losses = [gpu_model.train_on_batch(x[:32], y[:32]) for _ in range(3)]
    assert gpu_losses == cpu_losses
    assert cpu_losses[-1] < cpu_losses[0]
    hc = cpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                       validation_data=(x[:20], y[:20]))
    hg = gpu_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                       validation_data=(x[:20], y[:20]))
    assert hg.history == hc.history
    for wg, wc in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_array_equal(wg, wc)
    cpu_model.save(tmp_path / "cpu.dlfast")
    gpu_model.save(tmp_path / "gpu.dlfast")
    saved_c, saved_g = load_file(tmp_path / "cpu.dlfast"), load_file(tmp_path / "gpu.dlfast")
    assert sorted(saved_g) == sorted(saved_c)
    slots = [k for k in saved_c if k.endswith(("/momentum", "/velocity"))]
    # one m and one v per trainable weight (the file's per-weight layout, format version 2)
    assert len(slots) == 2 * len(cpu_model.trainable_weights)
    assert all(np.any(saved_c[k] != 0) for k in slots)
    for key in saved_c:
        np.testing.assert_array_equal(saved_g[key], saved_c[key], err_msg=key)
    gpu_model.to("cpu")
    for _ in range(3):
        assert gpu_model.train_on_batch(x[32:64], y[32:64]) == \
            cpu_model.train_on_batch(x[32:64], y[32:64])
    for wg, wc in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_array_equal(wg, wc)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_trainable_flipped_on_the_standin_equals_the_cpu_run(standin, kind):
    """A layer frozen and unfrozen between steps while the model is on the device: the runner
    re-places the trainable weights at the next step (state kept), as the CPU honours it."""
    cpu_model, gpu_model, x, y = _pair(kind, _adam)
    for step in range(6):
        frozen = step in (2, 3)
        for m in (cpu_model, gpu_model):
            m.layers[0].trainable = not frozen
        before = gpu_model.get_weights()[0]
        assert gpu_model.train_on_batch(x[:32], y[:32]) == \
            cpu_model.train_on_batch(x[:32], y[:32])
        assert np.array_equal(gpu_model.get_weights()[0], before) == frozen, step
    for wg, wc in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_array_equal(wg, wc)
