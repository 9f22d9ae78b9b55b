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
    def f64(t: torch.Tensor) -> torch.Tensor:
        return (t.detach() if detach else t).to(torch.float64)

    mean, std = (f64(t) for t in stats[0])
    scale = f64(decoder.norm_weight) / std
    slopes = f64(decoder.frequencies.weight) * scale[:, None]
    offset = (f64(decoder.frequencies.bias) - mean) * scale + f64(decoder.norm_bias)
    return slopes, offset


def series_features(decoder, coords: torch.Tensor, stats, series=None) -> torch.Tensor | None:
    """Features ``(..., H*n)`` of ``coords`` from the exact series (or the given, e.g. measured, ``series``: used at
    any points), or ``None`` where the simulator must run.

    When a gradient must reach the feature parameters (grad mode on and any of them requiring one), the series is
    differentiable: its coefficients come from the circuits' own forward and its phases from the angle map, both with
    their graphs (training); that applies on product grids with exact, noiseless expectations only (elsewhere
    ``None``). Otherwise the series is built once per set of weights from detached tensors (rendering).
    """
    if not bool(torch.isfinite(coords).all()):  # the simulator reports bad coordinates in its own words
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
    blocks = grid_blocks(coords) if coords.ndim == 2 else None
    if blocks is not None:
        slopes, offset = angle_map(decoder, stats, detach=not tracked)
        tiles = _grid_tiles(series, slopes, offset, blocks, heads, qubits, work)
        if tracked:  # pieces joined by differentiable ops (a whole image grid is one piece)
            pieces: dict[int, list[torch.Tensor]] = {}
            for start, _, _, tile in tiles:
                pieces.setdefault(start, []).append(tile)
            rows = [(torch.cat(p, dim=1) if len(p) > 1 else p[0]).reshape(-1, heads * qubits)
                    for p in pieces.values()]
            # point-major, as the synthesis GEMMs read it best (the per-head GEMMs leave it feature-major)
            return (torch.cat(rows) if len(rows) > 1 else rows[0]).to(dtype).contiguous()
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


def _grid_tiles(series, slopes: torch.Tensor, offset: torch.Tensor, blocks, heads: int, qubits: int,
                work: torch.dtype):
    """``(start, columns, left, features (rows, tile columns, H*n))`` per product-grid block and column tile, in
    row-major order: one GEMM per head each (``HeadSeries.evaluate_affine_grid``), point-major and contiguous."""
    affine = torch.cat([slopes[:, :2], offset[:, None]], dim=1).view(heads, qubits, 3)  # row, column slope, offset
    for start, rows, cols in blocks:
        for left in range(0, cols.numel(), GRID_COLUMNS):  # column factors of bounded size on wide rows
            tile = series.evaluate_affine_grid(affine, rows, cols[left : left + GRID_COLUMNS], work)
            yield start, cols.numel(), left, tile


_LAST_BLOCKS: list = []  # [(coords, blocks)]: a training loop passes the same grid at every step


def grid_blocks(coords: torch.Tensor):
    """`row_major_blocks` of ``coords``, remembered for the last grid (compared exactly)."""
    for seen, blocks in _LAST_BLOCKS:
        if seen.shape == coords.shape and seen.dtype == coords.dtype and seen.device == coords.device \
                and torch.equal(seen, coords):
            return blocks
    blocks = row_major_blocks(coords)
    _LAST_BLOCKS[:] = [(coords.detach().clone(), blocks)]
    return blocks


__all__ = ["FEATURE_EVALUATIONS", "GRID_COLUMNS", "MAX_POINTWISE_TERMS", "angle_map", "grid_blocks", "series_features"]
