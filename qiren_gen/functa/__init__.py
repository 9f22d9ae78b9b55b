"""Functa: encode images to per-image latents and decode latents to images at any resolution.

The functions live in ``codec``; this package is their one public home (``from qiren_gen.functa import encode_images``).
"""
from .chunked import STEP_MEMORY_BUDGET, backward_per_image_mse, step_chunk_points
from .codec import (
    DEFAULT_CHUNK_POINTS,
    RENDER_MEMORY_BUDGET,
    decode_latents,
    encode_images,
    encode_with_loss,
    images_to_targets,
    inner_loop,
    optimise_latents,
    per_image_mse,
    render_chunk_points,
)
from .superres import encode_area_consistent, prior_superresolve

__all__ = ["DEFAULT_CHUNK_POINTS", "RENDER_MEMORY_BUDGET", "STEP_MEMORY_BUDGET", "backward_per_image_mse",
           "decode_latents", "encode_area_consistent", "encode_images", "encode_with_loss", "images_to_targets",
           "inner_loop", "optimise_latents", "per_image_mse", "prior_superresolve", "render_chunk_points",
           "step_chunk_points"]
