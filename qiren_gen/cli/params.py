"""``qiren-gen params``: print the parameter count of every INR model at its defaults."""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("params", help="parameter counts of QIREN and the baselines")
    p.add_argument("--in-features", type=int, default=2, help="coordinate dimension (1 audio, 2 images)")
    p.add_argument("--out-features", type=int, default=1, help="channels (1 grayscale, 3 RGB)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models import parameter_table  # deferred: torch, not for --help

    if args.in_features < 1 or args.out_features < 1:
        raise ValueError("--in-features and --out-features must be >= 1")
    if args.in_features > 4096 or args.out_features > 4096:  # the models would not fit in memory
        raise ValueError("--in-features and --out-features must be <= 4096")
    table = parameter_table(args.in_features, args.out_features)
    if args.json:
        print(json.dumps(table))
    else:
        for name, count in table.items():
            print(f"{name:10s} {count:8d}")
    return 0
