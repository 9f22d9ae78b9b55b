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


def row_major_blocks(coords: torch.Tensor, min_block_points: int = 64
                     ) -> list[tuple[int, torch.Tensor, torch.Tensor]] | None:
    """Cut 2-D points ``(P, 2)`` into consecutive row-major product grids, or ``None`` if that takes too many pieces.

    Returns ``[(start, rows (U,), cols (V,))]``: ``coords[start : start + U * V]`` is exactly ``(rows[u], cols[v])``
    for ``u`` then ``v`` (the layout of `image_grid` and of any slice of it, where a chunk may begin and end
    mid-row). Found with exact comparisons, in one pass over the points and one comparison per row. ``None`` when
    the pieces hold fewer than ``min_block_points`` points on average (scattered points: no grid to exploit).
    """
    if coords.ndim != 2 or coords.shape[-1] != 2 or coords.shape[0] == 0:
        return None
    n_points = coords.shape[0]
    first, second = coords[:, 0], coords[:, 1]
    breaks = torch.nonzero(first[1:] != first[:-1]).flatten() + 1  # where a new row begins
    if (breaks.numel() + 1) * min(min_block_points, 8) > n_points:  # rows of a few points: not worth a look
        return None
    bounds = [0, *breaks.tolist(), n_points]
    blocks: list[list] = []  # [start, row starts, width]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if blocks:
            block_start, row_starts, width = blocks[-1]
            if stop - start == width and torch.equal(second[start:stop], second[block_start : block_start + width]):
                row_starts.append(start)
                continue
        if len(blocks) * min_block_points > n_points:
            return None
        blocks.append([start, [start], stop - start])
    if len(blocks) * min_block_points > n_points:
        return None
    return [(start, first[row_starts], second[start : start + width]) for start, row_starts, width in blocks]


def time_grid(n: int, align_corners: bool = True, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``(n, 1)`` time coordinates in ``[-1, 1]`` for 1-D signals (audio); endpoints included by default."""
    if n > MAX_GRID_POINTS:
        raise ValueError(f"{n} time samples is over the limit of {MAX_GRID_POINTS}")
    return axis_coordinates(n, align_corners, dtype, device).unsqueeze(-1)
