#!/usr/bin/env python
"""Held-out PSNR of the bundled recipe's stage 1 (LFW) with the row-wise latent update against the dense one of
``--baseline_rev``, trained side by side in one run.

    python scripts/benchmarks/benchmark_latent_update_quality.py --steps 400 --baseline_rev 988a848

Thin wrapper: the benchmark lives in ``benchmarks.latent_update_quality``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.latent_update_quality import latent_update_quality

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work_dir", default="/tmp/qiren-latent-update-quality")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--baseline_rev", default="988a848",
                   help="a revision with the dense latent update (988a848: the last one)")
    p.add_argument("--rowwise_latent_learning_rates", type=float, nargs="*", default=[],
                   help="also train row-wise at these latent learning rates")
    a = p.parse_args()
    latent_update_quality(a.work_dir, a.steps, a.baseline_rev, tuple(a.rowwise_latent_learning_rates))
