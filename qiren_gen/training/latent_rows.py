"""Auto-decoded latents updated per row: the cost of a step is O(global batch), not O(table).

Only the rows of the step's global batch get a gradient. Ranks exchange ``(row index, row gradient)`` pairs with
one ``all_gather`` of a fixed size (``batch_size`` rows per rank, padded with index -1), never the table, so a step
moves ``num_processes * batch_size * (8 + 4 * latent_dim)`` bytes whatever the number of images. Every rank then
applies the same row-wise Adam step to those rows, so the tables stay bitwise equal across ranks.

Row-wise Adam (`rowwise_adam_step`) keeps ``exp_avg``, ``exp_avg_sq`` and a step count per row, and a row
moves only when its image is in the batch. Bias correction uses the row's own count (how many batches held this
image), not the global step: a row's k-th update is exactly the k-th update ``torch.optim.Adam`` would make on that
row alone. The dense update it replaces (one Adam over the whole table) instead bias-corrected with the global step,
so an image first seen late moved by about ``(1 - beta1)`` of a step, every row kept drifting on its momentum in the
steps its image was absent, and its second moment averaged in those absent steps' zero gradients, which made each
visit's total movement several times ``lr`` (about ``sqrt(steps between visits)``; the movement grows with the
table). Row-wise, a visit moves a row by about ``lr``, whatever the table's size: the same latent learning rate
learns the table more slowly early on (bundled LFW recipe: -0.26 dB held-out PSNR after 600 steps, -0.09 dB after
1500; ``scripts/benchmarks/benchmark_latent_update_quality.py``).
"""
from __future__ import annotations

import torch

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
"""torch.optim.Adam's defaults, which the dense table update used."""


class LatentTable(torch.nn.Module):
    """One trainable latent per training image (auto-decoding): ``latents (N, latent_dim)``, small random init;
    ``visited (N,)``: the rows trained at least once (the prior learns those only); and each row's Adam state
    (``exp_avg``, ``exp_avg_sq``, ``row_steps``), checkpointed with the table. ``generator`` draws the init."""

    def __init__(self, n_items: int, latent_dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        init = torch.randn(n_items, latent_dim, generator=generator) * 0.01
        self.latents = torch.nn.Parameter(init, requires_grad=False)  # stepped by rowwise_adam_step, not autograd
        self.register_buffer("visited", torch.zeros(n_items, dtype=torch.bool))
        self.register_buffer("exp_avg", torch.zeros(n_items, latent_dim))
        self.register_buffer("exp_avg_sq", torch.zeros(n_items, latent_dim))
        self.register_buffer("row_steps", torch.zeros(n_items, dtype=torch.long))


def gather_row_gradients(rows: torch.Tensor, grads: torch.Tensor, capacity: int, accelerator
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's ``(rows (n,), grads (n, D))``, ``n <= capacity``, concatenated over ranks: two ``all_gather``
    calls of ``capacity`` rows each (padding rows have index -1 and are dropped from the result)."""
    if rows.shape[0] > capacity:
        raise ValueError(f"{rows.shape[0]} rows exceed the exchange capacity {capacity}")
    if accelerator.num_processes == 1:
        return rows, grads
    padded_rows = torch.full((capacity,), -1, dtype=torch.long, device=grads.device)
    padded_rows[: rows.shape[0]] = rows
    padded_grads = torch.zeros(capacity, grads.shape[1], dtype=grads.dtype, device=grads.device)
    padded_grads[: rows.shape[0]] = grads
    all_rows, all_grads = accelerator.gather(padded_rows), accelerator.gather(padded_grads)
    keep = all_rows >= 0
    return all_rows[keep], all_grads[keep]


def exchange_bytes(num_processes: int, capacity: int, latent_dim: int) -> int:
    """Bytes each rank receives per step from `gather_row_gradients` (int64 rows + fp32 gradients)."""
    return num_processes * capacity * (8 + 4 * latent_dim) if num_processes > 1 else 0


@torch.no_grad()
def rowwise_adam_step(table: LatentTable, rows: torch.Tensor, grads: torch.Tensor, lr: float,
                      betas: tuple[float, float] = ADAM_BETAS, eps: float = ADAM_EPS) -> None:
    """One Adam step on ``table``'s ``rows`` with their summed ``grads`` (duplicate rows add up); other rows and
    their state are untouched. Bias correction per row from ``row_steps`` (see the module docstring)."""
    if rows.numel() == 0:
        return
    unique, inverse = torch.unique(rows, return_inverse=True)
    grad = torch.zeros(unique.shape[0], grads.shape[1], dtype=torch.float32, device=grads.device)
    grad.index_add_(0, inverse, grads.float())
    beta1, beta2 = betas
    steps = table.row_steps[unique] + 1
    table.row_steps[unique] = steps
    exp_avg = table.exp_avg[unique].lerp_(grad, 1 - beta1)
    exp_avg_sq = table.exp_avg_sq[unique].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    table.exp_avg[unique] = exp_avg
    table.exp_avg_sq[unique] = exp_avg_sq
    counts = steps.to(torch.float64)[:, None]
    bias_correction1 = (1 - beta1**counts).float()
    bias_correction2_sqrt = (1 - beta2**counts).sqrt().float()
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # torch.optim.Adam's formula, row by row
    table.latents[unique] = table.latents[unique] - (lr / bias_correction1) * exp_avg / denom


__all__ = ["ADAM_BETAS", "ADAM_EPS", "LatentTable", "exchange_bytes", "gather_row_gradients", "rowwise_adam_step"]
