"""Coordinate grids: where an INR is queried.

Two conventions: ``align_corners=True`` puts the first and last sample at -1 and 1 (``linspace``, the SIREN / QIREN
papers' grids, used to reproduce them); ``align_corners=False`` (default for images) puts samples at pixel centres,
``-1 + (2 i + 1) / N``, so that a render at k times the resolution, area-downsampled by k, averages points around the
same centres: the convention that makes any-resolution rendering consistent.
"""
from __future__ import annotations

import torch

MAX_GRID_POINTS = 2**28
"""Largest grid built in one piece (268M points, 2 GiB of float32 coordinates); beyond that is surely a mistake."""


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def axis_coordinates(
    n: int, align_corners: bool = False, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """``n`` coordinates in ``[-1, 1]``: pixel centres, or ``linspace(-1, 1, n)`` with ``align_corners``."""
    _check_size("n", n)
    if align_corners:
        return torch.linspace(-1, 1, n, dtype=dtype, device=device)
    return (2 * torch.arange(n, dtype=dtype, device=device) + 1) / n - 1


def image_grid(
    height: int, width: int, align_corners: bool = False, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """``(height * width, 2)`` coordinates ``(y, x)`` in row-major pixel order (reshape to ``(H, W, 2)`` as needed)."""
    _check_size("height", height)
    _check_size("width", width)
    if height * width > MAX_GRID_POINTS:
        raise ValueError(f"a {height}x{width} grid has {height * width} points, over the limit of {MAX_GRID_POINTS}")
    ys = axis_coordinates(height, align_corners, dtype, device)
    xs = axis_coordinates(width, align_corners, dtype, device)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2)


def time_grid(n: int, align_corners: bool = True, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``(n, 1)`` time coordinates in ``[-1, 1]`` for 1-D signals (audio); endpoints included by default."""
    if n > MAX_GRID_POINTS:
        raise ValueError(f"{n} time samples is over the limit of {MAX_GRID_POINTS}")
    return axis_coordinates(n, align_corners, dtype, device).unsqueeze(-1)
