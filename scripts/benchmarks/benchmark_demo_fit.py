"""Time the demo's "Fit a signal" tab: one request (QIREN and the baseline fitted side by side, as the page runs
them) at each size and step count given, wall and CPU seconds; the demo's fit caps are sized from this.

    python scripts/benchmarks/benchmark_demo_fit.py [--sizes 16 32] [--steps 100 200]

Target: the largest request the tab allows (its caps) about 15 s of work on a 2-core CPU. On a shared machine read
the CPU seconds (what the request cost, whatever else runs) beside the wall time.
"""
import argparse
import json
import resource
import sys
import time

import numpy as np
import torch

from qiren_gen.data.signals import load_image
from qiren_gen.demo.limits import DemoLimits
from qiren_gen.demo.live_fit import FIT_BASELINES, PAPER_BASELINE, canonical_baseline, live_fit


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_fit(size: int, steps: int, baseline: str) -> dict:
    """One fit request as the tab runs it (camera at ``size`` px, ``steps`` steps, both models in parallel); its
    seconds and each model's final PSNR (what the page shows)."""
    signal = np.asarray(load_image("camera", size), dtype=np.float32)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    *_, frame = live_fit(signal, baseline, steps, every=max(1, steps // 20))  # the last frame: both fits done
    return {"size": size, "steps": steps, "baseline": baseline, "wall_s": round(time.perf_counter() - wall, 2),
            "cpu_s": round(_cpu_seconds() - cpu, 2),
            "psnr_db": {t.name: round(t.psnr, 2) for t in frame.tracks if t.psnr is not None}}


def main(argv=None) -> int:
    limits = DemoLimits()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[limits.max_fit_size])
    p.add_argument("--steps", type=int, nargs="+", default=[limits.max_fit_steps])
    p.add_argument("--baseline", default=PAPER_BASELINE, type=canonical_baseline, choices=list(FIT_BASELINES))
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as the demo serves (--threads 1)
    time_fit(8, 2, args.baseline)  # warm-up: lazy imports and first-call costs
    for size in args.sizes:
        for steps in args.steps:
            print(json.dumps(time_fit(size, steps, args.baseline)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
