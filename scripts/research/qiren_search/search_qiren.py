#!/usr/bin/env python
r"""Search QIREN variants against SIREN on the paper's tasks; resumable (one JSON per fit under --cache).

    # 1. screen every variant on a few tasks, one seed
    python scripts/research/qiren_search/search_qiren.py screen --bach gt_bach.wav --signals camera astronaut bach
    # 2. the top few and the references on all five tasks, three seeds
    python scripts/research/qiren_search/search_qiren.py final --bach /path/to/gt_bach.wav --top 3
    # 3. the paper's QIREN, Tanh and three SIRENs (the authors' omega_0 1 / lr 0.03, omega_0 1 / lr 0.1, the tuned
    #    omega_0 30), three seeds: also writes the baselines section of docs/research/paper_reproduction.md
    python scripts/research/qiren_search/search_qiren.py baselines --bach /path/to/gt_bach.wav
    # 4. the rate-distortion sweep (families by size, the three images) and longer fits of the best
    python scripts/research/qiren_search/search_qiren.py sizes --seeds 0
    python scripts/research/qiren_search/search_qiren.py long --steps 1000 --top 1 --variants s3-zz \
        --signals camera astronaut
    # rewrite docs/research/qiren_search.md and its figures from the cache alone
    python scripts/research/qiren_search/search_qiren.py report

Run it under `nice` on a shared machine; kill it at any time and run the same command again to resume.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from research.commands import portable_command
from research.paper.baselines import NEEDED, write_baselines_section
from research.paper.suite import PAPER_IMAGES, default_workers
from research.qiren_search.report import final_variants, write_search_report
from research.qiren_search.search import (
    ALL_VARIANTS,
    PAPER_STEPS,
    REFERENCES,
    SIGNALS,
    SIZE_FAMILIES,
    VARIANTS,
    load_records,
    run_search,
)


def refuse_fewer_fits(cache: Path, page: Path) -> None:
    """Raise ``ValueError`` (one line) when ``cache`` holds fewer fits than the existing ``page`` was made from: the
    page is never rewritten with less than it has (a fresh clone has no cache)."""
    made_from = re.search(r"from (\d+) cached fits", page.read_text()) if page.is_file() else None
    cached = len(load_records(cache))
    if made_from and cached < int(made_from.group(1)):
        raise ValueError(f"refusing to rewrite {page} from {cached} cached fits in {cache}: it was made from "
                         f"{made_from.group(1)}; run the search stages it lists (they resume from the cache), or pass "
                         "--output elsewhere.")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["screen", "final", "baselines", "sizes", "long", "report"])
    p.add_argument("--bach", default=None,
                   help="the paper's gt_bach.wav (float WAV, 44.1 kHz); without it no sound task")
    p.add_argument("--signals", nargs="+", choices=SIGNALS, default=None,
                   help="screen / long: signals to fit (screen: default camera astronaut, plus bach with --bach; "
                        "long: every signal)")
    p.add_argument("--variants", nargs="+", choices=list(ALL_VARIANTS), default=None,
                   help="screen: variants (default all); final: added to the top ones")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 (screen), 0 1 2 (final)")
    p.add_argument("--top", type=int, default=3, help="final: how many screened QIREN variants to carry (default 3)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"full-batch steps (default {PAPER_STEPS}; long: 1000); other lengths are cached apart")
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--cache", default="runs/qiren_search", help="one JSON per fit (default runs/qiren_search)")
    p.add_argument("--output", default="docs/research", help="report folder (default docs/research)")
    args = p.parse_args()
    args.steps = args.steps or (1000 if args.stage == "long" else PAPER_STEPS)
    if args.steps < 1 or args.workers < 1 or args.top < 0:
        p.error("--steps and --workers must be >= 1, --top >= 0")
    cache = Path(args.cache)
    try:
        if args.stage == "screen":
            signals = args.signals or ["camera", "astronaut"] + (["bach"] if args.bach else [])
            names = args.variants or [v.name for v in REFERENCES + VARIANTS]
            run_search(names, signals, args.seeds or [0], cache, args.bach, args.steps, args.workers)
        elif args.stage == "final":
            names = final_variants(cache, args.top) + (args.variants or [])
            signals = list(SIGNALS) if args.bach else [s for s in SIGNALS if s != "bach"]
            run_search(list(dict.fromkeys(names)), signals, args.seeds or [0, 1, 2], cache, args.bach, args.steps,
                       args.workers)
        elif args.stage == "baselines":
            signals = list(SIGNALS) if args.bach else [s for s in SIGNALS if s != "bach"]
            run_search(list(NEEDED), signals, args.seeds or [0, 1, 2], cache, args.bach, PAPER_STEPS, args.workers)
        elif args.stage == "sizes":
            names = [n for family in SIZE_FAMILIES.values() for n in family]
            run_search(names, list(PAPER_IMAGES), args.seeds or [0], cache, None, PAPER_STEPS, args.workers)
        elif args.stage == "long":
            names = final_variants(cache, args.top)[: args.top] + (args.variants or []) + ["siren"]
            signals = args.signals or (list(SIGNALS) if args.bach else [s for s in SIGNALS if s != "bach"])
            run_search(list(dict.fromkeys(names)), signals, args.seeds or [0], cache, args.bach, args.steps,
                       args.workers)
    except (OSError, ValueError) as exc:
        print(f"search_qiren: error: {exc}", file=sys.stderr)
        return 2
    command = portable_command("scripts/research/qiren_search/search_qiren.py", sys.argv[1:])
    try:
        refuse_fewer_fits(cache, Path(args.output) / "qiren_search.md")
        path = write_search_report(cache, Path(args.output), command)
    except ValueError as exc:
        print(f"search_qiren: error: {exc}", file=sys.stderr)
        return 2
    print(f"report -> {path}")
    if args.stage == "baselines":
        doc = write_baselines_section(load_records(cache), Path(args.output) / "paper_reproduction.md", command)
        print(f"baselines section -> {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
