#!/usr/bin/env python
"""Train the latent diffusion prior of a QIREN functional model (stage 2).

    accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        scripts/train_prior.py --stage1_model runs/stage1 --train_data_dir data/lfw --resolution 25 \\
        --output_dir runs/prior --pipeline_output pipelines/my-faces --resume_from_checkpoint latest
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from accelerate.utils import set_seed
from diffusers import DDIMScheduler

from qiren_gen.data.datasets import check_resolution
from qiren_gen.models import LatentDenoiser
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.pipelines.loading import load_stage1
from qiren_gen.runtime import run_reporting_errors
from qiren_gen.runtime.suggestions import SuggestingArgumentParser
from qiren_gen.training.argument_bounds import check_numeric_flags
from qiren_gen.training.launch import make_accelerator
from qiren_gen.training.outputs import output_dir_lock, save_folder_atomically, save_pipeline_atomically
from qiren_gen.training.prior import (
    PRIOR_MODEL_DEFAULTS,
    PriorTrainingConfig,
    encode_dataset,
    make_training_scheduler,
    train_prior,
)
from qiren_gen.training.prior_data import load_images, load_stage1_latents
from qiren_gen.training.randomness import INIT_STEP, STAGE2, seeded_default_rng


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Arguments in diffusers' example-script style (underscored long options); the prior's defaults are the
    recipe's (``PriorTrainingConfig`` and ``PRIOR_MODEL_DEFAULTS``, as ``scripts/train_pipeline.py``)."""
    defaults, model = PriorTrainingConfig(), PRIOR_MODEL_DEFAULTS
    p = SuggestingArgumentParser(description="Train the latent diffusion prior of a QIREN functional model.")
    p.add_argument("--stage1_model", required=True,
                   help="folder with decoder/ and modulator/ subfolders (a stage-1 output or a pipeline folder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--train_data_dir", help="local image folder (datasets 'imagefolder' layout)")
    src.add_argument("--dataset_name", help="Hugging Face dataset id")
    p.add_argument("--split", default="train")
    p.add_argument("--image_column", default=None, help="default: 'image', else the one image-typed column")
    p.add_argument("--resolution", type=int, required=True, help="square image size the images are resized to")
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--flip_augment", action="store_true", help="also encode horizontally flipped images")
    p.add_argument("--encode_steps", type=int, default=None, help="inner steps (default: the modulator's)")
    p.add_argument("--stage1_latents", action="store_true",
                   help="train on the auto-decoded latents stage 1 learned (STAGE1_MODEL/latents.safetensors, "
                        "mirrors included if stage 1 had them) instead of encoding the images")
    p.add_argument("--latents_cache", default=None, help="safetensors cache (default OUTPUT_DIR/latents.safetensors)")
    p.add_argument("--hidden_dim", type=int, default=model["hidden_dim"])
    p.add_argument("--num_blocks", type=int, default=model["num_blocks"])
    p.add_argument("--time_embed_dim", type=int, default=model["time_embed_dim"])
    p.add_argument("--dropout", type=float, default=model["dropout"])
    p.add_argument("--num_train_timesteps", type=int, default=1000)
    p.add_argument("--max_train_steps", type=int, default=defaults.max_train_steps)
    p.add_argument("--train_batch_size", type=int, default=defaults.train_batch_size)
    p.add_argument("--learning_rate", type=float, default=defaults.learning_rate)
    p.add_argument("--weight_decay", type=float, default=defaults.weight_decay)
    p.add_argument("--lr_warmup_steps", type=int, default=defaults.lr_warmup_steps)
    p.add_argument("--checkpointing_steps", type=int, default=defaults.checkpointing_steps)
    p.add_argument("--checkpoints_total_limit", type=int, default=defaults.checkpoints_total_limit)
    p.add_argument("--resume_from_checkpoint", default=None, help='"latest" or a checkpoint folder')
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--pipeline_output", default=None, help="also save a complete QirenGenerationPipeline here")
    return p.parse_args(argv)


def train_prior_from_args(argv: list[str] | None = None) -> dict:
    """Run stage 2 end to end; returns a summary (steps, final loss, number of latents, output folders)."""
    args = parse_args(argv)
    check_numeric_flags(args)  # before any folder exists
    check_resolution(args.resolution)
    accelerator = make_accelerator(seed=args.seed)  # gloo for CPU processes; warnings from the main process only
    set_seed(args.seed)
    decoder, modulator = load_stage1(args.stage1_model)
    decoder.to(accelerator.device)
    modulator.to(accelerator.device)
    resolution = args.resolution
    output_dir = Path(args.output_dir)
    cache = Path(args.latents_cache) if args.latents_cache else output_dir / "latents.safetensors"
    if args.stage1_latents:
        latents = load_stage1_latents(args.stage1_model, modulator.config.latent_dim)
    else:
        with accelerator.main_process_first():  # the main process encodes and caches; the others read the cache
            images = load_images(args, decoder.config.out_channels, resolution)
            latents = encode_dataset(decoder, modulator, images, cache, steps=args.encode_steps,
                                     progress=accelerator.is_local_main_process)
    with seeded_default_rng(args.seed, STAGE2, 0, INIT_STEP):  # one init on every rank, resumed or not
        denoiser = LatentDenoiser(latent_dim=modulator.config.latent_dim, hidden_dim=args.hidden_dim,
                                  num_blocks=args.num_blocks, time_embed_dim=args.time_embed_dim,
                                  dropout=args.dropout, sample_size=resolution)
    scheduler = make_training_scheduler(args.num_train_timesteps)
    cfg = PriorTrainingConfig(
        max_train_steps=args.max_train_steps, batch_size=args.train_batch_size, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, lr_warmup_steps=args.lr_warmup_steps,
        checkpointing_steps=args.checkpointing_steps, checkpoints_total_limit=args.checkpoints_total_limit,
        seed=args.seed,
    )
    result = train_prior(denoiser, latents, scheduler, accelerator, output_dir, cfg, args.resume_from_checkpoint)
    summary = {"global_step": result["global_step"], "num_latents": int(latents.shape[0]),
               "final_loss": sum(result["losses"][-50:]) / max(1, len(result["losses"][-50:])) if result["losses"]
               else None}
    if accelerator.is_main_process:
        denoiser = accelerator.unwrap_model(denoiser).to("cpu").eval()
        save_folder_atomically(denoiser, output_dir / "prior")  # a kill leaves the old folder or none, not a mix
        sampler = DDIMScheduler.from_config(scheduler.config)
        save_folder_atomically(sampler, output_dir / "scheduler")
        if args.pipeline_output:
            pipe = QirenGenerationPipeline(decoder.to("cpu"), modulator.to("cpu"), denoiser, sampler)
            save_pipeline_atomically(pipe, args.pipeline_output)  # a kill mid-save leaves the old pipeline or none
            summary["pipeline"] = str(args.pipeline_output)
        accelerator.print(json.dumps(summary))
    accelerator.end_training()
    return summary


def main(argv: list[str] | None = None) -> int:
    """``train_prior_from_args`` for scripts: a user error (bad path, bad value, offline Hub) is one line on stderr
    and exit code 2."""
    def run() -> dict:
        args = parse_args(argv)
        check_numeric_flags(args)  # before any folder exists
        with output_dir_lock(args.output_dir, "train_prior"):  # a second run into the folder: refused at once
            return train_prior_from_args(argv)

    return run_reporting_errors("train_prior", run)[0]


if __name__ == "__main__":
    sys.exit(main())
