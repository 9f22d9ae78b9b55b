#!/usr/bin/env python
"""Peak RSS and wall time of scripts/train_pipeline.py at 1k / 8k / 20k images (synthetic Hub-layout parquet sets of
64x64 RGB PNGs), plain and --streaming, from scratch and fine-tuning the bundled pipeline, side by side; then the
DataLoader's images/s against the stage-1 step's at 64x64 and 128x128 with 0 and 2 workers.

    nice -n 10 python scripts/benchmarks/benchmark_data_scale.py --work_dir /tmp/data-scale

Thin wrapper: the benchmark lives in ``benchmarks.data_scale``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.data_scale import benchmark_data_scale

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work_dir", default="/tmp/qiren-data-scale")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 8000, 20000])
    p.add_argument("--steps", type=int, default=10, help="stage-1 and prior steps of every run")
    p.add_argument("--modes", nargs="+", choices=("scratch", "finetune"), default=["scratch", "finetune"])
    p.add_argument("--no_loaders", action="store_true", help="skip the loader-vs-step throughput part")
    a = p.parse_args()
    benchmark_data_scale(a.work_dir, tuple(a.sizes), a.steps, tuple(a.modes), not a.no_loaders)
