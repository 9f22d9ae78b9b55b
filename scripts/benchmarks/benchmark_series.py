#!/usr/bin/env python
"""Multi-head circuits: the fused simulator against their exact Fourier series, per point and on a grid.

    python scripts/benchmarks/benchmark_series.py              # 32 heads, 8192 points, one thread
    python scripts/benchmarks/benchmark_series.py --points 2048 --repeats 3

Per configuration: the series' terms per head, the time to build it (circuit runs on the sample angles + DFT), and
microseconds per point of the ``"fused"`` simulator, of the series summed point by point at the same angles, and of
the series on a 16-row product grid of affine angles (the rendering case), with the largest difference from a
float64 simulation. Medians of interleaved repeats, thread CPU time; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import torch

from qiren_gen.quantum import MultiHeadReuploadingCircuit
from qiren_gen.quantum.spectrum import head_series

CONFIGS = [  # (qubits, re-uploads, entangler, encoding_scale)
    (2, 2, "cnot_chain", None), (2, 2, "cnot_chain", "ternary"), (3, 2, "cz_ring", None),
    (2, 3, "cnot_chain", "ternary"), (4, 2, "cnot_chain", None),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--points", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    print("| qubits, uploads, scales | terms | build (ms) | simulator (us/pt) | series per point | series on a grid "
          "| max abs diff (float32 series vs float64) |")
    print("|---|---|---|---|---|---|---|")
    for n, reuploads, entangler, scale in CONFIGS:
        torch.manual_seed(0)
        heads = MultiHeadReuploadingCircuit(args.heads, n, reuploads, 2, entangler=entangler, encoding_scale=scale)
        start = time.thread_time()
        series = head_series(heads)
        build = time.thread_time() - start
        x = torch.randn(args.points, args.heads, n) * 3
        rows = torch.linspace(-1, 1, 16)
        cols = torch.linspace(-1, 1, max(1, args.points // 16))
        slopes = [torch.randn(args.heads, n) for _ in range(3)]
        work = {"simulator": partial(heads, x), "point": partial(series.evaluate, x),
                "grid": partial(series.evaluate_grid, *slopes, rows, cols, torch.float32)}
        times = {name: [] for name in work}
        with torch.no_grad():
            for fn in work.values():
                fn()  # warm-up
            for _ in range(args.repeats):
                for name, fn in work.items():
                    start = time.thread_time()
                    fn()
                    times[name].append((time.thread_time() - start) / args.points * 1e6)
            diff = (series.evaluate(x) - heads(x.double())).abs().max().item()
        us = {name: statistics.median(v) for name, v in times.items()}
        print(f"| {n}, {reuploads}, {scale or 'default'} | {series.n_terms} | {build * 1e3:.1f} | "
              f"{us['simulator']:.2f} | {us['point']:.2f} | {us['grid']:.3f} | {diff:.1e} |")
    print(f"\n{args.heads} heads, {args.points} points, one thread, thread CPU time, medians of {args.repeats}; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
