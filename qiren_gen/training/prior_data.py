"""What ``scripts/train_prior.py`` trains on: a stage-1 model folder, its images or its auto-decoded latents."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def load_stage1(folder: str | Path):
    """``(decoder, modulator)`` from ``folder/decoder`` and ``folder/modulator`` (safetensors only)."""
    from .. import models
    from ..pipelines.json_files import read_json_file
    from ..pipelines.loading import load_checked_component

    folder = Path(folder)
    for sub in ("decoder", "modulator"):
        if not (folder / sub / "config.json").is_file():
            raise OSError(f"no stage-1 {sub} in '{folder}' (expected {folder / sub / 'config.json'})")
        if not any((folder / sub).glob("*.safetensors")):
            raise OSError(f"no safetensors weights in '{folder / sub}' (weights are loaded only as safetensors)")
    config_file = folder / "decoder" / "config.json"
    try:
        name = read_json_file(config_file).get("_class_name")
    except ValueError as exc:
        raise ValueError(f"not a valid model config: {exc}") from None
    known = tuple(cls.__name__ for cls in models.DECODER_CLASSES)
    if name not in known:
        raise ValueError(f"'{folder / 'decoder'}' holds a {str(name)[:80]}, not one of {known}")
    decoder = load_checked_component(folder / "decoder", getattr(models, name))
    modulator = load_checked_component(folder / "modulator", models.LatentModulator)
    return decoder.eval(), modulator.eval()


def load_images(args: argparse.Namespace, channels: int, resolution: int) -> torch.Tensor:
    """All training images as ``(N, C, R, R)`` in [-1, 1] (plus mirror images with ``--flip_augment``)."""
    from ..data.datasets import IMAGE_COLUMN, ImageCollator, load_image_dataset

    ds = load_image_dataset(dataset_name=args.dataset_name, data_dir=args.train_data_dir, split=args.split,
                            image_column=args.image_column, max_samples=args.max_train_samples)
    images = ImageCollator(IMAGE_COLUMN, resolution, channels)([ex for ex in ds])
    if images.shape[0] < 2:
        raise ValueError(f"need at least 2 readable images to train a prior, got {images.shape[0]}")
    if args.flip_augment:
        images = torch.cat([images, images.flip(-1)])
    return images


def load_stage1_latents(folder: str | Path, latent_dim: int) -> torch.Tensor:
    """The auto-decoded training latents ``(N, latent_dim)`` a stage-1 run saved (``LATENTS_FILE``)."""
    from safetensors.torch import load_file

    from .functa_trainer import LATENTS_FILE, trained_rows

    path = Path(folder) / LATENTS_FILE
    if not path.is_file():
        raise OSError(f"no {LATENTS_FILE} in '{folder}' (stage 1 saves it only with --encoding auto_decode)")
    latents = trained_rows(load_file(str(path)))
    if latents is None or latents.ndim != 2 or latents.shape[1] != latent_dim or latents.shape[0] < 2:
        raise ValueError(f"'{path}' must hold 'latents' of shape (N >= 2, {latent_dim}), got "
                         f"{None if latents is None else tuple(latents.shape)}")
    return latents.float()


__all__ = ["load_images", "load_stage1", "load_stage1_latents"]
