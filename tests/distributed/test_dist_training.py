"""2 ranks at batch_size=32 train exactly as 1 process at batch_size=64 (issue 17): same
weights and same loss history after 20 steps, from different initial weights per rank made
equal by BroadcastWeights. The 1-process reference runs inside each rank (no MPI call)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import dlfast
from .dist_models import OPTIMIZERS, build, data, relative_error

TOL = 1e-5  # relative, float32
LOSS = "sparse_categorical_crossentropy"


def reference(kind, make_opt, x, y, **fit):
    """1 process at batch 64, rank 0's initial weights (seed 0)."""
    ref = build(kind, 0)
    ref.compile(make_opt(), LOSS, ["accuracy"])
    history = ref.fit(x, y, batch_size=64, shuffle=False, verbose=0, **fit)
    return ref, history.history


def distributed(dist, kind, make_opt, x, y, **fit):
    """2 ranks at batch 32; rank 1 starts from other weights, the broadcast makes them rank
    0's."""
    model = build(kind, 0 if dist.rank() == 0 else 1000 + dist.rank())
    model.compile(dist.DistributedOptimizer(make_opt()), LOSS, ["accuracy"])
    if dist.rank() != 0:
        assert relative_error(build(kind, 0).get_weights()[0], model.get_weights()[0]) > 0.1
    history = model.fit(x, y, batch_size=32, shuffle=False, verbose=0,
                        callbacks=[dist.callbacks.BroadcastWeights(root=0)], **fit)
    return model, history.history


def assert_same_training(ref, h_ref, model, h):
    for a, b, name in zip(ref.get_weights(), model.get_weights(), ref.weight_names):
        assert relative_error(a, b) <= TOL, (name, relative_error(a, b))
    assert h.keys() == h_ref.keys()
    for key in h_ref:
        np.testing.assert_allclose(h[key], h_ref[key], rtol=TOL, err_msg=key)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("opt", ["sgd_momentum", "adam"])
def test_two_ranks_at_32_are_one_process_at_64(dist, kind, opt):
    # 600 samples: 9 full batches of 64 and one of 24 (12 + 12 on the ranks) per epoch;
    # 2 epochs: 20 steps, with the last partial batch twice
    x, y = data(kind)
    ref, h_ref = reference(kind, OPTIMIZERS[opt], x, y, epochs=2)
    model, h = distributed(dist, kind, OPTIMIZERS[opt], x, y, epochs=2)
    assert ref.optimizer.iterations == model.optimizer.iterations == 20
    assert model.optimizer.allreduce_calls == 20  # one per step
    assert_same_training(ref, h_ref, model, h)
    everyone = dist._mpi.comm().allgather(h)
    assert everyone[0] == everyone[1]  # every rank returns the same history, exactly


def test_sgdg2_averages_its_probe_gradient_too(dist):
    x, y = data("dense")
    ref, h_ref = reference("dense", OPTIMIZERS["sgdg2"], x, y, epochs=2)
    model, h = distributed(dist, "dense", OPTIMIZERS["sgdg2"], x, y, epochs=2)
    assert model.optimizer.allreduce_calls == 40  # the step's gradient and the probe's
    assert_same_training(ref, h_ref, model, h)
    assert model.optimizer.step_size == pytest.approx(ref.optimizer.step_size, rel=TOL)


def test_an_odd_sample_count_leaves_the_last_position_out(dist):
    # 601 samples: each rank takes 300 (positions 0..599); the reference trains on 600
    x, y = data("dense", n=601)
    ref, h_ref = reference("dense", OPTIMIZERS["adam"], x[:600], y[:600], epochs=2)
    model, h = distributed(dist, "dense", OPTIMIZERS["adam"], x, y, epochs=2)
    assert_same_training(ref, h_ref, model, h)


def test_validation_is_evaluated_on_shards_and_averaged(dist):
    x, y = data("dense")
    xv, yv = data("dense", n=101, seed=1)  # 51 + 50 on the ranks: a weighted average
    ref, h_ref = reference("dense", OPTIMIZERS["adam"], x, y, epochs=2, validation_data=(xv, yv))
    model, h = distributed(dist, "dense", OPTIMIZERS["adam"], x, y, epochs=2,
                           validation_data=(xv, yv))
    assert "val_loss" in h and "val_accuracy" in h
    assert_same_training(ref, h_ref, model, h)


def test_shuffled_fit_uses_rank_0s_order(dist):
    # different seeds per rank: the order is rank 0's, so rank 0's 1-process run is matched
    x, y = data("dense", n=640)
    dlfast.manual_seed(5)
    ref = build("dense", 0)
    ref.compile(OPTIMIZERS["sgd_momentum"](), LOSS)
    dlfast.manual_seed(5)
    order = dlfast._random.generator().permutation(640)
    ref.fit(x[order], y[order], batch_size=64, epochs=1, shuffle=False, verbose=0)
    model = build("dense", 0)
    model.compile(dist.DistributedOptimizer(OPTIMIZERS["sgd_momentum"]()), LOSS)
    dlfast.manual_seed(5 if dist.rank() == 0 else 77)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    for a, b in zip(ref.get_weights(), model.get_weights()):
        assert relative_error(a, b) <= TOL


def batchnorm(model):
    return next(la for la in model.layers if isinstance(la, dlfast.layers.BatchNormalization))


def test_batchnorm_moving_statistics_are_averaged_at_epoch_end(dist):
    x, y = data("dense")
    model = build("dense", 0, batchnorm=True)
    model.compile(dist.DistributedOptimizer(OPTIMIZERS["adam"]()), LOSS)
    seen = []

    class Moving(dlfast.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):  # this rank's statistics, unaveraged
            bn = batchnorm(self.model)
            seen[:] = [w.copy() for w in bn.weights[2:]]

    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[Moving()])
    bn = batchnorm(model)
    everyone = dist._mpi.comm().allgather([w.copy() for w in bn.weights[2:]])
    local = dist._mpi.comm().allgather(seen)
    for i in range(2):
        np.testing.assert_array_equal(everyone[0][i], everyone[1][i])
        assert relative_error(local[0][i], local[1][i]) > 1e-4  # the ranks' own ones differ
        np.testing.assert_allclose(everyone[0][i], (local[0][i] + local[1][i]) / 2, rtol=1e-6)


def test_only_rank_0_prints_and_writes_checkpoints(dist, tmp_path, capsys):
    x, y = data("dense", n=128)
    model = build("dense", 0)
    model.compile(dist.DistributedOptimizer(OPTIMIZERS["adam"]()), LOSS)
    cbs = [dlfast.callbacks.ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.dlfast"),
                                            monitor="loss"),
           dlfast.callbacks.CSVLogger(str(tmp_path / "log.csv"))]
    model.fit(x, y, batch_size=32, epochs=2, verbose=1, callbacks=cbs)
    out = capsys.readouterr().out
    files = sorted(os.listdir(tmp_path))
    if dist.rank() == 0:
        assert "Epoch 2/2" in out
        assert files == ["ckpt-1.dlfast", "ckpt-2.dlfast", "log.csv"]
    else:
        assert out == "" and files == []


def test_a_saved_model_reloads_without_mpi(dist, tmp_path):
    x, y = data("dense", n=128)
    model = build("dense", 0)
    model.compile(dist.DistributedOptimizer(dlfast.optimizers.SGD(0.1, momentum=0.9)), LOSS)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "m.dlfast")
    model.save(path)
    code = ("import sys; sys.modules['mpi4py'] = None\n"  # no MPI at all in this process
            "import numpy as np, dlfast\n"
            f"m = dlfast.models.load_model({path!r})\n"
            "print(type(m.optimizer).__name__, m.optimizer.iterations, m.optimizer.momentum)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SGD", "2", "0.9"]
    loaded = dlfast.models.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
