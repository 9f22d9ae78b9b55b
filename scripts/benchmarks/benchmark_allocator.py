#!/usr/bin/env python
"""The allocator setting (``mallopt`` thresholds, ``QIREN_GEN_MALLOC=tuned``) against glibc's own defaults.

    python scripts/benchmarks/benchmark_allocator.py                       # step + renders at 128 / 512 / 1024
    python scripts/benchmarks/benchmark_allocator.py --tasks render128 --rounds 5 --repeats 3
    python scripts/benchmarks/benchmark_allocator.py --quick               # tiny sizes: checks that the script runs

Each round runs ``benchmark_floor.py``'s worker for the package as it is (``current``) twice, once per setting, in
alternating order (the setting is per process). Every repeat is timed as a multiple of this CPU's floor measured
right before it in the same process, so a change of load between the processes cancels; the table gives the median
multiple per setting and their ratio (``tuned / default`` below 1: the setting pays).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FLOOR_SCRIPT = Path(__file__).with_name("benchmark_floor.py")
TASKS = ("step", "render128", "render512", "render1024")
SETTINGS = ("default", "tuned")


def run_worker(setting: str, args, out_dir: Path) -> list[dict]:
    """One ``benchmark_floor.py`` worker process for the current package with ``QIREN_GEN_MALLOC=setting``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "QIREN_GEN_MALLOC": setting}
    cmd = [sys.executable, str(FLOOR_SCRIPT), "--worker", "current", "--out_dir", str(out_dir), "--clock", args.clock,
           "--threads", str(args.threads), "--tasks", *args.tasks, *(["--quick"] if args.quick else []),
           *(["--repeats", str(args.repeats)] if args.repeats else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{setting} worker failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the two settings (default 3)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per task and process (default: per task)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or (args.repeats is not None and args.repeats < 1):
        p.error("--rounds, --threads and --repeats must be >= 1")
    multiples: dict[tuple[str, str], list[float]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    applied: dict[str, set[str]] = {s: set() for s in SETTINGS}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for setting in SETTINGS if i % 2 == 0 else SETTINGS[::-1]:
                for rec in run_worker(setting, args, Path(tmp)):
                    multiples.setdefault((setting, rec["task"]), []).extend(rec["floor_multiples"])
                    seconds.setdefault((setting, rec["task"]), []).extend(rec["seconds"])
                    applied[setting].add(rec["allocator"])
    load_after = os.getloadavg()
    print("| work | default: x floor (s) | tuned: x floor (s) | tuned / default |")
    print("|---|---|---|---|")
    for task in args.tasks:
        cells, med = [], {}
        for setting in SETTINGS:
            med[setting] = statistics.median(multiples[(setting, task)])
            cells.append(f"{med[setting]:.2f} ({statistics.median(seconds[(setting, task)]):.3f} s)")
        print(f"| {task} | " + " | ".join(cells) + f" | {med['tuned'] / med['default']:.3f} |")
    print(f"\nsettings in force: {', '.join(f'{s}={sorted(a)}' for s, a in applied.items())}; {args.rounds} "
          f"alternating rounds; {args.clock} clock; {args.threads} thread(s); load average {load_before[0]:.1f} "
          f"before, {load_after[0]:.1f} after, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
