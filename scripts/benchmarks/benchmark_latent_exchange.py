#!/usr/bin/env python
"""Bytes exchanged and seconds per step of the auto-decoded latent table's update at 70,000 x 64 on 2 processes:
dense (whole table all-reduced, Adam over every row) against row-wise (the batch's (row, gradient) pairs), side by
side in one run.

    python scripts/benchmarks/benchmark_latent_exchange.py --rows 70000 --dim 64 --processes 2

Thin wrapper: the benchmark lives in ``benchmarks.latent_exchange``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.latent_exchange import benchmark_latent_exchange

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=70_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=16, help="images per rank and step")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--output", default="/tmp/latent-exchange.json")
    a = p.parse_args()
    benchmark_latent_exchange(a.rows, a.dim, a.batch, a.steps, a.processes, a.output)
