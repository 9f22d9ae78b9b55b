#!/usr/bin/env python
"""Fine-tune a pretrained QIREN generation pipeline (folder or Hub id) on your images, or train one from scratch:
stage 1 (decoder + modulator), stage 2 (latent diffusion prior), and OUTPUT_DIR ends as a complete pipeline folder.

    python scripts/train_pipeline.py --pretrained_model_name_or_path pipelines/qiren-lfw-faces \\
        --train_data_dir my_faces/ --output_dir my-pipeline --max_train_steps 30 --prior_max_train_steps 200

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        scripts/train_pipeline.py ... --resume_from_checkpoint latest

Reads top to bottom as the recipe; every step is a documented call of ``qiren_gen.training``.
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
from accelerate.utils import set_seed
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.utils import logging as diffusers_logging

from qiren_gen.models import LatentDenoiser
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.quantum.noise import parse_noise
from qiren_gen.quantum.shots import check_shots, measurement
from qiren_gen.runtime import configure_allocator, run_reporting_errors
from qiren_gen.runtime.suggestions import SuggestingArgumentParser
from qiren_gen.training.argument_bounds import check_numeric_flags
from qiren_gen.training.arguments import add_stage1_arguments, config_from_args
from qiren_gen.training.functa_trainer import build_models, train_functa
from qiren_gen.training.launch import make_accelerator
from qiren_gen.training.outputs import output_dir_lock, save_pipeline_atomically
from qiren_gen.training.pipeline_run import (
    RUN_FILE,
    Validator,
    check_output_dir,
    heldout_line,
    load_training_data,
    model_card_sections,
    reconstruction_psnr,
    report_psnr,
    setup_trackers,
)
from qiren_gen.training.pipeline_stages import (
    FINE_TUNING_LEARNING_RATE,
    LATENT_INITS,
    SCRATCH_LEARNING_RATE,
    STAGE1_FOLDER,
    encoding_settings,
    latent_start,
    match_channels,
    prior_latents,
    stage2_dir,
    stage_resume,
)
from qiren_gen.training.prior import PRIOR_MODEL_DEFAULTS, PriorTrainingConfig, make_training_scheduler, train_prior
from qiren_gen.training.randomness import INIT_STEP, STAGE2, seeded_default_rng
from qiren_gen.training.rank_failures import failure_shared_by_ranks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The stage-1 options of ``train_functa.py`` plus the pipeline, prior, validation and Hub options."""
    p = SuggestingArgumentParser(
        description="Fine-tune a QIREN generation pipeline (or train one from scratch) on images: stage 1 decoder + "
                    "modulator, stage 2 prior, a pipeline folder out.")
    p.add_argument("--pretrained_model_name_or_path", default=None,
                   help="pipeline folder or Hub id to start from (default: scratch, decoder from the model flags)")
    add_stage1_arguments(p)
    p.set_defaults(output_dir=None, resolution=None, channels=None, first_order=True, max_train_steps=200,
                   learning_rate=None, train_batch_size=8, checkpointing_steps=50)
    p.add_argument("--train_shots", type=int, default=None,
                   help="stage 1 under N measurement shots per circuit execution (straight-through gradients)")
    p.add_argument("--train_noise", default=None, metavar="P_OR_CHANNELS",
                   help="stage 1 under noisy gates: a depolarizing p or e.g. depolarizing=1e-3,readout=0.01")
    p.add_argument("--adapt_output_channels", action="store_true",
                   help="give a pretrained decoder of other channels (gray vs RGB) an output layer for --channels")
    prior, defaults = p.add_argument_group("stage 2: prior"), PriorTrainingConfig()  # the recipe's defaults
    prior.add_argument("--prior_max_train_steps", type=int, default=defaults.max_train_steps)
    prior.add_argument("--prior_train_batch_size", type=int, default=defaults.train_batch_size)
    prior.add_argument("--prior_learning_rate", type=float, default=defaults.learning_rate)
    prior.add_argument("--prior_lr_warmup_steps", type=int, default=defaults.lr_warmup_steps)
    prior.add_argument("--prior_checkpointing_steps", type=int, default=defaults.checkpointing_steps)
    prior.add_argument("--prior_hidden_dim", type=int, default=PRIOR_MODEL_DEFAULTS["hidden_dim"],
                       help="scratch only (a pretrained prior keeps its own)")
    prior.add_argument("--prior_num_blocks", type=int, default=PRIOR_MODEL_DEFAULTS["num_blocks"], help="scratch only")
    prior.add_argument("--prior_dropout", type=float, default=PRIOR_MODEL_DEFAULTS["dropout"], help="scratch only")
    val = p.add_argument_group("validation and logging")
    val.add_argument("--validation_steps", type=int, default=100,
                     help="held-out PSNR (stage 1) / sample grid (stage 2) every this many steps, in samples/")
    val.add_argument("--validation_images", type=int, default=4, help="images held out of training for validation")
    val.add_argument("--psnr_images", type=int, default=16,
                     help="the first this many training images: their reconstruction PSNR before / after")
    val.add_argument("--eval_encode_steps", type=int, default=None,
                     help="encoding steps of the validation / before-after PSNR (default: the modulator's)")
    p.add_argument("--latent_init", choices=LATENT_INITS, default="encode",
                   help="fine-tuning an auto-decoded pipeline: where each training image's latent starts (default "
                        "encode: each image encoded before the decoder moves)")
    p.add_argument("--latent_init_steps", type=int, default=None,
                   help="--latent_init encode: Adam steps on an image's first visit (default: the pretrained "
                        "modulator's own encoding steps)")
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
    if args.validation_images < 0 or args.psnr_images < 0:
        p.error("--validation_images and --psnr_images must be >= 0")
    if args.learning_rate is None:  # fine-tuning moves a trained decoder gently; scratch trains it fast
        args.learning_rate = FINE_TUNING_LEARNING_RATE if args.pretrained_model_name_or_path else SCRATCH_LEARNING_RATE
    if any(v is not None and v < 1 for v in (args.latent_init_steps, args.eval_encode_steps)):
        p.error("--latent_init_steps and --eval_encode_steps must be >= 1")
    return args


def load_starting_point(args) -> dict:
    """Decoder, modulator and (when pretrained) prior + scheduler + model card sections, on the CPU."""
    if args.pretrained_model_name_or_path is None:
        torch.manual_seed(args.seed)
        decoder, modulator = build_models(config_from_args(args, resolution=args.resolution or 32,
                                                           channels=args.channels or 1))
        return {"decoder": decoder, "modulator": modulator, "prior": None, "scheduler": None, "sections": {}}
    diffusers_logging.disable_progress_bar()
    try:
        pipe = QirenGenerationPipeline.from_pretrained(args.pretrained_model_name_or_path)  # the safe loader
    finally:
        diffusers_logging.enable_progress_bar()
    return {"decoder": pipe.decoder, "modulator": pipe.modulator, "prior": pipe.prior, "scheduler": pipe.scheduler,
            "sections": dict(pipe.model_card_sections)}


def train_pipeline(args: argparse.Namespace, command: str = "") -> dict:
    """Run both stages and save ``args.output_dir`` as a pipeline folder; returns the summary (PSNRs, steps)."""
    began = time.perf_counter()
    out = Path(args.output_dir)
    identity = {"pretrained": args.pretrained_model_name_or_path,
                "data": args.dataset_name or str(Path(args.train_data_dir).resolve()), "split": args.split}
    check_shots(args.train_shots), parse_noise(args.train_noise)  # bad values: one line, before anything is written
    check_output_dir(out, args.resume_from_checkpoint, identity)  # before anything is loaded or written
    start = load_starting_point(args)
    decoder, modulator, prior = start["decoder"], start["modulator"], start["prior"]
    resolution = args.resolution or (prior.config.sample_size if prior is not None else 32)
    data = load_training_data(args, resolution, args.channels, args.validation_images, args.psnr_images)
    decoder = match_channels(decoder, data.channels, args.adapt_output_channels)
    log_with, tracker_note = setup_trackers(args.report_to, out)
    accelerator = make_accelerator(args.mixed_precision, args.seed, log_with, str(out / "logs"))
    if tracker_note:
        accelerator.print(f"train_pipeline: {tracker_note}", file=sys.stderr)
    if heldout_line(data):
        accelerator.print(f"train_pipeline: {heldout_line(data)}")
    if data.skipped:
        accelerator.print(f"train_pipeline: skipped {data.skipped} unreadable image(s) at the start of "
                          f"{data.description}")
    set_seed(args.seed)
    eval_images, steps = data.eval_train, args.eval_encode_steps
    evaluates = accelerator.is_main_process  # evaluation passes run once, on the main process
    psnr = {"train_count": eval_images.shape[0], "heldout_count": data.heldout.shape[0],
            "train_before": reconstruction_psnr(decoder, modulator, eval_images, steps=steps) if evaluates else None,
            "heldout_before": reconstruction_psnr(decoder, modulator, data.heldout, steps=steps) if evaluates else None}
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_FILE).write_text(json.dumps(identity, indent=2))
    accelerator.wait_for_everyone()
    if log_with:
        accelerator.init_trackers("train_pipeline", config={k: v for k, v in vars(args).items()
                                                             if isinstance(v, (int, float, str, bool))})
    validator = Validator(out, args.validation_steps, data.heldout, args.max_train_steps, accelerator, args.seed,
                          encode_steps=steps)

    # Stage 1: decoder + modulator (the pretrained modulator's encoding: meta-SGD or auto-decoding).
    stage1_began = time.perf_counter()
    stage1, algorithm = train_stage1(args, decoder, modulator, prior, data, resolution, validator, accelerator)
    stage1_s = time.perf_counter() - stage1_began
    if evaluates:
        psnr["train_after"] = reconstruction_psnr(decoder, modulator, eval_images, steps=steps)
        last = validator.records[-1] if validator.records else {}
        psnr["heldout_after"] = (last["heldout_psnr"] if last.get("step") == stage1["steps"] and "heldout_psnr" in last
                                 else reconstruction_psnr(decoder, modulator, data.heldout, steps=steps))

    # Stage 2: the prior over the training images' latents.
    latents = prior_latents(decoder, modulator, data, out / STAGE1_FOLDER, args, accelerator,
                            stage1.get("trained_latents"))
    denoiser, train_scheduler = starting_prior(args, start, modulator.config.latent_dim, resolution)
    denoiser.to(accelerator.device)
    sampler = DDIMScheduler.from_config(train_scheduler.config)

    def current_pipeline():
        return QirenGenerationPipeline(decoder, modulator, denoiser, sampler)

    prior_began = time.perf_counter()
    result = train_stage2(args, denoiser, latents, train_scheduler, accelerator, validator, current_pipeline)
    summary = {"output_dir": str(out), "stage1_steps": stage1["steps"], "stage2_steps": result["global_step"],
               "num_train_images": data.num_train, "num_heldout_images": int(data.heldout.shape[0]),
               "skipped_images": data.skipped, "unreadable_met_in_stage1": stage1["skipped_images"],
               "prior_latents": int(latents.shape[0]), "psnr": psnr, "validation": validator.records,
               "seconds": {"stage1": stage1_s, "stage2": time.perf_counter() - prior_began,
                           "median_stage1_step": stage1["median_step_seconds"],
                           "stage1_cpu_per_step": stage1["median_step_cpu_seconds"],
                           "median_stage1_data_wait": stage1["median_data_wait_seconds"]}}

    # The pipeline folder (and the Hub).
    card = {"stage1": {"steps": stage1["steps"], "batch_size": args.train_batch_size,
                       "learning_rate": args.learning_rate, "algorithm": algorithm},
            "prior": {"steps": result["global_step"], "batch_size": args.prior_train_batch_size,
                      "learning_rate": args.prior_learning_rate, "pretrained": prior is not None}}
    pipe = None
    with failure_shared_by_ranks(accelerator, f"the pipeline to {out}", kept="the checkpoints are intact"):
        if accelerator.is_main_process:
            pipe = QirenGenerationPipeline(decoder.to("cpu"), modulator.to("cpu"), denoiser.to("cpu").eval(), sampler)
            pipe.model_card_sections = model_card_sections(args.pretrained_model_name_or_path, data, resolution,
                                                           card["stage1"], card["prior"], psnr, command,
                                                           start["sections"])
            pipe.model_card_location = args.hub_model_id if args.push_to_hub else None
            save_pipeline_atomically(pipe, out)  # a kill mid-save leaves the previous pipeline or none, never a mix
            report_psnr(psnr, accelerator.print)
            summary["seconds"]["total"] = time.perf_counter() - began
            (out / "train_pipeline_summary.json").write_text(json.dumps(summary, indent=2))
            accelerator.print("time: {total:.0f} s in all, stage 1 {stage1:.0f} s, stage 2 {stage2:.0f} s".format(
                **summary["seconds"]))
            accelerator.print(f"saved the pipeline to {out} (qiren-gen sample --pipeline {out})")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if args.push_to_hub and accelerator.is_main_process:
        try:
            summary["hub_url"] = pipe.push_to_hub(args.hub_model_id or out.name, token=args.hub_token)
        except OSError as exc:
            raise OSError(f"{exc} (the pipeline is saved in {out})") from None
    return summary


def train_stage1(args, decoder, modulator, prior, data, resolution: int, validator: Validator, accelerator
                 ) -> tuple[dict, str]:
    """Stage 1 in ``OUTPUT_DIR/stage1`` under the training shots / noise, keeping a pretrained modulator's encoding;
    the end always validated once. Returns ``train_functa``'s summary and the model card's words for the encoding."""
    out = Path(args.output_dir) / STAGE1_FOLDER
    keep, algorithm = encoding_settings(modulator)
    if args.pretrained_model_name_or_path is None:
        keep = {}  # scratch: the flags built the modulator
    init_latents, first_visit_steps = latent_start(modulator, prior, args)
    cfg = config_from_args(args, output_dir=str(out), resolution=resolution, channels=data.channels,
                           streaming=data.streamed, dataset_name=None, train_data_dir=None,
                           resume_from_checkpoint=stage_resume(args.resume_from_checkpoint, out), **keep)
    device_mode = measurement(decoder, args.train_shots, parse_noise(args.train_noise),
                              train_shots=args.train_shots is not None)  # shots: train_functa seeds each step's draws
    with device_mode:  # noise-aware stage 1 (a no-op without --train_shots / --train_noise)
        stage1 = train_functa(cfg, accelerator=accelerator, init_models=(decoder, modulator), dataset=data.train,
                              on_step=lambda step, _: validator.stage1(decoder, modulator, step),
                              init_latents=init_latents, first_visit_steps=first_visit_steps,
                              stream_capacity=data.num_train)
    accelerator.free_memory()  # stage 2 registers its own objects for save_state / load_state
    decoder.eval()
    modulator.eval()
    if stage1["steps"] % args.validation_steps:  # the end of stage 1 is always validated once
        validator.stage1(decoder, modulator, stage1["steps"], final=True)
    return stage1, algorithm


def starting_prior(args, start: dict, latent_dim: int, resolution: int) -> tuple[LatentDenoiser, DDPMScheduler]:
    """The prior stage 2 trains and its noise schedule: the pretrained ones, or a new prior of the flags' size."""
    if start["prior"] is None:
        with seeded_default_rng(args.seed, STAGE2, 0, INIT_STEP):  # the same init however stage 1 went
            denoiser = LatentDenoiser(latent_dim=latent_dim, hidden_dim=args.prior_hidden_dim,
                                      num_blocks=args.prior_num_blocks, dropout=args.prior_dropout,
                                      sample_size=resolution)
        return denoiser, make_training_scheduler()
    denoiser = start["prior"]
    denoiser.register_to_config(sample_size=resolution)
    return denoiser, DDPMScheduler.from_config(start["scheduler"].config)


def train_stage2(args, denoiser, latents, train_scheduler, accelerator, validator: Validator, current_pipeline
                 ) -> dict:
    """Stage 2 in ``OUTPUT_DIR/stage2`` (``prior_training`` in folders of earlier versions) with the ``--prior_*``
    settings, a sample grid every ``--validation_steps`` and at the end; returns ``train_prior``'s result."""
    prior_dir = stage2_dir(args.output_dir)
    prior_cfg = PriorTrainingConfig(
        max_train_steps=args.prior_max_train_steps, batch_size=args.prior_train_batch_size,
        learning_rate=args.prior_learning_rate, lr_warmup_steps=args.prior_lr_warmup_steps,
        checkpointing_steps=args.prior_checkpointing_steps, checkpoints_total_limit=args.checkpoints_total_limit,
        seed=args.seed, log_every=args.validation_steps)
    result = train_prior(denoiser, latents, train_scheduler, accelerator, prior_dir, prior_cfg,
                         stage_resume(args.resume_from_checkpoint, prior_dir),
                         on_log=lambda step, loss: validator.stage2(current_pipeline, step, loss))
    if result["global_step"] % args.validation_steps and result["losses"]:
        validator.stage2(current_pipeline, result["global_step"], result["losses"][-1], final=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line of ``scripts/train_pipeline.py``; a user error is one line on stderr and a non-zero exit."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    configure_allocator()  # large images: chunked steps keep activations on the heap (QIREN_GEN_MALLOC=default: off)
    command = "python scripts/train_pipeline.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    def run() -> dict:
        check_numeric_flags(args)  # before any folder exists
        with output_dir_lock(args.output_dir, "train_pipeline"):  # a second run into the folder: refused at once
            return train_pipeline(args, command)

    return run_reporting_errors("train_pipeline", run)[0]


if __name__ == "__main__":
    sys.exit(main())
