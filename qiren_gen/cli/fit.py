"""``qiren-gen fit``: fit QIREN or a baseline to a WAV clip or an image; write the fit, a figure and metrics."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..io.audio import check_wav
from ._fitting_args import add_model_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit an INR to an audio clip or an image (the paper's signal representation task)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", metavar="WAV", help="mono WAV file")
    src.add_argument("--image", metavar="PATH_OR_NAME",
                     help="image file, or a scikit-image name (astronaut, camera, coffee, ...)")
    p.add_argument("--size", type=int, default=32, help="images: centre-crop and resize to SIZE x SIZE (default 32)")
    p.add_argument("--audio-slice", metavar="START:STOP[:STEP]", default=None,
                   help="audio: samples to keep, e.g. 20000:25000:5 (the paper's Bach clip)")
    p.add_argument("--pixel-centres", action="store_true",
                   help="sample pixel centres instead of the paper's linspace(-1, 1) grid")
    add_model_args(p)
    p.add_argument("--shots", type=int, default=None,
                   help="also evaluate the fitted model with every circuit expectation from N shots (circuit models)")
    p.add_argument("--noise", default=None, metavar="P_OR_CHANNELS",
                   help="also evaluate with noisy gates: a depolarizing probability or e.g. "
                        "depolarizing=1e-3,readout=0.01")
    p.add_argument("--train-shots", type=int, default=None,
                   help="fit with every circuit expectation from N shots (straight-through gradients; noise-aware)")
    p.add_argument("--train-noise", default=None, metavar="P_OR_CHANNELS",
                   help="fit with noisy gates (exact density matrices; same syntax as --noise)")
    p.add_argument("--output", default="fit-output", metavar="DIR", help="output folder (default: fit-output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit the model to the signal, write the fit, a figure, metrics and the pipeline, and print the result."""
    if args.audio is not None and Path(args.audio).is_file():
        check_wav(args.audio)  # the header's frame cap, before torch is imported or a sample is read

    from .fit_steps import run_fit  # deferred: torch, which `qiren-gen --help` does not load

    return run_fit(args)
