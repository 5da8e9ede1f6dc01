"""BroadcastWeights, MetricAverage, shard and the collectives, on 2 ranks (issue 17)."""

import numpy as np
import pytest

import dlfast
from .dist_models import OPTIMIZERS, build, data


def test_init_twice_and_the_ranks(dist):
    dist.init()
    assert dist.is_initialized()
    assert dist.size() == 2 and dist.rank() in (0, 1)
    assert dist.local_rank() == dist.rank()  # one machine
    assert sorted(dist._mpi.comm().allgather(dist.rank())) == [0, 1]


def test_broadcast_makes_different_weights_and_optimizer_state_equal(dist):
    model = build("dense", 10 + dist.rank())
    model.compile(dist.DistributedOptimizer(dlfast.optimizers.SGDG2(0.05)),
                  "sparse_categorical_crossentropy")
    opt = model.optimizer
    opt.step_size = 0.01 * (dist.rank() + 1)
    opt.iterations = 3 + dist.rank()
    for w in model._optimizer_arrays()[1]:
        opt.slot(w, "extra")[...] = dist.rank() + 1.0
    before = dist._mpi.comm().allgather(model.get_weights())
    assert not np.array_equal(before[0][0], before[1][0])
    cb = dist.callbacks.BroadcastWeights(root=1)
    cb.set_model(model)
    cb.on_train_begin()
    for w, want in zip(model.get_weights(), before[1]):
        np.testing.assert_array_equal(w, want)
    assert opt.step_size == 0.02 and opt.iterations == 4
    for w in model._optimizer_arrays()[1]:
        assert np.all(opt.slot(w, "extra") == 2.0)


def test_metric_average_gives_the_global_metric(dist):
    x, y = data("dense", n=200)
    model = build("dense", 0)
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    xs, ys = dist.shard(x, y)
    local = model.evaluate(xs, ys, return_dict=True)
    whole = model.evaluate(x, y, return_dict=True)  # the global metric, on every rank
    logs = dict(local, note="text", rank_number=float(dist.rank()))
    dist.callbacks.MetricAverage().on_epoch_end(0, logs)
    assert logs["accuracy"] == pytest.approx(whole["accuracy"], rel=1e-12)
    assert logs["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert logs["rank_number"] == 0.5 and logs["note"] == "text"


def test_metric_average_in_fit_averages_what_other_callbacks_log(dist):
    class LogRank(dlfast.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["rank_seen"] = float(dist.rank())

    x, y = data("dense", n=128)
    model = build("dense", 0)
    model.compile(dlfast.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    h = model.fit(x, y, batch_size=32, epochs=2, verbose=0,
                  callbacks=[LogRank(), dist.callbacks.MetricAverage()])
    assert h.history["rank_seen"] == [0.5, 0.5]


def test_shard_takes_every_size_th_position(dist):
    x = np.arange(11 * 2, dtype=np.float32).reshape(11, 2)
    y = np.arange(11)
    xs, ys = dist.shard(x, y)
    np.testing.assert_array_equal(ys, np.arange(dist.rank(), 10, 2))
    np.testing.assert_array_equal(xs, x[ys])
    assert dist.shard(list(range(5))).tolist() == list(range(dist.rank(), 4, 2))


def test_allreduce_and_broadcast_helpers(dist):
    a = np.full(5, dist.rank() + 1.0, np.float32)
    b = np.full((2, 3), 10.0 * dist.rank(), np.float64)
    dist.allreduce_mean([a, b])
    assert np.all(a == 1.5) and np.all(b == 5.0)
    c = np.full(4, float(dist.rank()))
    dist.broadcast([c], root=1)
    assert np.all(c == 1.0)


def test_bad_input_is_a_clear_error(dist):
    with pytest.raises(TypeError, match="expected a dlfast.optimizers.Optimizer"):
        dist.DistributedOptimizer("adam")
    wrapped = dist.DistributedOptimizer(dlfast.optimizers.Adam())
    with pytest.raises(TypeError, match="already a DistributedOptimizer"):
        dist.DistributedOptimizer(wrapped)
    with pytest.raises(TypeError, match="root must be an int"):
        dist.callbacks.BroadcastWeights(root="0")
    with pytest.raises(ValueError, match="root must be a rank >= 0, got -1"):
        dist.callbacks.BroadcastWeights(root=-1)
    with pytest.raises(ValueError, match=r"root must be a rank in \[0, 1\].*got 5"):
        dist.callbacks.BroadcastWeights(root=5).broadcast(build("dense", 0))
    with pytest.raises(ValueError, match=r"root must be a rank in \[0, 1\].*got 2"):
        dist.broadcast([np.zeros(2)], root=2)
    with pytest.raises(ValueError, match="x has 3 samples, y has 2"):
        dist.shard(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="1 samples cannot be shared by 2 ranks"):
        dist.shard(np.zeros(1))
    with pytest.raises(TypeError, match="floating-point"):
        dist.allreduce_mean([np.zeros(2, np.int32)])


def test_different_models_on_the_ranks_are_a_clear_error(dist):
    model = dlfast.Sequential([dlfast.layers.Input((4,)),
                               dlfast.layers.Dense(3 + 20 * dist.rank(), activation="softmax")])
    model.compile(dist.DistributedOptimizer(dlfast.optimizers.SGD()),
                  "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
    with pytest.raises(ValueError, match="the ranks' models differ"):
        model.train_on_batch(x, y)


def test_learning_rate_writes_reach_the_wrapped_optimizer(dist):
    opt = dist.DistributedOptimizer(OPTIMIZERS["adam"]())
    opt.learning_rate = 0.5
    assert opt.optimizer.learning_rate == 0.5 and opt.current_learning_rate() == 0.5
    assert opt.get_config() == opt.optimizer.get_config()
