"""The end-of-run reconstruction PSNR of an auto-decoded table: a fixed, small subset of the training items at
their learned latents, so its cost does not grow with the dataset."""
from __future__ import annotations

import itertools

import torch

from ..data.datasets import ImageCollator
from ..data.indexed import IndexedCollator, IndexedImages
from ..data.stream_shards import rows as stream_rows
from ..functa import per_image_mse
from ..metrics import psnr_from_mse


def first_items(source, count: int | None) -> list[dict]:
    """The indexed items of the first ``count`` images of ``source`` (all when None), mirrors included: a fixed,
    cheap evaluation subset (a stream is read from its start, not shuffled)."""
    if isinstance(source, IndexedImages):
        n = len(source.dataset)
        rows = list(range(n if count is None else min(count, n)))
        return [source[i] for i in rows] + ([source[n + i] for i in rows] if source.flip else [])
    limit = source.capacity if count is None else min(count, source.capacity or count)
    positions = itertools.count() if limit is None else range(limit)  # first in zip: no example read past limit
    items = [{"example": example, "index": position, "flip": False}
             for position, example in zip(positions, stream_rows(source.stream), strict=False)]
    if source.flip:
        items += [{**item, "index": source.capacity + item["index"], "flip": True} for item in items]
    return items


head_items = first_items
"""Former name of `first_items` ("head" now only means a circuit of a wide decoder)."""


@torch.no_grad()
def table_psnr(decoder, modulator, latents: torch.Tensor, source, collate: ImageCollator,
               cfg, coords: torch.Tensor) -> dict[str, float]:
    """Mean reconstruction PSNR of the first ``cfg.table_eval_images`` training items at their learned latents
    (mirrors, if any, separately): a fixed subset, so the cost does not grow with the dataset. Keys
    ``train_psnr_all[_mirrors]`` when that subset is every image, else ``train_psnr[_mirrors]``."""
    items = first_items(source, cfg.table_eval_images)
    values, mirrored = [], []
    for start in range(0, len(items), 32):
        chunk = items[start : start + 32]
        images, indices = IndexedCollator(collate)(chunk)
        if not images.shape[0]:
            continue
        targets = images.to(coords.device).permute(0, 2, 3, 1).reshape(images.shape[0], -1, cfg.channels)
        values.append(psnr_from_mse(per_image_mse(decoder, modulator, latents[indices.to(coords.device)], coords,
                                                  targets), 2.0))
        flips = {item["index"] for item in chunk if item["flip"]}
        mirrored.append(torch.tensor([int(i) in flips for i in indices.tolist()], dtype=torch.bool))
    if not values:
        return {}
    values, mirrored = torch.cat(values).cpu(), torch.cat(mirrored)
    plain = values[~mirrored]
    total = len(source.dataset) if isinstance(source, IndexedImages) else source.capacity
    key = "train_psnr_all" if total is not None and plain.numel() >= total else "train_psnr"  # all, or a subset
    out = {key: plain.mean().item(), "train_psnr_images": int(plain.numel())}
    if mirrored.any():
        out[f"{key}_mirrors"] = values[mirrored].mean().item()
    return out


__all__ = ["first_items", "head_items", "table_psnr"]
