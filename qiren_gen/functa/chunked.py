"""Full-grid reconstruction gradients in chunks of points, so a training step's memory is bounded at any resolution.

The loss of an auto-decoded step is a mean over every pixel of every image. Its gradient is the sum of the chunks'
gradients, so the grid can be rendered and back-propagated a chunk of points at a time: the modulations (and the
decoder's reference statistics) are computed once, detached into leaves that collect the chunks' gradients, and
back-propagated once at the end. The result equals one full-grid backward up to float rounding; a grid that fits
in one chunk takes exactly the full-grid path.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .codec import per_image_mse, render_chunk_points

STEP_MEMORY_BUDGET = 64 * 2**20
"""Bytes one activation of the widest decoder layer may take in a training step (all images of the batch
together) before the grid is trained in chunks of points: the FFHQ recipe (16 x 64 x 64 x 128 floats, 32 MiB)
stays one chunk; 256 x 256 at batch 16 takes eight."""


def step_chunk_points(decoder, batch: int, budget: int = STEP_MEMORY_BUDGET) -> int:
    """Grid points per chunk of a training step of ``batch`` images within ``budget`` bytes per activation.

    Args:
        decoder: A modulated decoder (its widest ``nn.Linear`` and its parameters' dtype set the size of a point).
        batch: Images of the step.
        budget: Bytes one activation may take (default ``STEP_MEMORY_BUDGET``, 64 MiB).

    Returns:
        Points per chunk, at least 1.

    Examples:
        >>> from qiren_gen.functa import step_chunk_points
        >>> from qiren_gen.models import FeatureSynthesisDecoder
        >>> decoder = FeatureSynthesisDecoder(n_heads=2, n_qubits=2, hidden_features=128, hidden_layers=1)
        >>> step_chunk_points(decoder, batch=16)  # 16 images x 8192 points x 128 floats = 64 MiB: 64x64 is one chunk
        8192
    """
    return render_chunk_points(decoder, batch, budget)


def backward_per_image_mse(
    decoder,
    modulator,
    latents: torch.Tensor,
    coords: torch.Tensor,
    targets: torch.Tensor,
    stats: list | None = None,
    chunk_points: int | None = None,
    penalty: torch.Tensor | None = None,
    backward: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Per-image MSE ``(B,)`` (detached) after accumulating the gradient of ``mse.sum() + penalty`` into ``.grad``.

    Args:
        decoder: A modulated decoder.
        modulator: Its [`LatentModulator`][qiren_gen.models.LatentModulator].
        latents: ``(B, latent_dim)``.
        coords: ``(P, in)`` shared grid or ``(B, P, in)`` points.
        targets: ``(B, P, C)`` values.
        stats: The decoder's ``reference_statistics()`` when already computed.
        chunk_points: Points per chunk (default: `step_chunk_points`, from ``STEP_MEMORY_BUDGET``).
        penalty: A scalar added to the loss (e.g. a latent prior term), back-propagated once.
        backward: Runs a backward pass, e.g. ``accelerator.backward`` (default ``Tensor.backward``); called once per
            chunk, so loss scaling stays linear.

    Returns:
        The ``(B,)`` per-image errors, as [`per_image_mse`][qiren_gen.functa.per_image_mse] gives them, without a graph.

    Examples:
        >>> import torch
        >>> from qiren_gen.data import image_grid
        >>> from qiren_gen.functa import backward_per_image_mse, images_to_targets
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> latents = torch.zeros(2, 4, requires_grad=True)
        >>> images = torch.rand(2, 1, 8, 8) * 2 - 1
        >>> mse = backward_per_image_mse(decoder, modulator, latents, image_grid(8, 8), images_to_targets(images),
        ...                              chunk_points=16)  # 4 chunks of 16 of the 64 pixels
        >>> mse.shape, latents.grad.shape
        (torch.Size([2]), torch.Size([2, 4]))
    """
    backward = backward if backward is not None else torch.Tensor.backward
    n_points, n_images = coords.shape[-2], targets.shape[0]
    if chunk_points is None:
        chunk_points = step_chunk_points(decoder, n_images)
    if chunk_points < 1:
        raise ValueError(f"chunk_points must be >= 1, got {chunk_points}")
    if chunk_points >= n_points:
        mse = _at_least_float32(per_image_mse(decoder, modulator, latents, coords, targets, stats))
        backward(mse.sum() if penalty is None else mse.sum() + penalty)
        return mse.detach()

    if stats is None:
        stats = decoder.reference_statistics()
    stat_roots = [t for pair in stats or [] for t in pair]
    stat_leaves = [t.detach().requires_grad_(t.requires_grad) for t in stat_roots]
    leaf_stats = [tuple(stat_leaves[i : i + 2]) for i in range(0, len(stat_leaves), 2)] if stats else stats
    modulations = modulator(latents)
    modulation_leaf = modulations.detach().requires_grad_(modulations.requires_grad)
    scale = 1.0 / (n_points * targets.shape[-1])
    mse = None
    for start in range(0, n_points, chunk_points):
        stop = min(start + chunk_points, n_points)
        out = decoder(coords[..., start:stop, :], modulation_leaf, stats=leaf_stats)
        chunk_error = _at_least_float32((out - targets[:, start:stop]).square().sum(dim=(1, 2)) * scale)
        backward(chunk_error.sum())
        mse = chunk_error.detach() if mse is None else mse + chunk_error.detach()
    roots, grads = [], []
    for root, leaf in zip([modulations, *stat_roots], [modulation_leaf, *stat_leaves], strict=True):
        if root.requires_grad and leaf.grad is not None:
            roots.append(root)
            grads.append(leaf.grad)
    if penalty is not None:
        backward(penalty)
    if roots:
        torch.autograd.backward(roots, grads)
    return mse


def _at_least_float32(values: torch.Tensor) -> torch.Tensor:
    """Half-precision errors (autocast) summed in float32; float32 and float64 kept as they are."""
    return values.float() if values.dtype in (torch.float16, torch.bfloat16) else values


__all__ = ["STEP_MEMORY_BUDGET", "backward_per_image_mse", "step_chunk_points"]
