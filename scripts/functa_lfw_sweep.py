#!/usr/bin/env python
"""Train functa models on LFW faces (modulation modes x latent sizes, QIREN vs SIREN) and write docs/functa_lfw.md.

    python scripts/functa_lfw_sweep.py --work_dir runs/functa_lfw --docs_dir docs
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

DEFAULT_RUNS = ["siren:shift:16", "siren:shift:64", "qiren:shift:16", "qiren:film:16", "qiren:angles:16",
                "qiren:shift:64", "qiren:film:64", "qiren:angles:64"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work_dir", default="runs/functa_lfw")
    p.add_argument("--docs_dir", default="docs")
    p.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="decoder:modulation:latent_dim[:fo|so]")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--resolution", type=int, default=16)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=1e-2, help="outer Adam lr for QIREN runs")
    p.add_argument("--siren_learning_rate", type=float, default=3e-3, help="outer Adam lr for SIREN runs")
    p.add_argument("--inner_steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)")
    args = p.parse_args(argv)
    import torch

    from qiren_gen.training.functa_lfw import parse_run, run_lfw_sweep

    torch.set_num_threads(args.threads)
    command = "python scripts/functa_lfw_sweep.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        run_lfw_sweep(Path(args.work_dir), Path(args.docs_dir), [parse_run(s) for s in args.runs], args.steps,
                      args.resolution, args.batch_size, args.learning_rate, args.siren_learning_rate,
                      args.inner_steps, command=command)
    except (ValueError, OSError) as err:
        print(f"functa_lfw_sweep: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
