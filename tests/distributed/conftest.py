"""The 2-rank tests of dlfast.distributed (issue 17): run them with
``mpiexec -n 2 python -m pytest tests/distributed`` (tests/test_distributed_local.py does, when
mpiexec is there). Under a plain ``python -m pytest`` (one process, mpi4py perhaps absent)
every test here is skipped, with the reason, rather than run as one rank.

A test that fails on one rank while the other waits in a collective would hang the job: so a
failure on any rank prints its report and aborts the whole job (MPI_Abort, exit code non-zero)."""

import os
import sys

import pytest

WANT = 2
LAUNCHED = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE")
HERE = os.path.dirname(os.path.abspath(__file__))


def _reason():
    if LAUNCHED is None:
        return (f"the distributed tests run under MPI with {WANT} ranks: mpiexec -n {WANT} "
                f"python -m pytest tests/distributed (pip install mpi4py mpich)")
    if LAUNCHED != str(WANT):
        return f"the distributed tests need exactly {WANT} ranks, the job has {LAUNCHED}"
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install mpi4py mpich)"
    return None


REASON = _reason()


def pytest_collection_modifyitems(config, items):
    if REASON is None:
        return
    skip = pytest.mark.skip(reason=REASON)
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(skip)


def pytest_runtest_logreport(report):
    if REASON is None and report.failed:
        import dlfast.distributed as dist
        sys.stderr.write(f"\n[rank {dist.rank()}] {report.nodeid} failed ({report.when}):\n"
                         f"{report.longreprtext}\n[rank {dist.rank()}] aborting the job\n")
        sys.stderr.flush()
        dist._mpi.comm().Abort(1)


@pytest.fixture
def dist():
    """dlfast.distributed, initialized, with one kernel thread per rank (2 ranks, 2 cores)."""
    import dlfast
    import dlfast.distributed as d
    d.init()
    dlfast.set_num_threads(1)
    assert d.size() == WANT
    return d
