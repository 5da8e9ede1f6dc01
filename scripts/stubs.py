"""Regenerate the type stubs of the compiled modules: python/dlfast/_core/__init__.pyi and
_core/ref.pyi (a stub package: _core has the submodule ref), and _cuda's when this build has
the CUDA module, with pybind11-stubgen (``pip install pybind11-stubgen``).
Run after changing a binding: ``python scripts/stubs.py``; tests/test_stubs.py fails while a
stub and its module disagree."""

import importlib
import os
import shutil
import subprocess
import sys
import tempfile

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python",
                       "dlfast")


def main():
    for name in ("_core", "_cuda"):
        try:
            importlib.import_module(f"dlfast.{name}")
        except ImportError as e:
            print(f"dlfast.{name}: not importable here ({e}); its stub is left as it is")
            continue
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-m", "pybind11_stubgen", f"dlfast.{name}", "-o", out],
                           check=True)
            for stub in (f"{name}.pyi", name):  # a module, or a package of stubs
                made, dest = os.path.join(out, "dlfast", stub), os.path.join(PACKAGE, stub)
                if os.path.isdir(made):
                    shutil.rmtree(dest, ignore_errors=True)
                    shutil.copytree(made, dest)
                elif os.path.exists(made):
                    shutil.copy(made, dest)
                else:
                    continue
                print(f"wrote python/dlfast/{stub}")


if __name__ == "__main__":
    main()
