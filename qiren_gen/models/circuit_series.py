"""Circuit features of `FeatureSynthesisDecoder` from the heads' exact Fourier series.

The decoder's angles are affine in the coordinates (``Linear`` then a fixed normalisation and affine), and each head
is a finite Fourier series in its angles (`qiren_gen.quantum.spectrum`). So:

* on a row-major grid (an image, or a chunk of one), ``exp(i w . theta)`` is a row factor times a column factor and
  every feature map is one small-rank GEMM per head (``evaluate_grid``): about 40x faster than simulating each point
  for the default 32 two-qubit heads. With gradients (training) the same GEMMs run on a series whose coefficients
  carry the graph of the ``(2L+1)^n`` circuit runs they come from and whose phases carry the angle map's: the
  gradients into the circuit weights, the frequency layer and the normalisation are the simulator's;
* at scattered points, without gradients, the series is summed point by point where that is faster than the
  simulator (few terms);
* otherwise (too many terms, finite shots, scales without a common base; with gradients also noise models, scattered
  points and gradients w.r.t. the coordinates) the simulator runs as before.
"""
from __future__ import annotations

import itertools

import torch

from ..data import row_major_blocks
from ..quantum.spectrum import differentiable_head_series, head_series

FEATURE_EVALUATIONS = ("series", "simulate")
"""How a ``FeatureSynthesisDecoder`` computes circuit features, in training and rendering: ``"series"`` (exact Fourier
series where it applies, else the simulator) or ``"simulate"`` (always the simulator, to compare)."""

MAX_POINTWISE_TERMS = 128
"""Most series terms per head for which summing the series point by point beat the fused simulator (measured: 25
and 81 terms 2-3x faster, 125 about even, 243 and more slower); beyond it scattered points are simulated."""


GRID_COLUMNS = 4096
"""Most grid columns evaluated at once: bounds the column factor (heads x 2K x columns) on very wide rows."""


def angle_map(decoder, stats, detach: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's angles as ``coords @ slopes.T + offset``: ``slopes (H*n, in)`` and ``offset (H*n,)`` in float64;
    with ``detach=False`` differentiable in the frequency layer, the normalisation affine and ``stats``."""
    affine = affine_angle_map(decoder, stats, detach)
    return affine[:, :-1], affine[:, -1]


def affine_angle_map(decoder, stats, detach: bool = True) -> torch.Tensor:
    """`angle_map` as one ``(H*n, in + 1)`` float64 tensor, slopes then offset: the parameters it reads are joined
    and promoted in one op each (a training step builds it, and backpropagates through it, at every step)."""
    mean, std = stats[0]
    weight = decoder.frequencies.weight
    columns = [weight, *(t[:, None] for t in (decoder.frequencies.bias, mean, std, decoder.norm_weight,
                                               decoder.norm_bias))]
    parts = torch.cat([t.detach() for t in columns] if detach else columns, dim=1).to(torch.float64)
    n_in = weight.shape[1]
    bias, mean, std, norm_weight, norm_bias = parts[:, n_in:].unbind(1)
    scale = norm_weight / std
    return torch.cat([parts[:, :n_in] * scale[:, None], ((bias - mean) * scale + norm_bias)[:, None]], dim=1)


def series_features(decoder, coords: torch.Tensor, stats, series=None) -> torch.Tensor | None:
    """Features ``(..., H*n)`` of ``coords`` from the exact series (or the given, e.g. measured, ``series``: used at
    any points), or ``None`` where the simulator must run.

    When a gradient must reach the feature parameters (grad mode on and any of them requiring one), the series is
    differentiable: its coefficients come from exact circuit runs of the weights and its phases from the angle map, both
    with their graphs (training); that applies on product grids with exact, noiseless expectations only (elsewhere
    ``None``). Otherwise the series is built once per set of weights from detached tensors (rendering).
    """
    known = known_grid_blocks(coords)  # a grid seen last time (so finite): no second look at its points
    if known is None and not bool(torch.isfinite(coords).all()):  # the simulator reports bad coordinates itself
        return None
    given = series is not None  # a measured series: constant data, used at any points
    tracked = not given and torch.is_grad_enabled() and any(
        t.requires_grad for t in decoder._feature_tensors())
    if tracked and coords.requires_grad:  # gradients w.r.t. the coordinates: the simulator
        return None
    if not given:
        series = (differentiable_head_series if tracked else head_series)(decoder.circuits)
    if series is None:
        return None
    heads, qubits = decoder.config.n_heads, decoder.config.n_qubits
    dtype = torch.promote_types(coords.dtype, decoder.frequencies.weight.dtype)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    blocks = known or (grid_blocks(coords) if coords.ndim == 2 else None)
    if blocks is not None:
        affine = affine_angle_map(decoder, stats, detach=not tracked).view(heads, qubits, 3)  # rows, columns, offset
        tiles = _grid_tiles(series, affine, blocks, work)
        first = next(tiles)
        if first[3].shape[:2].numel() == coords.shape[0]:  # one tile holds every point (an image grid)
            return first[3].reshape(coords.shape[0], -1).to(dtype)  # point-major, as the synthesis GEMMs read it
        tiles = itertools.chain([first], tiles)
        if tracked:  # pieces joined by differentiable ops
            pieces: dict[int, list[torch.Tensor]] = {}
            for start, _, _, tile in tiles:
                pieces.setdefault(start, []).append(tile)
            rows = [(torch.cat(p, dim=1) if len(p) > 1 else p[0]).reshape(-1, heads * qubits)
                    for p in pieces.values()]
            return (torch.cat(rows) if len(rows) > 1 else rows[0]).to(dtype)
        out = torch.empty(coords.shape[0], heads * qubits, dtype=dtype, device=coords.device)
        for start, n_cols, left, tile in tiles:
            block = out[start : start + tile.shape[0] * n_cols].view(tile.shape[0], n_cols, -1)
            block[:, left : left + tile.shape[1]] = tile
        return out
    if tracked or (series.n_terms > MAX_POINTWISE_TERMS and not given):  # scattered points with gradients: simulate
        return None
    angles = decoder._feature_angles(coords, stats)  # the simulator's very angles
    values = series.evaluate(angles.to(work).reshape(*angles.shape[:-1], heads, qubits))
    return values.reshape(*angles.shape[:-1], heads * qubits).to(angles.dtype)


def _grid_tiles(series, affine: torch.Tensor, blocks, work: torch.dtype):
    """``(start, columns, left, features (rows, tile columns, H*n))`` per product-grid block and column tile, in
    row-major order: one GEMM per head each (``HeadSeries.evaluate_affine_grid``), point-major and contiguous."""
    for start, rows, cols in blocks:
        for left in range(0, cols.numel(), GRID_COLUMNS):  # column factors of bounded size on wide rows
            yield start, cols.numel(), left, series.evaluate_affine_grid(affine, rows, cols[left : left + GRID_COLUMNS],
                                                                         work)


_LAST_BLOCKS: list = []  # [(coords, blocks)]: a training loop passes the same grid at every step


def _remembered(coords: torch.Tensor) -> tuple[bool, list | None]:
    """``(True, blocks)`` when ``coords`` are the points `grid_blocks` last cut (compared exactly), else
    ``(False, None)``."""
    for seen, blocks in _LAST_BLOCKS:
        if seen.shape == coords.shape and seen.dtype == coords.dtype and seen.device == coords.device \
                and torch.equal(seen, coords):
            return True, blocks
    return False, None


def known_grid_blocks(coords: torch.Tensor):
    """The blocks of the grid `grid_blocks` last cut, if ``coords`` are that grid, else ``None``."""
    return _remembered(coords)[1]


def grid_blocks(coords: torch.Tensor):
    """`row_major_blocks` of ``coords``, remembered for the last grid (compared exactly)."""
    seen, blocks = _remembered(coords)
    if seen:
        return blocks
    blocks = row_major_blocks(coords)
    _LAST_BLOCKS[:] = [(coords.detach().clone(), blocks)]
    return blocks


__all__ = ["FEATURE_EVALUATIONS", "GRID_COLUMNS", "MAX_POINTWISE_TERMS", "affine_angle_map", "angle_map", "grid_blocks",
           "known_grid_blocks", "series_features"]
