"""Benchmark the batched multi-head circuits and the wide QIREN decoder, side by side, one process, interleaved.

1. Forward+backward (weight and input gradients) of H heads of n qubits simulated together versus a Python loop over
   H ``DataReuploadingCircuit`` modules with the same weights, at 625 (one 25x25 image) and 16384 points.
2. One Adam training step (16 images of 25x25, per-image modulations trained too) of ``ModulatedWideQIREN`` versus
   ``ModulatedSIREN`` of the same width, and the 8-qubit ``ModulatedQIREN``.

    python scripts/benchmarks/benchmark_heads.py             # about 5 minutes on one thread
    python scripts/benchmarks/benchmark_heads.py --quick     # small cases only
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.heads import time_decoder_steps, time_heads
from qiren_gen.models import ModulatedQIREN, ModulatedSIREN, ModulatedWideQIREN

HEAD_CASES = [(8, 2), (32, 2), (32, 4), (16, 8)]
BATCHES = [625, 16384]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 625 and the decoder steps only, fewer repeats")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fair on a shared machine)")
    parser.add_argument("--json", metavar="FILE", help="also write every row to FILE as JSON")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); medians of interleaved repeats")

    print(f"\n{'heads':>5} {'qubits':>6} {'points':>6} {'batched ms':>11} {'loop ms':>9} {'speed-up':>9}"
          f" {'max diff':>9}")
    heads_rows = []
    for batch in BATCHES[:1] if args.quick else BATCHES:
        for n_heads, n_qubits in HEAD_CASES:
            repeats = 3 if args.quick or batch * 2**n_qubits * n_heads > 2**24 else 7
            t = time_heads(n_heads, n_qubits, batch, repeats)
            heads_rows.append({**asdict(t), "speedup": t.speedup})
            print(f"{n_heads:5d} {n_qubits:6d} {batch:6d} {t.batched_ms:11.1f} {t.loop_ms:9.1f} {t.speedup:8.2f}x "
                  f"{t.max_abs_diff:9.1e}", flush=True)

    torch.manual_seed(0)
    decoders = {
        "ModulatedWideQIREN 32x4 (shift)": ModulatedWideQIREN(n_heads=32, n_qubits=4),
        "ModulatedWideQIREN 64x2 cnot_chain (shift)": ModulatedWideQIREN(n_heads=64, n_qubits=2,
                                                                         entangler="cnot_chain"),
        "ModulatedSIREN 128 (shift)": ModulatedSIREN(hidden_features=128),
        "ModulatedQIREN 8 qubits (shift)": ModulatedQIREN(n_qubits=8),
    }
    steps = time_decoder_steps(decoders, images=16, side=25, repeats=3 if args.quick else 7)
    siren = next(s for s in steps if s.name.startswith("ModulatedSIREN")).step_ms
    print(f"\n{'decoder (16 images x 25x25, one Adam step)':>44} {'width':>5} {'params':>7} {'mods':>5} "
          f"{'step ms':>8} {'vs SIREN':>9}")
    for s in steps:
        print(f"{s.name:>44} {s.width:5d} {s.parameters:7d} {s.modulation_dim:5d} {s.step_ms:8.1f} "
              f"{s.step_ms / siren:8.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"heads": heads_rows, "steps": [asdict(s) for s in steps]}, f, indent=1)


if __name__ == "__main__":
    main()
