"""dlfast.distributed from one process (issue 17): it imports without mpi4py and init() then
says how to install it; and, where mpiexec is there (pip install mpi4py mpich), a rank that
raises ends a 2-rank job non-zero within 30 s, and the 2-rank suite (tests/distributed) passes
under mpiexec -n 2."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_MPI = "import sys; sys.modules['mpi4py'] = None\n"  # as if mpi4py were not installed


def run_python(code, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_import_works_without_mpi4py_and_init_says_how_to_install():
    out = run_python(NO_MPI + (
        "import dlfast.distributed as dist\n"
        "assert not dist.is_initialized()\n"
        "try:\n"
        "    dist.rank()\n"
        "except RuntimeError as e:\n"
        "    print('RANK:', e)\n"
        "import dlfast\n"
        "try:\n"
        "    dist.DistributedOptimizer(dlfast.optimizers.SGD())\n"
        "except RuntimeError as e:\n"
        "    print('OPT:', e)\n"
        "try:\n"
        "    dist.init()\n"
        "except ImportError as e:\n"
        "    print('INIT:', e)\n"))
    assert out.returncode == 0, out.stderr
    assert "RANK: dlfast.distributed is not initialized: call dlfast.distributed.init()" \
        in out.stdout
    assert 'INIT: dlfast.distributed needs mpi4py and an MPI library: pip install ' \
        '"dlfast[distributed]"' in out.stdout
    assert "pip install mpi4py mpich" in out.stdout
    assert "OPT: dlfast.distributed is not initialized" in out.stdout


def mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpiexec not found: pip install mpi4py mpich (the 'distributed' extra) "
                    "runs the 2-rank tests")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed: pip install mpi4py mpich")
    return found


def launch(args, timeout):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_"))}
    start = time.monotonic()
    out = subprocess.run([mpiexec(), "-n", "2"] + args, capture_output=True, text=True,
                         timeout=timeout, env=env, cwd=ROOT)
    return out, time.monotonic() - start


FAILING = """
import numpy as np, dlfast, dlfast.distributed as dist
dist.init()
model = dlfast.Sequential([dlfast.layers.Input((4,)), dlfast.layers.Dense(2)])
model.compile(dist.DistributedOptimizer(dlfast.optimizers.SGD()), "mse")
if dist.rank() == 1:
    raise ValueError("rank 1 fails on purpose")
model.fit(np.zeros((64, 4), np.float32), np.zeros((64, 2), np.float32), epochs=1000,
          verbose=0)  # rank 0 waits in the gradient Allreduce: the abort must end it
"""


def test_a_failing_rank_ends_the_job_non_zero_within_30_s():
    try:
        out, seconds = launch([sys.executable, "-c", FAILING], timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the job still ran after 60 s: a failing rank left the other one hanging")
    assert out.returncode != 0, (out.stdout, out.stderr)
    assert seconds < 30, seconds
    assert "rank 1 fails on purpose" in out.stderr


def test_the_two_rank_suite_passes_under_mpiexec():
    out, _ = launch([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                     "tests/distributed"], timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert out.stdout.count(" passed") == 2 and "skipped" not in out.stdout, out.stdout


def test_the_distributed_digits_example_learns_on_two_ranks():
    pytest.importorskip("sklearn", reason="the example loads scikit-learn's digits")
    out, _ = launch([sys.executable, os.path.join("examples", "distributed_digits.py")],
                    timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]

    found = re.search(r"^2 rank\(s\), (\d+) steps of 64 samples, (\d+) allreduce calls, .*test "
                      r"accuracy ([\d.]+)%$", out.stdout, re.M)
    assert found, out.stdout
    steps, calls, accuracy = int(found.group(1)), int(found.group(2)), float(found.group(3))
    assert steps == calls and accuracy >= 90.0, out.stdout
    assert out.stdout.count("Epoch 20/20") == 1  # rank 0 alone prints


def test_one_process_without_mpiexec_is_a_job_of_size_1():
    mpiexec()  # skips without mpi4py
    out = run_python(
        "import numpy as np, dlfast, dlfast.distributed as dist\n"
        "dist.init(); dist.init()\n"
        "print(dist.rank(), dist.size(), dist.local_rank())\n"
        "model = dlfast.Sequential([dlfast.layers.Input((3,)), dlfast.layers.Dense(1)])\n"
        "model.compile(dist.DistributedOptimizer(dlfast.optimizers.SGD(0.1)), 'mse')\n"
        "h = model.fit(np.ones((8, 3), np.float32), np.ones((8, 1), np.float32), batch_size=4,"
        " epochs=2, verbose=0)\n"
        "opt = model.optimizer\n"
        "print(opt.iterations, opt.allreduce_calls, len(h.history['loss']))\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1", "0", "4", "0", "2"]
