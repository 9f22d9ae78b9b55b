#!/usr/bin/env python
"""QIREN, QIREN+, QFGN and QVF against a tuned SIREN, FFN and ReLU at equal parameter budgets; writes the page.

    # the smallest budget (~650 parameters), three seeds, the three images (+ the Bach clip when given)
    python scripts/research/qinr_field/qinr_field.py --bach gt_bach.wav
    # add the 4x and 16x budgets (hours on two cores: QIREN's circuits grow with the budget)
    python scripts/research/qinr_field/qinr_field.py --bach gt_bach.wav --budgets 660 2640 10560
    # rewrite docs/research/qinr_field.md and its figure from the cache alone
    python scripts/research/qinr_field/qinr_field.py --report-only

Resumable: every fit is a line of ``--cache``; run the same command again after an interruption.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research packages

import torch

from research.commands import portable_command
from research.qinr_field.field import BUDGETS, Cache, load_signals, run_budget
from research.qinr_field.hardware import hardware_eval
from research.qinr_field.report import write_report

ROOT = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=int, nargs="+", default=[BUDGETS[0]], choices=BUDGETS,
                   help="parameter budgets to run (default: the smallest, ~650)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--bach", default=None, help="path of gt_bach.wav (the sound task is skipped without it)")
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "qinr_field" / "fits.jsonl")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "research" / "qinr_field.md")
    p.add_argument("--report-only", action="store_true", help="only rewrite the page from the cache")
    args = p.parse_args(argv)
    if args.bach is not None and not Path(args.bach).is_file():
        print(f"error: --bach {args.bach}: no such file", file=sys.stderr)
        return 2
    if 0 not in args.seeds:
        print("error: --seeds must include 0 (the search runs on seed 0)", file=sys.stderr)
        return 2

    torch.set_num_threads(1)
    cache = Cache(args.cache)
    start = time.time()
    if not args.report_only:
        if args.bach is None:
            print("no --bach: the sound task is skipped (images only)")
        signals = load_signals(args.bach)
        for budget in sorted(args.budgets):
            def hardware(family, budget, lr, hp):
                hardware_eval(cache, family, budget, lr, hp, {"camera": signals["camera"]})

            run_budget(cache, budget, sorted(args.seeds), signals, hardware_hook=hardware)
            cache.add({"key": f"run|{budget}|{time.time():.0f}", "kind": "run", "budget": budget,
                       "seconds": time.time() - start, "seeds": sorted(args.seeds), "bach": args.bach is not None})

    records = list(cache.records.values())
    if not any(r.get("row") and "kind" not in r for r in records):
        print(f"error: no finished fits in {args.cache}: run the study first (the page is left as it is)",
              file=sys.stderr)
        return 2
    shown, skip = [], False  # the command that makes the page: where the page and cache go is not part of it
    for a in argv:
        if skip or a == "--report-only":
            skip = False
            continue
        if a in ("--doc", "--cache"):
            skip = True
            continue
        if not a.startswith(("--doc=", "--cache=")):
            shown.append(a)
    command = portable_command("scripts/research/qinr_field/qinr_field.py", shown)
    try:
        doc = write_report(records, args.doc, command, guard=args.report_only)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {doc} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
