"""ISA dispatch and threads: DLFAST_CPU_CAPABILITY at import, info(), set/get_num_threads."""

import os
import subprocess
import sys

import pytest

import dlfast
from dlfast import _core
from conftest import ALL_ISAS, ISAS


def run_python(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("isa", ISAS)
def test_env_var_selects_the_cpu_capability_at_import(isa):
    out = run_python("import dlfast; print(dlfast.info()['cpu_isa'])",
                     DLFAST_CPU_CAPABILITY=isa)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == isa
    assert "Warning" not in out.stderr


def test_env_var_generic_runs_the_kernels():
    code = ("import numpy as np, dlfast; from dlfast import ops;"
            "a = np.random.default_rng(0).uniform(-1, 1, (70, 90));"
            "print(dlfast.info()['cpu_isa'], abs(ops.matmul(a, a.T) - a @ a.T).max() < 1e-12)")
    out = run_python(code, DLFAST_CPU_CAPABILITY="generic")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["generic", "True"]


def test_env_var_unknown_value_warns():
    out = run_python("import warnings; warnings.simplefilter('always');"
                     "import dlfast; print(dlfast.info()['cpu_isa'])",
                     DLFAST_CPU_CAPABILITY="sse9")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ISAS[-1]
    assert "DLFAST_CPU_CAPABILITY='sse9' ignored" in out.stderr


def test_info_reports_the_path_in_use():
    info = dlfast.info()
    assert info["cpu_isa_supported"] in ALL_ISAS
    assert info["cpu_isa"] == _core.cpu_capability()
    for isa in ISAS:
        assert _core.set_cpu_capability(isa)
        assert dlfast.info()["cpu_isa"] == isa
    for isa in ALL_ISAS[len(ISAS):]:
        assert _core.set_cpu_capability(isa) is False
        assert dlfast.info()["cpu_isa"] == ISAS[-1]
    assert info["version"] == dlfast.__version__
    assert {"num_threads", "cuda_available", "build_type", "compiler"} <= set(info)


def test_set_get_num_threads():
    for n in (1, 2, 3):
        dlfast.set_num_threads(n)
        assert dlfast.get_num_threads() == n
        assert dlfast.info()["num_threads"] == n


def test_omp_num_threads_is_respected():
    out = run_python("import dlfast; print(dlfast.get_num_threads())", OMP_NUM_THREADS="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
