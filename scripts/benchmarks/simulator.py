"""Side-by-side benchmark of the QIREN circuit: qiren-gen's simulator versus PennyLane ``default.qubit``.

Each (implementation, batch) is timed in a fresh subprocess so that its peak memory is its own; parity is checked
in-process on the same weights and inputs. Used by ``scripts/benchmarks/benchmark_simulator.py``.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import torch

from qiren_gen.quantum import DataReuploadingCircuit

IMPLEMENTATIONS = ("pennylane", "qiren-gen-autograd", "qiren-gen-fused")


@dataclass
class Timing:
    implementation: str
    batch: int
    device: str
    median_s: float
    repeats: int
    peak_mb: float

    @property
    def points_per_s(self) -> float:
        return self.batch / self.median_s


def _build(implementation: str, n_qubits: int, n_reuploads: int, n_blocks: int, seed: int):
    torch.manual_seed(seed)
    circuit = DataReuploadingCircuit(n_qubits, n_reuploads, n_blocks)
    if implementation == "pennylane":
        return circuit.to_pennylane("default.qubit", diff_method="backprop")
    circuit.engine = "fused" if implementation == "qiren-gen-fused" else "autograd"
    return circuit


def _forward_backward(layer, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = layer(x)
    if isinstance(out, (list, tuple)):
        out = torch.stack(list(out), -1)
    out.sum().backward()
    return out


def measure(
    implementation: str, batch: int, repeats: int, device: str = "cpu", n_qubits: int = 8, n_reuploads: int = 2,
    n_blocks: int = 2, seed: int = 0,
) -> Timing:
    """Median wall time of one forward+backward at ``batch`` (after one warm-up) and the peak memory it added."""
    layer = _build(implementation, n_qubits, n_reuploads, n_blocks, seed).to(device)
    x = torch.randn(batch, n_qubits, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    _forward_backward(layer, x)  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        layer.zero_grad(set_to_none=True)
        start = time.perf_counter()
        _forward_backward(layer, x)
        sync()
        times.append(time.perf_counter() - start)
    if cuda:
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is in KiB on Linux: the growth over the set-up peak is what forward+backward needed
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
    return Timing(implementation, batch, device, statistics.median(times), repeats, peak_mb)


def measure_in_subprocess(
    implementation: str, batch: int, repeats: int, device: str = "cpu", threads: int | None = None
) -> Timing:
    """``measure`` in a fresh Python process, so peak memory and caches belong to this measurement alone.

    ``threads`` pins torch's CPU threads (same for every implementation, so ratios stay fair on a busy machine).
    """
    pin = f"import torch; torch.set_num_threads({int(threads)}); " if threads else ""
    code = (
        pin + "import json, dataclasses, sys; from benchmarks.simulator import measure; "
        f"t = measure({implementation!r}, {batch}, {repeats}, {device!r}); "
        "print(json.dumps(dataclasses.asdict(t)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark of {implementation} at batch {batch} failed: {proc.stderr.strip()[-500:]}")
    return Timing(**json.loads(proc.stdout.strip().splitlines()[-1]))


def parity(batch: int = 256, n_qubits: int = 8, n_reuploads: int = 2, n_blocks: int = 2, seed: int = 0) -> dict:
    """Max abs difference (float32) of outputs, input gradients and weight gradients: fused engine vs PennyLane."""
    ours = _build("qiren-gen-fused", n_qubits, n_reuploads, n_blocks, seed)
    theirs = ours.to_pennylane("default.qubit", diff_method="backprop")
    x = torch.randn(batch, n_qubits, generator=torch.Generator().manual_seed(seed + 1))
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a = ours(xa)
    out_b = torch.stack(list(theirs(xb)), -1) if isinstance(theirs(xb), (list, tuple)) else theirs(xb)
    # A mean over the batch keeps gradient magnitudes O(1), so the float32 bound is meaningful.
    out_a.mean().backward()
    out_b.mean().backward()
    return {
        "output": (out_a - out_b).abs().max().item(),
        "input_grad": (xa.grad - xb.grad).abs().max().item(),
        "weight_grad": (ours.weights.grad - theirs.weights.grad).abs().max().item(),
    }


def timing_row(t: Timing) -> dict:
    row = asdict(t)
    row["points_per_s"] = t.points_per_s
    return row
