#!/usr/bin/env python
"""Reproduce the QIREN paper's sound fitting, image fitting and superresolution experiments.

    python scripts/research/paper/reproduce_paper.py --bach /path/to/gt_bach.wav --seeds 0 1 2

Writes docs/research/paper_reproduction.md and docs/research/figures/*.png. Without --bach the sound experiment is
skipped.
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from research.commands import portable_command
from research.paper.report import write_report
from research.paper.suite import PAPER_IMAGES, PAPER_MODELS, default_workers, make_jobs, run_suite


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bach", default=None, help="the paper's gt_bach.wav (float WAV, 44.1 kHz)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=301)
    p.add_argument("--models", nargs="+", default=list(PAPER_MODELS), choices=PAPER_MODELS)
    p.add_argument("--images", nargs="+", default=list(PAPER_IMAGES))
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--output", default="docs/research")
    p.add_argument("--save_results", metavar="FILE", help="also pickle the raw results (to rewrite the report later)")
    p.add_argument("--from_results", metavar="FILE", help="skip the fits: rewrite the report from saved results")
    args = p.parse_args()
    if args.steps < 1 or args.workers < 1:
        p.error("--steps and --workers must be >= 1")
    if "tanh" not in args.models:
        p.error("--models must include tanh (errors are reported relative to it)")
    if args.from_results:
        if not Path(args.from_results).is_file():
            print(f"reproduce_paper: error: no saved results at {args.from_results}: --from_results reads the file a "
                  "run with --save_results wrote; run the suite first.", file=sys.stderr)
            return 2
        with open(args.from_results, "rb") as f:  # a file this script wrote itself
            saved = pickle.load(f)
        path = write_report(**saved, out_dir=Path(args.output))
        print(f"report rewritten from {args.from_results} -> {path}")
        return 0
    try:
        jobs = make_jobs(args.bach, args.seeds, args.steps, args.models, args.images)
    except (OSError, ValueError) as exc:
        print(f"reproduce_paper: error: {exc}", file=sys.stderr)
        return 2
    results, wall = run_suite(jobs, args.workers)
    shown = [a for a in sys.argv[1:] if a != "--save_results" and not a.endswith(".pkl")]
    command = portable_command("scripts/research/paper/reproduce_paper.py", shown)
    saved = dict(results=results, jobs=jobs, wall_seconds=wall, seeds=args.seeds, steps=args.steps,
                 workers=args.workers, command=command)
    if args.save_results:
        with open(args.save_results, "wb") as f:
            pickle.dump(saved, f)
    path = write_report(**saved, out_dir=Path(args.output))
    print(f"{len(jobs)} fits in {wall:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
