"""Peak memory and time of one auto-decoded training step at a large grid, full-grid against chunks of points.

Each setting runs in a fresh process (peak resident memory is per process): the FFHQ recipe's decoder (32 two-qubit
circuit heads, 3 weight-modulated layers of 128) takes ``--steps`` steps on ``--size``-square RGB targets through
``qiren_gen.functa.backward_per_image_mse``, with the points of a step cut by each ``--budgets_mb`` (0: the whole
grid at once). One torch thread; the step time is the median.

    python scripts/benchmarks/benchmark_step_memory.py --size 256 --batch 8
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from qiren_gen.data import image_grid
from qiren_gen.functa import backward_per_image_mse, step_chunk_points
from qiren_gen.models import FeatureSynthesisDecoder, LatentModulator
from qiren_gen.runtime.allocator import configure_allocator


def run_one(size: int, batch: int, budget_mb: int, steps: int) -> dict:
    """Peak RSS (MiB) and median seconds of ``steps`` steps in this process."""
    torch.set_num_threads(1)
    configure_allocator()
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(out_channels=3, n_heads=32, n_qubits=2, frequency_init=2.0,
                                      hidden_features=128, hidden_layers=3, modulation="weight")
    modulator = LatentModulator.for_decoder(decoder, 64, encoding="auto_decode")
    params = [*decoder.parameters(), *modulator.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    coords = image_grid(size, size)
    targets = torch.rand(batch, size * size, 3) * 2 - 1
    chunk = size * size if budget_mb == 0 else step_chunk_points(decoder, batch, budget_mb * 2**20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds, losses = [], []
    for _ in range(steps):
        latents = (torch.randn(batch, 64) * 0.01).requires_grad_(True)
        start = time.perf_counter()
        mse = backward_per_image_mse(decoder, modulator, latents, coords, targets, chunk_points=chunk,
                                     penalty=1e-4 * latents.square().sum())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
        losses.append(float(mse.mean()))
    return {"budget_mb": budget_mb, "chunk_points": min(chunk, size * size),
            "chunks": -(-size * size // chunk),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_steps_mib": before, "median_step_s": statistics.median(seconds), "losses": losses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--budgets_mb", default="0,256,64,16", help="comma-separated; 0 = the whole grid at once")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one budget in this process
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.size, args.batch, args.one, args.steps)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for budget in [int(b) for b in args.budgets_mb.split(",")]:
        out = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--batch", str(args.batch),
                              "--steps", str(args.steps), "--one", str(budget)], env=env, check=True,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    full = rows[0]
    print(f"{args.batch} x {args.size}x{args.size} RGB, FFHQ-recipe decoder, one thread, median of {args.steps} steps")
    print(f"{'budget':>10} {'chunks':>7} {'peak RSS MiB':>13} {'vs first':>9} {'step s':>8} {'vs first':>9} "
          f"{'last loss':>10}")
    for row in rows:
        label = "whole grid" if row["budget_mb"] == 0 else f"{row['budget_mb']} MiB"
        print(f"{label:>10} {row['chunks']:>7} {row['peak_rss_mib']:>13.0f} "
              f"{row['peak_rss_mib'] / full['peak_rss_mib']:>8.2f}x {row['median_step_s']:>8.2f} "
              f"{row['median_step_s'] / full['median_step_s']:>8.2f}x {row['losses'][-1]:>10.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
