"""Time ``pipe(batch_size=16, height=128, width=128, shots=1000)`` against the exact call (target: <= 3x), side by
side in one process, interleaved; prints medians and ratios as JSON.

    python scripts/benchmarks/benchmark_shots.py [--shots 1000] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.shots import time_pipeline_shots


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shots", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    row = time_pipeline_shots(args.shots, size=args.size, repeats=args.repeats)
    row["load_average_1_5_15"] = os.getloadavg()
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
