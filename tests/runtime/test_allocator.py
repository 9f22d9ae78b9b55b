"""The allocator setting: parsed from QIREN_GEN_MALLOC, and on glibc it stops 32 MiB tensors from being page-faulted
in again every time (counted with getrusage in fresh processes, not timed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qiren_gen.runtime.allocator import ENV_VAR, allocator_mode

REPO = Path(__file__).resolve().parents[2]

FAULTS = """
import json, resource, sys
from qiren_gen.runtime import configure_allocator
mode = configure_allocator()
import torch
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(12):  # warm-up: the heap grows to its working size; glibc's own threshold reaches its 32 MiB cap
    torch.ones(16, 4096, 128)
before = faults()
for _ in range(10):
    torch.ones(16, 4096, 128)  # exactly 32 MiB, like one activation of a stage-1 step
print(json.dumps({"mode": mode, "faults": faults() - before}))
"""


def run_faults(value: str | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop(ENV_VAR, None)
    if value is not None:
        env[ENV_VAR] = value
    proc = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mode_comes_from_the_environment():
    assert allocator_mode({}) == "tuned"
    assert allocator_mode({ENV_VAR: "default"}) == "default"
    assert allocator_mode({ENV_VAR: " Tuned "}) == "tuned"
    with pytest.raises(ValueError, match="QIREN_GEN_MALLOC must be one of tuned, default"):
        allocator_mode({ENV_VAR: "jemalloc"})


@pytest.mark.slow
def test_tuned_allocator_keeps_32_mib_tensors_off_fresh_pages():
    tuned, default = run_faults(None), run_faults("default")
    assert default["mode"] == "default"
    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    assert tuned["mode"] == ("tuned" if glibc else "unsupported")
    if glibc:  # 10 x 32 MiB = 81,920 pages faulted in with glibc's own setting; none once they stay on the heap
        assert default["faults"] > 50_000
        assert tuned["faults"] < default["faults"] / 20
