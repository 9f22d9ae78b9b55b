"""Do a generation pipeline's four components fit together? Types, finite weights, latent and modulation sizes.

Read from the components' configs and weights only (no forward pass), so building a pipeline stays cheap.
"""
from __future__ import annotations

import torch

from ..models import DECODER_CLASSES, LatentModulator
from ..models.denoiser import LatentDenoiser
from .schedulers import check_scheduler

IMAGE_COORDINATES = 2
"""Coordinate dimensions of an image decoder's input: (y, x)."""


def _check_types(decoder, modulator, prior, scheduler) -> None:
    for name, obj, cls in (("decoder", decoder, DECODER_CLASSES), ("modulator", modulator, LatentModulator),
                           ("prior", prior, LatentDenoiser)):
        if not isinstance(obj, cls):
            expected = cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls)
            raise ValueError(f"pipeline component '{name}' must be a {expected}, got {type(obj).__name__}")
    check_scheduler(scheduler)


def _check_finite(decoder, modulator, prior) -> None:
    for name, model in (("decoder", decoder), ("modulator", modulator), ("prior", prior)):
        if not all(bool(torch.isfinite(t).all()) for t in [*model.parameters(), *model.buffers()]
                   if t.is_floating_point()):
            raise ValueError(f"pipeline component '{name}' has NaN or infinite weights (damaged or diverged model)")


def _check_sizes(decoder, modulator, prior) -> None:
    if prior.config.latent_dim != modulator.config.latent_dim:
        raise ValueError(
            f"mismatched components: prior latent_dim {prior.config.latent_dim} != modulator latent_dim "
            f"{modulator.config.latent_dim}"
        )
    if modulator.config.modulation_dim != decoder.modulation_dim:
        raise ValueError(
            f"mismatched components: the modulator gives {modulator.config.modulation_dim} modulations per image, "
            f"the decoder takes {decoder.modulation_dim}"
        )
    if decoder.config.in_features != IMAGE_COORDINATES:
        raise ValueError(f"mismatched components: the decoder takes {decoder.config.in_features}-D coordinates, an "
                         f"image pipeline gives {IMAGE_COORDINATES}-D ones")


def check_components(decoder, modulator, prior, scheduler) -> None:
    """Raise ``ValueError`` (one line) when the four components do not fit together: their types, NaN or infinite
    weights, the prior's and modulator's latent sizes, the modulator's output and the decoder's input."""
    _check_types(decoder, modulator, prior, scheduler)
    _check_finite(decoder, modulator, prior)
    _check_sizes(decoder, modulator, prior)


__all__ = ["IMAGE_COORDINATES", "check_components"]
