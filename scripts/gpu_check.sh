#!/usr/bin/env bash
# The GPU check, ready for a machine with one NVIDIA GPU: at most 8 minutes, one JSON file.
#
#     bash scripts/gpu_check.sh [OUT.json]        # default: gpu_check.json in the repository root
#
# 1. installs the repository with its test extras (pip install -e ".[test]", into the python on PATH);
# 2. runs the CUDA cases of the device-parametrized tests (tests/models/test_device_parity.py: simulator, face
#    decoder fp32 / bf16, bundled rendering, each against a float64 CPU reference);
# 3. measures (scripts/benchmarks/gpu_check.py): simulator forward+backward at batches 1024 and 16384 against
#    PennyLane default.qubit on the same device, stage-1 images/s at 64x64 and 256x256 (bf16 synthesis), 16 faces
#    at 1024x1024, peak GPU memory; and writes everything, test counts included, to OUT.json.
# On a machine without a CUDA GPU it prints one line and exits 0 without installing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check.json}"
PYTHON="${PYTHON:-python}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi finds none); nothing to check."
    exit 0
fi
start=$(date +%s)
echo "gpu_check: $(nvidia-smi -L | head -1)"

# 1. install (bounded: a machine that must download torch first may need most of this)
timeout 240 "$PYTHON" -m pip install -q -e ".[test]"
if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch $("$PYTHON" -c 'import torch; print(torch.__version__)') sees no CUDA device; nothing to check."
    exit 0
fi

# 2. the CUDA subset of the tests
JUNIT="$(mktemp --suffix=.xml)"
trap 'rm -f "$JUNIT"' EXIT
tests_rc=0
timeout 90 "$PYTHON" -m pytest -q -k cuda tests/models/test_device_parity.py --junitxml "$JUNIT" || tests_rc=$?

# 3. measurements, bounded by what is left of the 8 minutes
left=$(( 480 - ($(date +%s) - start) ))
if (( left < 60 )); then
    echo "gpu_check: only ${left} s left of 8 minutes after install and tests; measuring the quick sizes only."
    timeout "$left" "$PYTHON" scripts/benchmarks/gpu_check.py --device cuda --quick --junit "$JUNIT" --json "$OUT"
else
    timeout "$left" "$PYTHON" scripts/benchmarks/gpu_check.py --device cuda --junit "$JUNIT" --json "$OUT"
fi
echo "gpu_check: wrote $OUT in $(( $(date +%s) - start )) s (CUDA tests exit code ${tests_rc})"
exit "$tests_rc"
