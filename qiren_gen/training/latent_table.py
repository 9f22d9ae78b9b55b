"""Where an auto-decoded latent table's rows start and where they end up: encoded on an image's first visit,
saved as ``LATENTS_FILE`` beside the stage-1 models, and read back (the rows that trained) for stage 2."""
from __future__ import annotations

from pathlib import Path

import torch

from ..functa import encode_images
from ..io.atomic import save_tensors
from .latent_rows import LatentTable
from .rank_iterators import all_ranks

LATENTS_FILE = "latents.safetensors"
"""Auto-decoded training latents (key ``latents``, one row per training item) saved next to decoder/ and modulator/."""


def first_visit_encode(decoder, modulator, table: LatentTable, images: torch.Tensor, indices: torch.Tensor,
                       steps: int, accelerator) -> None:
    """Encode the batch's never-seen images with ``steps`` Adam steps (decoder frozen) into their table rows, on
    every rank alike (rows and latents are gathered)."""
    rows = indices.to(table.visited.device)
    new = ~table.visited[rows]
    latents = encode_images(decoder, modulator, images[new], steps=steps) if new.any() else None
    dim = table.latents.shape[1]
    local = latents if latents is not None else torch.zeros(0, dim, device=table.latents.device)
    mask_rows = all_ranks(rows[new], accelerator)
    gathered = all_ranks(local.to(table.latents.dtype), accelerator)
    keep = mask_rows >= 0
    if keep.any():
        with torch.no_grad():
            table.latents[mask_rows[keep]] = gathered[keep]


def save_latent_table(table: LatentTable, folder: Path) -> None:
    """``folder/LATENTS_FILE``: the table's ``latents`` and its ``visited`` mask (what stage 2 reads)."""
    save_tensors(Path(folder) / LATENTS_FILE, {"latents": table.latents.detach().to("cpu").contiguous(),
                                               "visited": table.visited.to("cpu").contiguous()})


def trained_rows(saved: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The rows of a saved latent table (``LATENTS_FILE``'s tensors) that trained at least once (all rows when the
    file has no ``visited`` mask, or none is marked); None without ``latents``."""
    latents, visited = saved.get("latents"), saved.get("visited")
    if latents is None or visited is None or not visited.any() or visited.all():
        return latents
    return latents[visited.bool()]


__all__ = ["LATENTS_FILE", "first_visit_encode", "save_latent_table", "trained_rows"]
