"""``qiren-gen superres``: fit an INR on a low-resolution image, render it larger, compare with interpolation."""
from __future__ import annotations

import argparse

from ._fitting_args import add_model_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("superres", help="superresolution by fitting an INR to a low-resolution image")
    p.add_argument("--image", required=True, metavar="PATH_OR_NAME",
                   help="image file, or a scikit-image name (astronaut, camera, coffee, ...)")
    p.add_argument("--size", type=int, default=32, help="low-resolution side: fit on SIZE x SIZE (default 32)")
    p.add_argument("--scale", type=int, default=2, help="upsampling factor (default 2)")
    p.add_argument("--paper-grid", action="store_true",
                   help="use the paper's linspace(-1, 1) grids (align_corners) instead of pixel centres")
    add_model_args(p)
    p.add_argument("--prior-pipeline", metavar="DIR_OR_HUB_ID",
                   help="prior mode: encode with this generation pipeline's functional model instead of fitting "
                        "(e.g. pipelines/qiren-lfw-faces); --model/--steps/--lr are then unused")
    p.add_argument("--output", default="superres-output", metavar="DIR",
                   help="output folder (default: superres-output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit (or encode, in prior mode) the low-resolution image, render it larger, compare with interpolation."""
    from .superres_steps import run_superres  # deferred: torch, which `qiren-gen --help` does not load

    return run_superres(args)
