"""Shared fixtures: every ISA path this CPU can run x 1 and 2 threads, and a seeded RNG.

The kernel-only tests live in tests/test_kernels_*.py so that CI can run just those under
AddressSanitizer (``pytest tests/test_kernels_*.py``)."""

import sys

import numpy as np
import pytest

import dlfast
from dlfast import _core

ALL_ISAS = ("generic", "avx2", "avx512")


def supported_isas():
    """The kernel paths this machine can run: those up to the best one the CPU supports."""
    best = dlfast.info()["cpu_isa_supported"]
    return ALL_ISAS[: ALL_ISAS.index(best) + 1]


ISAS = supported_isas()
THREADS = (1, 2)
ISA_THREADS = [(isa, t) for isa in ISAS for t in THREADS]


@pytest.fixture(autouse=True)
def _restore_kernel_state():
    """Whatever a test does, the next one starts on the default ISA path and thread count."""
    isa, threads = _core.cpu_capability(), dlfast.get_num_threads()
    yield
    assert _core.set_cpu_capability(isa)
    dlfast.set_num_threads(threads)


@pytest.fixture(params=ISA_THREADS, ids=[f"{i}-{t}thr" for i, t in ISA_THREADS])
def isa_threads(request):
    """Runs the test on one (ISA path, thread count); restores both afterwards."""
    isa, threads = request.param
    old_isa, old_threads = _core.cpu_capability(), dlfast.get_num_threads()
    assert _core.set_cpu_capability(isa), f"{isa} should be supported (<= {ISAS[-1]})"
    assert _core.cpu_capability() == isa
    dlfast.set_num_threads(threads)
    assert dlfast.get_num_threads() == threads
    yield isa, threads
    assert _core.set_cpu_capability(old_isa)
    dlfast.set_num_threads(old_threads)


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test on one ISA path (thread count unchanged); restores it afterwards."""
    old = _core.cpu_capability()
    assert _core.set_cpu_capability(request.param)
    yield request.param
    assert _core.set_cpu_capability(old)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, different per test."""
    import zlib
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_addoption(parser):
    parser.addoption("--fuzz-full", action="store_true", default=False,
                     help="tests/fuzz: run the full set of fuzz cases, not the fixed-seed subset "
                          "(also DLFAST_FUZZ_FULL=1)")


def pytest_terminal_summary(terminalreporter):
    """The fuzz suite's summary line (cases, clean errors, crashes, hangs, wrong answers)."""
    mod = sys.modules.get("test_fuzz")
    if mod is not None and mod.SUMMARY:
        terminalreporter.write_line(mod.SUMMARY[0])


@pytest.fixture
def standin(monkeypatch):
    """dlfast._cuda replaced by tests/cuda_standin.py (see its docstring): the GPU path's
    Python side runs on NumPy."""
    import cuda_standin
    from dlfast import cuda
    monkeypatch.setattr(cuda._device, "ext", cuda_standin)  # what every cuda module calls
    monkeypatch.setattr(cuda._device, "status", (1, ""))
    monkeypatch.setattr(cuda, "_cuda", cuda_standin)
    monkeypatch.setattr(cuda, "Array", cuda_standin.Array)
    return cuda_standin
