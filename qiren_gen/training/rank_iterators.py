"""Iterating and gathering in step across data-parallel ranks whose shares of the data differ in length."""
from __future__ import annotations

import torch


def lockstep_batches(batches, accelerator, empty_images: torch.Tensor):
    """This rank's ``batches`` in step with every other rank's: after its own run out, it yields empty batches
    while any rank still has one; ends when all are exhausted (one 1-element all-reduce per step)."""
    iterator = iter(batches)
    empty = (empty_images, torch.zeros(0, dtype=torch.long))
    while True:
        batch = next(iterator, None)
        if accelerator.num_processes > 1:
            alive = torch.tensor([0.0 if batch is None else 1.0], device=accelerator.device)
            if accelerator.reduce(alive, reduction="sum").item() == 0:
                return
        elif batch is None:
            return
        yield empty if batch is None else batch


def all_ranks(tensor: torch.Tensor, accelerator) -> torch.Tensor:
    """``tensor`` (first dim may differ per rank) concatenated over processes (itself with one process); rows a
    rank padded with are -1."""
    if accelerator.num_processes == 1:
        return tensor
    return accelerator.gather(accelerator.pad_across_processes(tensor, dim=0, pad_index=-1))


__all__ = ["all_ranks", "lockstep_batches"]
