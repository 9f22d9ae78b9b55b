"""What each stage of ``scripts/train_pipeline.py`` starts or resumes from: the decoder's channels, the pretrained
encoding stage 1 keeps, where fine-tuned latents start, the latents stage 2 learns, and each stage's checkpoint.
The run around the stages (output folder, data, validation, reports, model card) is ``pipeline_run``."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tqdm.auto import tqdm

from ..data.datasets import IMAGE_COLUMN, ImageCollator
from ..data.indexed import IndexedCollator, IndexedImages, IndexedStream
from ..functa import encode_images
from ..io.atomic import save_tensors
from ..models.adapt import adapt_output_channels
from .checkpointing import list_checkpoints
from .latent_table import LATENTS_FILE, trained_rows
from .pipeline_run import report_psnr
from .prior import fingerprint

STAGE1_FOLDER = "stage1"
"""Stage 1's checkpoints and models inside a ``train_pipeline`` output folder."""
STAGE2_FOLDER = "stage2"
"""Stage 2's checkpoints and latents inside a ``train_pipeline`` output folder."""
FORMER_STAGE2_FOLDER = "prior_training"
"""Stage 2's folder in output folders made before it was named ``stage2``; `stage2_dir` keeps using it there."""

LATENT_INITS = ("encode", "mean", "zero")
"""How a fine-tuned auto-decoded table starts each image's latent (no pass over all images before the first step):
``encode`` (the default): ``--latent_init_steps`` Adam steps on the image's first visit (default: the modulator's own
encoding steps), so the decoder never moves to fit half-encoded latents; ``mean``: the pretrained prior's mean latent;
``zero``: zeros."""

FINE_TUNING_LEARNING_RATE = 3e-4
"""Default ``--learning_rate`` of stage 1 from a pretrained pipeline. With encoded latents, the README's recipe on 20
LFW faces raised the training images' reconstruction PSNR at 3e-4 and at 1e-3, the held-out images' only at 3e-4."""
SCRATCH_LEARNING_RATE = 1e-3
"""Default ``--learning_rate`` of stage 1 from scratch."""


def stage2_dir(output_dir: str | Path) -> Path:
    """Stage 2's folder in ``output_dir``: ``stage2``, or ``prior_training`` when an earlier run left its stage-2 work
    there (and no ``stage2`` exists), so that the run resumes from its checkpoints and finds its cached latents. The
    old folder is used in place, never moved: every process reaches the same answer from the same folder."""
    output_dir = Path(output_dir)
    former = output_dir / FORMER_STAGE2_FOLDER
    return former if former.is_dir() and not (output_dir / STAGE2_FOLDER).exists() else output_dir / STAGE2_FOLDER


def match_channels(decoder, channels: int, adapt: bool):
    """The decoder for ``channels``: unchanged, adapted (``--adapt_output_channels``), or a one-line error."""
    have = decoder.config.out_channels
    if have == channels:
        return decoder
    if not adapt:
        word = {1: "grayscale", 3: "RGB"}
        raise ValueError(f"the pretrained decoder renders {have} channel(s) ({word[have]}) but the data is "
                         f"{word[channels]}; pass --channels {have} to convert the data, or --adapt_output_channels")
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


def latent_start(modulator, prior, args) -> tuple[torch.Tensor | None, int]:
    """Auto-decoding from a pretrained pipeline: ``(init_latents, first_visit_steps)`` per ``--latent_init``, all
    cheap (nothing is encoded before the first step). ``(None, 0)`` otherwise (meta-SGD, scratch). Resuming, the
    table comes from the checkpoint (``init_latents`` None), but ``encode`` still encodes the images that no step
    visited before the checkpoint, as the uninterrupted run did."""
    if args.pretrained_model_name_or_path is None or getattr(modulator.config, "encoding", "") != "auto_decode":
        return None, 0
    steps = args.latent_init_steps or modulator.config.inner_steps  # auto-decoding: its own encoding steps
    if args.resume_from_checkpoint and list_checkpoints(Path(args.output_dir) / STAGE1_FOLDER):
        return None, steps if args.latent_init == "encode" else 0
    dim = modulator.config.latent_dim
    if args.latent_init == "mean" and prior is not None:
        return prior.latent_mean.detach().float().cpu().clone(), 0
    if args.latent_init == "encode":
        return torch.zeros(dim), steps
    return torch.zeros(dim), 0


def prior_latents(decoder, modulator, data, stage1_dir: Path, args, accelerator,
                  trained: torch.Tensor | None = None) -> torch.Tensor:
    """The latents the prior learns: the rows of stage 1's auto-decoded table that trained (``trained``, which
    every rank holds in memory after stage 1, else the table the main process saved), or (meta-SGD) every training
    image encoded batch by batch (cached; the images are never all in memory)."""
    if getattr(modulator.config, "encoding", "meta_sgd") == "auto_decode":
        if trained is not None:
            return trained
        accelerator.wait_for_everyone()  # the main process wrote the table at the end of stage 1
        return trained_rows(load_file(str(stage1_dir / LATENTS_FILE)))
    with accelerator.main_process_first():  # the main process encodes and caches; the others read the cache
        return encode_training_data(decoder, modulator, data, args,
                                    stage2_dir(stage1_dir.parent) / "latents.safetensors",
                                    progress=accelerator.is_local_main_process)


def encode_training_data(decoder, modulator, data, args, cache_file: Path, progress: bool = True) -> torch.Tensor:
    """Meta-SGD latents of every training image (and mirror, with ``--flip_augment``), decoded and encoded per batch
    of 64; cached in ``cache_file`` under a fingerprint of the models and the data's identity."""
    resolution = data.resolution
    key = "-".join([fingerprint(decoder, modulator), str(args.dataset_name or Path(args.train_data_dir).resolve()),
                    args.split, str(data.num_train), str(resolution), str(data.channels), str(args.flip_augment)])
    if cache_file.is_file():
        with safe_open(str(cache_file), framework="pt") as f:
            if (f.metadata() or {}).get("fingerprint") == key:
                return f.get_tensor("latents")
    source = IndexedStream(data.train, data.num_train) if data.streamed else IndexedImages(data.train)
    loader = torch.utils.data.DataLoader(source, batch_size=64, num_workers=args.dataloader_num_workers,
                                         collate_fn=IndexedCollator(ImageCollator(IMAGE_COLUMN, resolution,
                                                                                  data.channels)))
    device = next(decoder.parameters()).device
    chunks = []
    for images, _ in tqdm(loader, desc="stage 2: encode", disable=not progress):
        if images.shape[0]:
            images = images.to(device)
            chunks.append(encode_images(decoder, modulator, images).cpu())
            if args.flip_augment:
                chunks.append(encode_images(decoder, modulator, images.flip(-1)).cpu())
    if not chunks:
        raise ValueError("no readable training image to encode for the prior")
    latents = torch.cat(chunks).float().contiguous()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(cache_file, {"latents": latents}, metadata={"fingerprint": key})  # a crash leaves no half a cache
    return latents


def stage_resume(resume: str | None, stage_dir: Path) -> str | None:
    """What one stage resumes from: ``latest`` of its own folder, or the given checkpoint when it is one of its own."""
    if not resume or resume == "latest":
        return resume
    path = Path(resume).resolve()
    return str(path) if path.parent == stage_dir.resolve() else "latest"


__all__ = ["FINE_TUNING_LEARNING_RATE", "FORMER_STAGE2_FOLDER", "LATENT_INITS", "SCRATCH_LEARNING_RATE",
           "STAGE1_FOLDER", "STAGE2_FOLDER", "encode_training_data", "encoding_settings", "latent_start",
           "match_channels", "prior_latents", "report_psnr", "stage2_dir", "stage_resume"]
