"""Benchmark one QIREN hybrid-layer circuit (8 qubits, 2 re-uploads, 2 blocks), forward+backward, side by side:
qiren-gen's fused and autograd engines versus PennyLane default.qubit (backprop, torch interface), the engine of
the authors' code. Prints medians, ratios, peak memory and parity; with a GPU also GPU throughput at batch 65536.

    python scripts/benchmarks/benchmark_simulator.py            # batches 1024 and 16384 (2 minutes on 2 CPU cores)
    python scripts/benchmarks/benchmark_simulator.py --quick    # batch 1024 only
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.simulator import measure_in_subprocess, parity, timing_row

REPEATS = {"pennylane": (3, 2), "qiren-gen-autograd": (7, 5), "qiren-gen-fused": (9, 7)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 1024 only, fewer repeats")
    parser.add_argument("--json", metavar="FILE", help="also write all rows to FILE as JSON")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for every implementation (default: torch's own, all cores); "
                             "use 1 on a machine shared with other work, where spinning threads distort timings")
    args = parser.parse_args()
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    batches = [1024] if args.quick else [1024, 16384]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fwd+bwd of one 8-qubit circuit")
    rows = []
    print(f"{'batch':>6} {'implementation':>20} {'median ms':>10} {'points/s':>11} {'peak MB':>8} {'speed-up':>9}")
    for batch in batches:
        timings = {}
        for impl, (small, large) in REPEATS.items():
            repeats = max(2, (small if batch <= 1024 else large) // (2 if args.quick else 1))
            timings[impl] = measure_in_subprocess(impl, batch, repeats, threads=args.threads)
        base = timings["pennylane"].median_s
        for impl, t in timings.items():
            ratio = base / t.median_s
            print(f"{batch:6d} {impl:>20} {t.median_s * 1e3:10.1f} {t.points_per_s:11.0f} {t.peak_mb:8.0f}"
                  f" {ratio:8.1f}x")
            rows.append({**timing_row(t), "speedup_vs_pennylane": ratio})
    diff = parity()
    print("parity vs PennyLane (float32, batch 256, max abs diff): "
          + ", ".join(f"{k} {v:.2e}" for k, v in diff.items()))
    if torch.cuda.is_available():
        t = measure_in_subprocess("qiren-gen-fused", 65536, 10, device="cuda")
        print(f"GPU ({torch.cuda.get_device_name()}): batch 65536 fwd+bwd {t.median_s * 1e3:.2f} ms, "
              f"{t.points_per_s:.3g} points/s, peak {t.peak_mb:.0f} MB")
        rows.append(timing_row(t))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "parity": diff}, f, indent=2)


if __name__ == "__main__":
    main()
