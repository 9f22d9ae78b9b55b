"""What ``scripts/train_prior.py`` trains on: a stage-1 model's images or its auto-decoded latents (the stage-1 models
themselves load through ``qiren_gen.pipelines.loading.load_stage1``)."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..data.datasets import IMAGE_COLUMN, ImageCollator, load_image_dataset
from .latent_table import LATENTS_FILE, trained_rows


def load_images(args: argparse.Namespace, channels: int, resolution: int) -> torch.Tensor:
    """All training images as ``(N, C, R, R)`` in [-1, 1] (plus mirror images with ``--flip_augment``)."""
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
    path = Path(folder) / LATENTS_FILE
    if not path.is_file():
        raise OSError(f"no {LATENTS_FILE} in '{folder}' (stage 1 saves it only with --encoding auto_decode)")
    latents = trained_rows(load_file(str(path)))
    if latents is None or latents.ndim != 2 or latents.shape[1] != latent_dim or latents.shape[0] < 2:
        raise ValueError(f"'{path}' must hold 'latents' of shape (N >= 2, {latent_dim}), got "
                         f"{None if latents is None else tuple(latents.shape)}")
    return latents.float()


__all__ = ["load_images", "load_stage1_latents"]
