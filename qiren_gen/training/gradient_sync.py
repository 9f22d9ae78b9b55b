"""The data-parallel gradient all-reduce of stage 1: an exact global-batch mean, also when ranks hold unequal
numbers of images (a rank that dropped unreadable images, or one whose stream ran out)."""
from __future__ import annotations

import torch


def sync_gradients(params: list[torch.nn.Parameter], accelerator, n_local: int) -> int:
    """Sum ``params``' gradients over processes and divide by the global image count; returns that count.

    Every rank then holds the same gradients, so every rank's optimiser makes the same update."""
    count = torch.tensor([float(n_local)], device=accelerator.device)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    if accelerator.num_processes > 1:
        flat = accelerator.reduce(flat, reduction="sum")
        count = accelerator.reduce(count, reduction="sum")
    total = int(count.item())
    flat = flat / max(total, 1)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n
    return total


__all__ = ["sync_gradients"]
