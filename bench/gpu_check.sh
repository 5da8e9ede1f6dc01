#!/usr/bin/env bash
# The device check, for a machine with an NVIDIA GPU (and nvcc): build dlfast with the CUDA
# module (DLFAST_CUDA=ON), run the CUDA tests, then the GPU benchmarks (bench/gpu_bench.py),
# whose table comes last. Budgeted to finish within 8 minutes. Fails at once, saying why,
# where there is no GPU or no CUDA compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi lists none); run it on a GPU machine" >&2
  exit 2
fi
if ! command -v nvcc >/dev/null 2>&1; then
  echo "gpu_check: no CUDA compiler (nvcc) on PATH; DLFAST_CUDA=ON needs one" >&2
  exit 2
fi
nvidia-smi -L

echo "== 1. build with CUDA (the machine may be offline: no build isolation, no deps)"
start=$(date +%s)
DLFAST_CUDA=ON timeout 300 "$PY" -m pip install . -q --no-build-isolation --no-deps
echo "build: $(( $(date +%s) - start )) s"
"$PY" -c "import dlfast, json; i = dlfast.info(); print(json.dumps(i)); assert i['cuda_available'], i['cuda_reason']"

echo "== 2. CUDA tests"
timeout 180 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py

echo "== 3. GPU benchmarks"
timeout 120 "$PY" bench/gpu_bench.py
