"""Data-parallel training of a digits MLP over MPI, Horovod-style (issue 17): every rank loads
the whole data set, trains on its shard of each epoch, and the gradients are averaged by one
Allreduce per step, so 2 ranks at batch_size=32 take the steps of 1 process at 64.

    pip install ".[distributed,examples]"
    mpiexec -n 2 python examples/distributed_digits.py

(also runs as a single process: python examples/distributed_digits.py)
"""

import time

import dlfast
import dlfast.distributed as dist
from dlfast.datasets import load_digits_split
from dlfast.layers import Dense, Input

dist.init()
dlfast.set_num_threads(1)  # one kernel thread per rank: the ranks share the machine's cores
dlfast.manual_seed(dist.rank())  # different initial weights: BroadcastWeights makes them rank 0's
x_train, y_train, x_test, y_test = load_digits_split()

model = dlfast.Sequential([
    Input((64,)),
    Dense(128, activation="relu"),
    Dense(64, activation="relu"),
    Dense(10, activation="softmax"),
])
# Horovod's recipe: the learning rate scaled by the number of ranks (the global batch grows)
opt = dist.DistributedOptimizer(dlfast.optimizers.Adam(1e-3 * dist.size()))
model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=32, epochs=20, validation_data=(x_test, y_test),
                    callbacks=[dist.callbacks.BroadcastWeights(root=0),
                               dist.callbacks.MetricAverage()],
                    verbose=2 if dist.rank() == 0 else 0)
seconds = time.perf_counter() - start
loss, accuracy = model.evaluate(x_test, y_test)  # the same weights on every rank
if dist.rank() == 0:
    print(f"{dist.size()} rank(s), {opt.iterations} steps of {32 * dist.size()} samples, "
          f"{opt.allreduce_calls} allreduce calls, {seconds:.1f}s: test loss {loss:.4f}, "
          f"test accuracy {accuracy:.1%}")
