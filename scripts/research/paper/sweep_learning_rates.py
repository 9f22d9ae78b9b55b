#!/usr/bin/env python
"""Learning-rate sweep that chose the baselines' defaults (DEFAULT_LEARNING_RATES): final MSE after 301 steps.

    python scripts/research/paper/sweep_learning_rates.py --bach /path/to/gt_bach.wav
    # SIREN with the authors' script default omega_0
    python scripts/research/paper/sweep_learning_rates.py --models siren --omega 1
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from research.paper.suite import default_workers, make_jobs, run_suite


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bach", default=None)
    p.add_argument("--models", nargs="+", default=["siren", "relu", "tanh", "relu-rff", "ffn"])
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2])
    p.add_argument("--images", nargs="+", default=["camera", "astronaut"])
    p.add_argument("--omega", type=float, default=None, help="SIREN omega_0 (first and hidden layers)")
    p.add_argument("--steps", type=int, default=301)
    p.add_argument("--workers", type=int, default=default_workers())
    args = p.parse_args()
    base = make_jobs(args.bach, [0], args.steps, args.models, args.images)
    kwargs = {} if args.omega is None else {"first_omega_0": args.omega, "hidden_omega_0": args.omega}
    jobs = [dataclasses.replace(j, learning_rate=lr, model_kwargs=kwargs if j.model == "siren" else {})
            for j in base for lr in args.lrs]
    results, _ = run_suite(jobs, args.workers)
    mse = {(r.model, r.name, r.learning_rate): r.mse for r in results}
    names = list(dict.fromkeys(j.name for j in base))
    print("model     lr       " + "  ".join(f"{n:>10s}" for n in names))
    for m in args.models:
        for lr in args.lrs:
            cells = [mse[(m, n, lr)] for n in names]
            print(f"{m:9s} {lr:<8g} " + "  ".join(f"{c:10.2e}" for c in cells))


if __name__ == "__main__":
    main()
