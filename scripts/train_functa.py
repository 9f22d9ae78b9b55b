#!/usr/bin/env python
"""Train a functa model (stage 1: modulated decoder + latent modulator; meta-SGD or auto-decoded latents).

    accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no --cpu \\
        scripts/train_functa.py --train_data_dir faces/ --resolution 16 --output_dir runs/functa
"""
from __future__ import annotations

import logging
import os
import sys

from qiren_gen.runtime import configure_allocator, run_reporting_errors
from qiren_gen.runtime.suggestions import SuggestingArgumentParser
from qiren_gen.training.argument_bounds import check_numeric_flags
from qiren_gen.training.arguments import add_stage1_arguments, config_from_args
from qiren_gen.training.functa_trainer import train_functa
from qiren_gen.training.outputs import output_dir_lock


def parse_args(argv: list[str] | None = None):
    """Arguments in diffusers' example-script style -> a ``FunctaTrainingConfig``."""
    p = SuggestingArgumentParser(description="Train a functa model (stage 1) on an image dataset.")
    add_stage1_arguments(p)
    return config_from_args(p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    """Train stage 1; a user error is one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    configure_allocator()  # large images: chunked steps keep activations on the heap (QIREN_GEN_MALLOC=default: off)

    def run() -> dict:
        check_numeric_flags(cfg)  # before any folder exists
        with output_dir_lock(cfg.output_dir, "train_functa"):  # a second run into the folder: refused at once
            return train_functa(cfg)

    code, summary = run_reporting_errors("train_functa", run)
    if code:
        return code
    if int(os.environ.get("RANK", "0")) == 0 and summary["last_loss"] is None:
        print(f"nothing to do: already at step {summary['steps']}; models saved to {cfg.output_dir}")
    elif int(os.environ.get("RANK", "0")) == 0:
        print(f"done: {summary['steps']} steps, loss {summary['last_loss']:.5f}, PSNR {summary['last_psnr']:.2f} dB; "
              f"saved to {cfg.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
