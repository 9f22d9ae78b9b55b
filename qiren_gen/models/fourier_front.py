"""Fixed Fourier features on a ternary set of radii: a front end for QIREN's first hybrid layer."""
from __future__ import annotations

import math

import torch
from torch import nn

TERNARY_RADII = (1.0, 3.0, 9.0)
"""Default radii (rad per coordinate unit): a ternary ladder, so that no two bands' harmonics coincide."""


def fourier_frequencies(in_features: int, directions: int, radii: tuple[float, ...] | list[float]) -> torch.Tensor:
    """The ``(len(radii) * directions, in_features)`` fixed frequency vectors, deterministic.

    2-D: ``directions`` angles evenly spread over ``[0, pi)`` at each radius, staggered by half a step on every other
    radius; 1-D: ``directions`` frequencies ``r * 3**(d / directions)`` filling each radius's ternary octave; other
    dimensions: unit directions from a fixed-seed Gaussian.
    """
    if directions < 1 or not radii or any(not (r > 0 and math.isfinite(r)) for r in radii):
        raise ValueError(f"need fourier directions >= 1 and finite radii > 0, got {directions}, {list(radii)}")
    rows = []
    for i, r in enumerate(radii):
        if in_features == 1:
            rows.append(torch.tensor([[r * 3.0 ** (d / directions)] for d in range(directions)]))
        elif in_features == 2:
            angles = (torch.arange(directions, dtype=torch.float64) + 0.5 * (i % 2)) * math.pi / directions
            rows.append(r * torch.stack([angles.cos(), angles.sin()], -1))
        else:
            g = torch.Generator().manual_seed(1000 + i)
            u = torch.randn(directions, in_features, generator=g, dtype=torch.float64)
            rows.append(r * u / u.norm(dim=-1, keepdim=True))
    return torch.cat(rows).float()


class FourierFeatures(nn.Module):
    """``x -> [x, sin(B x), cos(B x)]`` with fixed ``B`` from ``fourier_frequencies`` (a buffer, not trained).

    Input ``(N, in_features)``; output ``(N, in_features + 2 * len(radii) * directions)``. Keeping ``x`` lets the
    Linear layer after it still place low frequencies freely.
    """

    def __init__(self, in_features: int, directions: int,
                 radii: tuple[float, ...] | list[float] = TERNARY_RADII) -> None:
        super().__init__()
        self.register_buffer("frequencies", fourier_frequencies(in_features, directions, list(radii)))
        self.out_features = in_features + 2 * self.frequencies.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = x @ self.frequencies.to(x.dtype).T
        return torch.cat([x, phase.sin(), phase.cos()], -1)
