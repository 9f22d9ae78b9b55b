"""Driver and command line of ``scripts/train_pipeline.py``: a pretrained pipeline (folder or Hub id) or scratch, plus
images, in; a complete ``QirenGenerationPipeline`` folder out. The shape of diffusers' example training scripts.

Stage 1 trains the decoder + modulator (from the pretrained ones, or built from the decoder flags), stage 2 the latent
diffusion prior (from the pretrained prior, or new) on the training images encoded by stage 1. Both stages share
one ``Accelerator`` (plain ``python`` or ``accelerate launch`` with any number of processes), checkpoint under
``OUTPUT_DIR/stage1`` and ``OUTPUT_DIR/prior_training`` and resume with ``--resume_from_checkpoint latest``.
``OUTPUT_DIR`` ends as the pipeline folder (model card with the data, the steps and the PSNRs before / after).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import torch

from .pipeline_training import (RUN_FILE, Validator, check_output_dir, load_training_data, model_card_sections,
                                reconstruction_psnr, setup_trackers)
from .train_functa import add_stage1_arguments, config_from_args

PSNR_IMAGES = 64
"""Training images whose reconstruction PSNR is reported before and after (the first ones: cost stays bounded)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The stage-1 options of ``train_functa.py`` plus the pipeline, prior, validation and Hub options."""
    p = argparse.ArgumentParser(description="Fine-tune a QIREN generation pipeline (or train one from scratch) on "
                                            "images: stage 1 decoder + modulator, stage 2 prior, a pipeline folder out.")
    p.add_argument("--pretrained_model_name_or_path", default=None,
                   help="pipeline folder or Hub id to start from (default: scratch, decoder from the model flags)")
    add_stage1_arguments(p)
    p.set_defaults(output_dir=None, resolution=None, channels=None, first_order=True, max_train_steps=200,
                   learning_rate=1e-3, train_batch_size=8, checkpointing_steps=50)
    p.add_argument("--adapt_output_channels", action="store_true",
                   help="give a pretrained decoder of other channels (gray vs RGB) an output layer for --channels")
    prior = p.add_argument_group("stage 2: prior")
    prior.add_argument("--prior_max_train_steps", type=int, default=1000)
    prior.add_argument("--prior_train_batch_size", type=int, default=64)
    prior.add_argument("--prior_learning_rate", type=float, default=1e-3)
    prior.add_argument("--prior_lr_warmup_steps", type=int, default=50)
    prior.add_argument("--prior_checkpointing_steps", type=int, default=500)
    prior.add_argument("--prior_hidden_dim", type=int, default=256, help="scratch only (a pretrained prior keeps its own)")
    prior.add_argument("--prior_num_blocks", type=int, default=3, help="scratch only")
    prior.add_argument("--prior_dropout", type=float, default=0.1, help="scratch only")
    val = p.add_argument_group("validation and logging")
    val.add_argument("--validation_steps", type=int, default=100,
                     help="held-out PSNR (stage 1) / sample grid (stage 2) every this many steps, in samples/")
    val.add_argument("--validation_images", type=int, default=4, help="images held out of training for validation")
    val.add_argument("--report_to", default="none", help='"tensorboard" (Accelerate tracker) or "none"')
    hub = p.add_argument_group("Hub")
    hub.add_argument("--push_to_hub", action="store_true", help="upload OUTPUT_DIR's pipeline after it is saved")
    hub.add_argument("--hub_model_id", default=None, help="repo id (default: the name of OUTPUT_DIR)")
    hub.add_argument("--hub_token", default=None)
    args = p.parse_args(argv)
    if args.output_dir is None:
        p.error("--output_dir is required")
    if (args.dataset_name is None) == (args.train_data_dir is None):
        p.error("give exactly one of --dataset_name or --train_data_dir")
    for name in ("validation_steps", "prior_max_train_steps", "prior_train_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.validation_images < 0:
        p.error("--validation_images must be >= 0")
    return args


def load_starting_point(args) -> dict:
    """Decoder, modulator and (when pretrained) prior + scheduler + model card sections, on the CPU."""
    if args.pretrained_model_name_or_path is None:
        from ..training.functa_trainer import build_models

        torch.manual_seed(args.seed)
        decoder, modulator = build_models(config_from_args(args, resolution=args.resolution or 32,
                                                           channels=args.channels or 1))
        return {"decoder": decoder, "modulator": modulator, "prior": None, "scheduler": None, "sections": {}}
    from diffusers.utils import logging as diffusers_logging

    from ..pipelines import QirenGenerationPipeline

    diffusers_logging.disable_progress_bar()
    try:
        pipe = QirenGenerationPipeline.from_pretrained(args.pretrained_model_name_or_path)  # the safe loader
    finally:
        diffusers_logging.enable_progress_bar()
    return {"decoder": pipe.decoder, "modulator": pipe.modulator, "prior": pipe.prior, "scheduler": pipe.scheduler,
            "sections": dict(pipe.model_card_sections)}


def match_channels(decoder, channels: int, adapt: bool):
    """The decoder for ``channels``: unchanged, adapted (``--adapt_output_channels``), or a one-line error."""
    have = decoder.config.out_channels
    if have == channels:
        return decoder
    if not adapt:
        word = {1: "grayscale", 3: "RGB"}
        raise ValueError(f"the pretrained decoder renders {have} channel(s) ({word[have]}) but the data is "
                         f"{word[channels]}; pass --channels {have} to convert the data, or --adapt_output_channels")
    from ..models.adapt import adapt_output_channels

    return adapt_output_channels(decoder, channels)


def encoding_settings(modulator) -> tuple[dict, str]:
    """Stage-1 config overrides that keep a pretrained modulator's encoding, and a line for the model card."""
    config = modulator.config
    encoding = getattr(config, "encoding", "meta_sgd")  # folders older than auto-decoding are meta-SGD
    if encoding == "auto_decode":
        return ({"encoding": encoding, "latent_dim": config.latent_dim, "latent_learning_rate": config.encode_lr,
                 "latent_l2": config.latent_l2, "encode_steps": config.inner_steps},
                f"auto-decoded latents (one per training image, Adam {config.encode_lr}, L2 {config.latent_l2}) "
                "trained jointly with the decoder")
    return ({"encoding": encoding, "latent_dim": config.latent_dim, "inner_steps": config.inner_steps},
            "first-order meta-SGD (learned per-dimension inner step sizes)")


def pretrained_table(decoder, modulator, data, args) -> torch.Tensor | None:
    """Auto-decoding from a pretrained pipeline: the training images' (and mirrors') encodings start the latent table,
    so fine-tuning begins at the pretrained fit. None otherwise (meta-SGD, or scratch)."""
    from ..functa import encode_images

    from ..training.checkpointing import list_checkpoints

    if args.pretrained_model_name_or_path is None or getattr(modulator.config, "encoding", "") != "auto_decode":
        return None
    if args.resume_from_checkpoint and list_checkpoints(Path(args.output_dir) / "stage1"):
        return None  # the table comes from the checkpoint
    images = torch.cat([data.images, data.images.flip(-1)]) if args.flip_augment else data.images
    device = next(decoder.parameters()).device
    return torch.cat([encode_images(decoder, modulator, images[i : i + 64].to(device))
                      for i in range(0, images.shape[0], 64)])


def prior_latents(decoder, modulator, data, stage1_dir: Path, flip: bool, accelerator) -> torch.Tensor:
    """The latents the prior learns: the auto-decoded table of stage 1, or every training image encoded (cached)."""
    from safetensors.torch import load_file

    from ..training.functa_trainer import LATENTS_FILE
    from ..training.prior import encode_dataset

    if getattr(modulator.config, "encoding", "meta_sgd") == "auto_decode":
        accelerator.wait_for_everyone()  # the main process wrote the table at the end of stage 1
        return load_file(str(stage1_dir / LATENTS_FILE))["latents"]
    images = torch.cat([data.images, data.images.flip(-1)]) if flip else data.images
    with accelerator.main_process_first():  # the main process encodes and caches; the others read the cache
        return encode_dataset(decoder, modulator, images, stage1_dir.parent / "prior_training" / "latents.safetensors",
                              progress=accelerator.is_local_main_process)


def stage_resume(resume: str | None, stage_dir: Path) -> str | None:
    """What one stage resumes from: ``latest`` of its own folder, or the given checkpoint when it is one of its own."""
    if not resume or resume == "latest":
        return resume
    path = Path(resume).resolve()
    return str(path) if path.parent == stage_dir.resolve() else "latest"


def train_pipeline(args: argparse.Namespace, command: str = "") -> dict:
    """Run both stages and save ``args.output_dir`` as a pipeline folder; returns the summary (PSNRs, steps)."""
    from accelerate.utils import set_seed
    from diffusers import DDIMScheduler, DDPMScheduler

    from ..models import LatentDenoiser
    from ..pipelines import QirenGenerationPipeline
    from ..training.launch import make_accelerator
    from ..training.prior import PriorTrainingConfig, make_training_scheduler, train_prior

    began = time.perf_counter()
    out = Path(args.output_dir)
    identity = {"pretrained": args.pretrained_model_name_or_path,
                "data": args.dataset_name or str(Path(args.train_data_dir).resolve()), "split": args.split}
    check_output_dir(out, args.resume_from_checkpoint, identity)  # before anything is loaded or written
    start = load_starting_point(args)
    decoder, modulator, prior = start["decoder"], start["modulator"], start["prior"]
    resolution = args.resolution or (prior.config.sample_size if prior is not None else 32)
    data = load_training_data(args, resolution, args.channels, args.validation_images)
    decoder = match_channels(decoder, data.channels, args.adapt_output_channels)
    log_with, tracker_note = setup_trackers(args.report_to, out)
    accelerator = make_accelerator(args.mixed_precision, args.seed, log_with, str(out / "logs"))
    if tracker_note:
        accelerator.print(f"train_pipeline: {tracker_note}", file=sys.stderr)
    if data.skipped:
        accelerator.print(f"train_pipeline: skipped {data.skipped} unreadable image(s) of {data.description}")
    set_seed(args.seed)
    eval_images = data.images[:PSNR_IMAGES]
    psnr = {"train_count": eval_images.shape[0], "heldout_count": data.heldout.shape[0],
            "train_before": reconstruction_psnr(decoder, modulator, eval_images),
            "heldout_before": reconstruction_psnr(decoder, modulator, data.heldout)}
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_FILE).write_text(json.dumps(identity, indent=2))
    accelerator.wait_for_everyone()
    if log_with:
        accelerator.init_trackers("train_pipeline", config={k: v for k, v in vars(args).items()
                                                             if isinstance(v, (int, float, str, bool))})
    validator = Validator(out, args.validation_steps, data.heldout, args.max_train_steps, accelerator, args.seed)

    # Stage 1: decoder + modulator (the pretrained modulator's encoding: meta-SGD or auto-decoding).
    from ..training.functa_trainer import train_functa

    keep, algorithm = encoding_settings(modulator)
    if args.pretrained_model_name_or_path is None:
        keep = {}  # scratch: the flags built the modulator
    init_latents = pretrained_table(decoder, modulator, data, args)
    stage1_began, stage1_cpu = time.perf_counter(), time.process_time()
    cfg = config_from_args(args, output_dir=str(out / "stage1"), resolution=resolution, channels=data.channels,
                           streaming=False, dataset_name=None, train_data_dir=None,
                           resume_from_checkpoint=stage_resume(args.resume_from_checkpoint, out / "stage1"), **keep)
    stage1 = train_functa(cfg, accelerator=accelerator, init_models=(decoder, modulator), dataset=data.train,
                          on_step=lambda step, _: validator.stage1(decoder, modulator, step),
                          init_latents=init_latents)
    accelerator.free_memory()  # stage 2 registers its own objects for save_state / load_state
    stage1_s, stage1_cpu = time.perf_counter() - stage1_began, time.process_time() - stage1_cpu
    decoder.eval()
    modulator.eval()
    if stage1["steps"] % args.validation_steps:  # the end of stage 1 is always validated once
        validator.stage1(decoder, modulator, stage1["steps"], final=True)
    psnr["train_after"] = reconstruction_psnr(decoder, modulator, eval_images)
    psnr["heldout_after"] = reconstruction_psnr(decoder, modulator, data.heldout)

    # Stage 2: the prior over the training images' latents.
    prior_dir = out / "prior_training"
    latents = prior_latents(decoder, modulator, data, out / "stage1", args.flip_augment, accelerator)
    if prior is None:
        denoiser = LatentDenoiser(latent_dim=modulator.config.latent_dim, hidden_dim=args.prior_hidden_dim,
                                  num_blocks=args.prior_num_blocks, dropout=args.prior_dropout,
                                  sample_size=resolution)
        train_scheduler = make_training_scheduler()
    else:
        denoiser = prior
        denoiser.register_to_config(sample_size=resolution)
        train_scheduler = DDPMScheduler.from_config(start["scheduler"].config)
    denoiser.to(accelerator.device)
    prior_cfg = PriorTrainingConfig(
        max_train_steps=args.prior_max_train_steps, batch_size=args.prior_train_batch_size,
        learning_rate=args.prior_learning_rate, lr_warmup_steps=args.prior_lr_warmup_steps,
        checkpointing_steps=args.prior_checkpointing_steps, checkpoints_total_limit=args.checkpoints_total_limit,
        seed=args.seed, log_every=args.validation_steps)
    sampler = DDIMScheduler.from_config(train_scheduler.config)

    def current_pipeline():
        return QirenGenerationPipeline(decoder, modulator, denoiser, sampler)

    prior_began = time.perf_counter()
    result = train_prior(denoiser, latents, train_scheduler, accelerator, prior_dir, prior_cfg,
                         stage_resume(args.resume_from_checkpoint, prior_dir),
                         on_log=lambda step, loss: validator.prior(current_pipeline, step, loss))

    if result["global_step"] % args.validation_steps and result["losses"]:
        validator.prior(current_pipeline, result["global_step"], result["losses"][-1], final=True)
    summary = {"output_dir": str(out), "stage1_steps": stage1["steps"], "prior_steps": result["global_step"],
               "num_train_images": int(data.images.shape[0]), "num_heldout_images": int(data.heldout.shape[0]),
               "skipped_images": data.skipped, "psnr": psnr, "validation": validator.records,
               "seconds": {"stage1": stage1_s, "prior": time.perf_counter() - prior_began,
                           "median_stage1_step": stage1["median_step_seconds"],
                           "stage1_cpu_per_step": stage1_cpu / max(1, len(stage1["history"]))}}
    if accelerator.is_main_process:
        pipe = QirenGenerationPipeline(decoder.to("cpu"), modulator.to("cpu"), denoiser.to("cpu").eval(), sampler)
        pipe.model_card_sections = model_card_sections(
            args.pretrained_model_name_or_path, data, resolution,
            {"steps": stage1["steps"], "batch_size": args.train_batch_size, "learning_rate": args.learning_rate,
             "algorithm": algorithm},
            {"steps": result["global_step"], "batch_size": args.prior_train_batch_size,
             "learning_rate": args.prior_learning_rate, "pretrained": prior is not None},
            psnr, command, start["sections"])
        pipe.model_card_location = args.hub_model_id if args.push_to_hub else None
        pipe.save_pretrained(out)
        report_psnr(psnr, accelerator.print)
        summary["seconds"]["total"] = time.perf_counter() - began
        (out / "train_pipeline_summary.json").write_text(json.dumps(summary, indent=2))
        accelerator.print("time: {total:.0f} s in all, stage 1 {stage1:.0f} s, prior {prior:.0f} s".format(**summary["seconds"]))
        accelerator.print(f"saved the pipeline to {out} (qiren-gen sample --pipeline {out})")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if args.push_to_hub and accelerator.is_main_process:
        repo = args.hub_model_id or out.name
        try:
            summary["hub_url"] = pipe.push_to_hub(repo, token=args.hub_token)
        except OSError as exc:
            raise OSError(f"{exc} (the pipeline is saved in {out})") from None
    return summary


def report_psnr(psnr: dict, say=print) -> None:
    """The before / after reconstruction PSNR lines of a run."""
    def fmt(v):
        return "n/a" if v is None else f"{v:.2f} dB"

    say(f"reconstruction PSNR, {psnr['train_count']} training images: {fmt(psnr['train_before'])} before -> "
        f"{fmt(psnr['train_after'])} after")
    if psnr["heldout_count"]:
        say(f"reconstruction PSNR, {psnr['heldout_count']} held-out images: {fmt(psnr['heldout_before'])} before -> "
            f"{fmt(psnr['heldout_after'])} after")


def main(argv: list[str] | None = None) -> int:
    """Command line of ``scripts/train_pipeline.py``; a user error is one line on stderr and a non-zero exit."""
    from ..runtime import run_reporting_errors

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    command = "python scripts/train_pipeline.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors("train_pipeline", lambda: train_pipeline(args, command))[0]


__all__ = ["encoding_settings", "load_starting_point", "main", "match_channels", "parse_args", "prior_latents",
           "report_psnr",
           "train_pipeline"]
