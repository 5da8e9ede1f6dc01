"""Allreduce cost of data-parallel training (issue 17), for docs/distributed.md.

    mpiexec -n 2 python bench/allreduce.py     # Allreduce vs size; the models' gradient
                                               # averages; CIFAR step, 2 ranks x 1 thread
    python bench/allreduce.py                  # CIFAR and MLP steps, 1 rank x 2 threads

Prints one line per measurement (medians). "bus" bandwidth is the ring Allreduce's
2 (p - 1)/p * bytes / time, the figure the scaling model of the docs uses. Needs mpi4py
(pip install "dlfast[distributed]")."""

import argparse
import os
import platform
import time

import numpy as np

import dlfast
import dlfast.distributed as dist
from dlfast.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D


def mlp():
    """The MLP 784-256-128-10 (235,146 parameters)."""
    return dlfast.Sequential([Input((784,)), Dense(256, activation="relu"),
                              Dense(128, activation="relu"), Dense(10, activation="softmax")])


def cifar():
    """The course's CIFAR model (bench/cases_conv.py's dlfast_cifar)."""
    return dlfast.Sequential([
        Input((32, 32, 3)), Conv2D(32, 3, activation="relu"), MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"), MaxPooling2D(2), Conv2D(64, 3, activation="relu"),
        Flatten(), Dense(64, activation="relu"), Dense(10, activation="softmax")])


MODELS = {"mlp": (mlp, (784,)), "cifar": (cifar, (32, 32, 3))}


def median_time(fn, repeats, sync=None):
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def allreduce_sweep(repeats):
    comm, p = dist._mpi.comm(), dist.size()
    mpi = dist._mpi.mpi()
    sizes = [1_000, 10_000, 100_000, 122_570, 235_146, 1_000_000, 4_000_000]
    for n in sizes:
        buf = np.ones(n, np.float32)
        comm.Allreduce(mpi.IN_PLACE, buf, op=mpi.SUM)  # warm-up
        t = median_time(lambda: comm.Allreduce(mpi.IN_PLACE, buf, op=mpi.SUM), repeats,
                        comm.Barrier)
        bus = 2 * (p - 1) / p * 4 * n / t / 1e9
        if dist.rank() == 0:
            print(f"allreduce float32 n={n:,} ({4 * n / 1e6:.2f} MB), {p} ranks: "
                  f"{t * 1e3:.3f} ms, bus {bus:.2f} GB/s")


def model_average(name, repeats):
    """DistributedOptimizer.average on the model's real gradient buffers (pack, Allreduce,
    divide, unpack): the communication cost of one step."""
    model = MODELS[name][0]()
    model.compile(dist.DistributedOptimizer(dlfast.optimizers.SGD(0.01)),
                  "sparse_categorical_crossentropy")
    model.count_params()
    grads = model._optimizer_arrays()[0]
    n = sum(g.size for g in grads)
    opt = model.optimizer
    opt.average(grads)
    t = median_time(lambda: opt.average(grads), repeats, dist._mpi.comm().Barrier)
    if dist.rank() == 0:
        print(f"gradient average per step, {name} ({n:,} float32 values in {len(grads)} "
              f"buffers, {4 * n / 1e6:.2f} MB), {dist.size()} ranks: {t * 1e3:.3f} ms")


def train_step(name, per_rank_batch, steps, threads):
    """Seconds per global step of fit-like training: each rank trains on per_rank_batch."""
    dlfast.set_num_threads(threads)
    dlfast.manual_seed(0)
    make, shape = MODELS[name]
    model = make()
    distributed = dist.size() > 1
    opt = dlfast.optimizers.SGD(0.01)
    model.compile(dist.DistributedOptimizer(opt) if distributed else opt,
                  "sparse_categorical_crossentropy")
    rng = np.random.default_rng(dist.rank())
    x = rng.normal(size=(per_rank_batch,) + shape).astype(np.float32)
    y = rng.integers(0, 10, per_rank_batch)
    for _ in range(3):
        model.train_on_batch(x, y)
    sync = dist._mpi.comm().Barrier if distributed else None
    t = median_time(lambda: model.train_on_batch(x, y), steps, sync)
    if dist.rank() == 0:
        print(f"train step {name}, global batch {per_rank_batch * dist.size()}: "
              f"{dist.size()} rank(s) x {threads} thread(s) at {per_rank_batch} per rank: "
              f"{t * 1e3:.2f} ms/step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    dist.init()
    if dist.rank() == 0:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                    if line.startswith("model name")), platform.processor())
        print(f"# dlfast, ISA {dlfast.info()['cpu_isa']}, {cpu}, load {os.getloadavg()[0]:.1f}, "
              f"{dist.size()} rank(s)")
    if dist.size() > 1:
        allreduce_sweep(args.repeats)
        for name in MODELS:
            model_average(name, args.repeats)
        train_step("mlp", 32, args.steps, 1)
        train_step("cifar", 32, args.steps, 1)
    else:
        train_step("mlp", 64, args.steps, 2)
        train_step("mlp", 64, args.steps, 1)
        train_step("cifar", 64, args.steps, 2)
        train_step("cifar", 64, args.steps, 1)


if __name__ == "__main__":
    main()
