"""Encode images to latents (meta-learned inner loop or auto-decoding) and decode latents at any resolution.

Pure functions of ``(decoder, modulator, ...)``: the decoder is a modulated INR (``ModulatedQIREN``,
``ModulatedSIREN``, ``FeatureSynthesisDecoder``, ...), the modulator a ``LatentModulator`` whose config says how
images are encoded (meta-learned inner loop or auto-decoding) and with how many steps.
Images are ``(B, C, H, W)`` in ``[-1, 1]``; coordinates are the pixel-centre grid of ``qiren_gen.data.image_grid``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch

from ..data.grids import image_grid

DEFAULT_CHUNK_POINTS = 16384
"""Coordinates (summed over the batch) in a default chunk of a decoder without linear layers (no width to budget)."""

RENDER_MEMORY_BUDGET = 32 * 2**20
"""Bytes one activation of the widest decoder layer may take in a default rendering chunk (all images together)."""


def images_to_targets(images: torch.Tensor, channels: int | None = None) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)`` in the row-major order of ``image_grid``, with input checks.

    Args:
        images: Finite floating-point images in [-1, 1].
        channels: The decoder's channel count, checked against the images' (``None``: not checked).

    Returns:
        The per-pixel targets ``(B, H*W, C)``.

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import images_to_targets
        >>> images_to_targets(torch.zeros(2, 3, 4, 5)).shape
        torch.Size([2, 20, 3])
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a (B, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    if channels is not None and images.shape[1] != channels:
        raise ValueError(f"the decoder outputs {channels} channel(s) but images have {images.shape[1]}")
    if images.numel() == 0:
        raise ValueError(f"images must be non-empty, got shape {tuple(images.shape)}")
    if not images.is_floating_point() or not bool(torch.isfinite(images).all()):
        raise ValueError("images must be finite floating-point values in [-1, 1]")
    b, c, h, w = images.shape
    return images.permute(0, 2, 3, 1).reshape(b, h * w, c)


def per_image_mse(decoder, modulator, latents, coords, targets, stats=None) -> torch.Tensor:
    """Mean squared error of each image's render at ``coords`` against ``targets``.

    Args:
        decoder: A modulated decoder.
        modulator: Its [`LatentModulator`][qiren_gen.models.LatentModulator].
        latents: ``(B, latent_dim)``.
        coords: ``(P, 2)`` grid (shared) or ``(B, P, 2)`` points.
        targets: ``(B, P, C)`` values, e.g. from `images_to_targets`.
        stats: The decoder's ``reference_statistics()`` when already computed (else computed here).

    Returns:
        ``(B,)`` errors, differentiable in the latents and the models' parameters.

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import images_to_targets, per_image_mse
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> images = torch.rand(2, 1, 4, 4) * 2 - 1  # two 4x4 grayscale images in [-1, 1]
        >>> from qiren_gen.data import image_grid
        >>> per_image_mse(decoder, modulator, torch.zeros(2, 4), image_grid(4, 4), images_to_targets(images)).shape
        torch.Size([2])
    """
    return _per_image_mse(decoder, modulator, latents, coords, targets, stats, once_differentiable=True)


def _per_image_mse(decoder, modulator, latents, coords, targets, stats, once_differentiable: bool) -> torch.Tensor:
    """`per_image_mse`, through the decoder's own ``per_image_mse`` where it has one (it may compute the gradient in
    the same pass as the renders, unless the gradient will itself be differentiated: ``once_differentiable=False``)."""
    if hasattr(decoder, "per_image_mse"):
        return decoder.per_image_mse(coords, modulator(latents), targets, stats, once_differentiable)
    out = decoder(coords, modulator(latents), stats=stats)
    return (out - targets).square().mean(dim=(1, 2))


def inner_loop(
    decoder,
    modulator,
    coords: torch.Tensor,
    targets: torch.Tensor,
    steps: int | None = None,
    first_order: bool = False,
    stats=None,
) -> torch.Tensor:
    """Meta-SGD inner loop: from a zero latent, ``steps`` updates ``z <- z - inner_lr * grad_z MSE_i(z)``.

    Each image's loss depends only on its own latent, so summing over the batch gives per-image gradients.

    Args:
        decoder: A modulated decoder.
        modulator: Its `LatentModulator` (holds the learned step sizes ``inner_lr``).
        coords: ``(P, 2)`` grid.
        targets: ``(B, P, C)`` values.
        steps: Updates (default ``modulator.config.inner_steps``).
        first_order: Drop the inner gradients' dependence on the decoder (cheaper, works with the once-differentiable
            ``fused`` engine); step sizes still receive gradients either way.
        stats: The decoder's ``reference_statistics()`` when already computed.

    Returns:
        ``(B, latent_dim)`` latents, still in the graph (meta-learning differentiates through them).

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import images_to_targets, inner_loop
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> images = torch.rand(2, 1, 4, 4) * 2 - 1  # two 4x4 grayscale images in [-1, 1]
        >>> from qiren_gen.data import image_grid
        >>> inner_loop(decoder, modulator, image_grid(4, 4), images_to_targets(images), steps=2).shape
        torch.Size([2, 4])
    """
    def loss_of(latents: torch.Tensor) -> torch.Tensor:
        return _per_image_mse(decoder, modulator, latents, coords, targets, stats, once_differentiable=first_order)

    return _meta_sgd_latents(modulator, loss_of, targets.shape[0], steps, first_order, targets.device, targets.dtype)


def _meta_sgd_latents(modulator, per_image_loss: Callable[[torch.Tensor], torch.Tensor], batch: int,
                      steps: int | None, first_order: bool, device, dtype: torch.dtype) -> torch.Tensor:
    """The inner loop on any per-image loss: from zero, ``z <- z - inner_lr * grad_z per_image_loss(z).sum()``."""
    steps = modulator.config.inner_steps if steps is None else steps
    _check_steps(steps)
    latents = torch.zeros(batch, modulator.config.latent_dim, device=device, dtype=dtype)
    latents.requires_grad_(True)
    for _ in range(steps):
        loss = per_image_loss(latents).sum()
        (grad,) = torch.autograd.grad(loss, latents, create_graph=not first_order, retain_graph=True)
        if first_order:
            grad = grad.detach()
        latents = latents - modulator.inner_lr * grad
    return latents


def _check_steps(steps) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")


def optimise_latents(
    modulator,
    per_image_loss: Callable[[torch.Tensor], torch.Tensor],
    batch: int,
    steps: int | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Auto-decoding: Adam on per-image latents from zero, ``per_image_loss(z) (B,) + latent_l2 * ||z_i||^2``.

    Adam is elementwise and each image's loss depends only on its own latent, so every image is fitted
    independently of the others in the batch. Only the latents are differentiated (decoder and modulator receive no
    gradients).

    Args:
        modulator: Gives ``latent_dim``, ``encode_lr``, ``latent_l2`` and the default step count.
        per_image_loss: ``z (B, latent_dim) -> (B,)`` losses.
        batch: Latents to fit.
        steps: Adam steps (default ``modulator.config.inner_steps``).
        device: Device of the latents.
        dtype: Dtype of the latents.

    Returns:
        ``(B, latent_dim)`` latents, detached.

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import optimise_latents
        >>> from qiren_gen.models import LatentModulator
        >>> modulator = LatentModulator(latent_dim=3, modulation_dim=5, encoding="auto_decode", encode_lr=0.1)
        >>> target = torch.tensor([[1.0, -1.0, 0.5]])
        >>> z = optimise_latents(modulator, lambda z: (z - target).square().sum(1), batch=1, steps=200)
        >>> bool(torch.allclose(z, target, atol=0.05))
        True
    """
    steps = modulator.config.inner_steps if steps is None else steps
    _check_steps(steps)
    l2 = modulator.config.latent_l2
    latents = torch.zeros(batch, modulator.config.latent_dim, device=device, dtype=dtype, requires_grad=True)
    optimizer = torch.optim.Adam([latents], lr=modulator.config.encode_lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = (per_image_loss(latents) + l2 * latents.square().sum(-1)).sum()
            (latents.grad,) = torch.autograd.grad(loss, latents)
            optimizer.step()
    return latents.detach()


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module) -> Iterator[None]:
    """Parameters of ``modules`` with ``requires_grad`` off for the block (restored after): encoding differentiates
    the latents only, and with nothing of the decoder's feature path requiring grad its per-grid cache applies."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def encode_images(decoder, modulator, images: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    """Latents of images in ``[-1, 1]``, found the way the modulator says.

    ``modulator.config.encoding``: ``"meta_sgd"`` runs the meta-learned inner loop, ``"auto_decode"`` fits the
    latents with Adam and the decoder frozen (`optimise_latents`). Works at any ``H, W`` (coordinates are
    continuous). Decoder and modulator parameters are not changed and receive no gradients.

    Args:
        decoder: A modulated decoder.
        modulator: Its [`LatentModulator`][qiren_gen.models.LatentModulator].
        images: ``(B, C, H, W)`` in [-1, 1], ``C`` the decoder's ``out_channels``.
        steps: Encoding steps (default ``modulator.config.inner_steps``).

    Returns:
        ``(B, latent_dim)`` latents, detached.

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import encode_images
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> images = torch.rand(2, 1, 4, 4) * 2 - 1  # two 4x4 grayscale images in [-1, 1]
        >>> encode_images(decoder, modulator, images).shape
        torch.Size([2, 4])
    """
    targets = images_to_targets(images, decoder.config.out_channels)
    param = next(decoder.parameters())
    targets = targets.to(device=param.device, dtype=param.dtype)
    coords = image_grid(images.shape[2], images.shape[3], dtype=param.dtype, device=param.device)
    with torch.no_grad():
        stats = decoder.reference_statistics()
    return encode_with_loss(decoder, modulator, lambda z: per_image_mse(decoder, modulator, z, coords, targets, stats),
                            targets.shape[0], steps)


def encode_with_loss(decoder, modulator, per_image_loss: Callable[[torch.Tensor], torch.Tensor], batch: int,
                     steps: int | None = None) -> torch.Tensor:
    """Latents that minimise ``per_image_loss``, found the way the modulator says, with decoder and modulator frozen.

    The one encoding loop behind `encode_images` (the render's MSE at the pixel centres) and
    `encode_area_consistent` (the area-averaged larger render's MSE): ``"meta_sgd"`` takes the meta-learned inner
    loop's steps (first order), ``"auto_decode"`` fits with Adam (`optimise_latents`).

    Args:
        decoder: A modulated decoder (its parameters' device and dtype are the latents').
        modulator: Its [`LatentModulator`][qiren_gen.models.LatentModulator].
        per_image_loss: ``z (batch, latent_dim) -> (batch,)`` losses, each image's from its own latent only.
        batch: Latents to find.
        steps: Encoding steps (default ``modulator.config.inner_steps``).

    Returns:
        ``(batch, latent_dim)`` latents, detached.

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import encode_with_loss
        >>> from qiren_gen.models import LatentModulator, ModulatedSIREN
        >>> decoder = ModulatedSIREN(hidden_features=8, hidden_layers=1)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=3)
        >>> target = torch.tensor([[0.5, -0.5, 0.0]])  # any differentiable per-image loss works
        >>> encode_with_loss(decoder, modulator, lambda z: (z - target).square().sum(1), batch=1).shape
        torch.Size([1, 3])
    """
    param = next(decoder.parameters())
    with frozen(decoder, modulator):
        if getattr(modulator.config, "encoding", "meta_sgd") == "auto_decode":
            return optimise_latents(modulator, per_image_loss, batch, steps, param.device, param.dtype)
        with torch.enable_grad():
            latents = _meta_sgd_latents(modulator, per_image_loss, batch, steps, True, param.device, param.dtype)
    return latents.detach()


def render_chunk_points(decoder, batch: int, budget: int = RENDER_MEMORY_BUDGET) -> int:
    """Grid points per rendering chunk (each rendered for all ``batch`` images) so that one activation of the
    decoder's widest layer, ``batch * points * width`` numbers, stays within ``budget`` bytes.

    Args:
        decoder: A modulated decoder (its widest ``nn.Linear`` and its parameters' dtype set the size of a point).
        batch: Images rendered together.
        budget: Bytes one such activation may take (default ``RENDER_MEMORY_BUDGET``, 32 MiB).

    Returns:
        Points per chunk, at least 1.

    Example:
        >>> from qiren_gen.functa import render_chunk_points
        >>> from qiren_gen.models import FeatureSynthesisDecoder
        >>> decoder = FeatureSynthesisDecoder(n_heads=2, n_qubits=2, hidden_features=128, hidden_layers=1)
        >>> render_chunk_points(decoder, batch=16)  # 16 images x 4096 points x 128 floats = 32 MiB
        4096
    """
    widths = [m.out_features for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    if not widths:
        return max(1, DEFAULT_CHUNK_POINTS // max(batch, 1))
    itemsize = next(decoder.parameters()).element_size()
    return max(1, budget // (max(batch, 1) * max(widths) * itemsize))


def decode_latents(
    decoder, modulator, latents: torch.Tensor, height: int, width: int, chunk_size: int | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> torch.Tensor:
    """Render latents as images at any resolution (about ``[-1, 1]``, not clamped).

    Chunk-major: the pixel-centre grid is cut into chunks of ``chunk_size`` points, and each chunk is rendered for
    every image at once, so its coordinate features are computed once for all images and memory is bounded at any
    resolution. Follows the caller's grad mode: wrap in ``torch.no_grad()`` when only rendering.

    Args:
        decoder: A modulated decoder.
        modulator: Its [`LatentModulator`][qiren_gen.models.LatentModulator].
        latents: ``(B, latent_dim)``.
        height: Output height in pixels.
        width: Output width in pixels.
        chunk_size: Grid points per chunk, each rendered for every image (default: `render_chunk_points`,
            from a memory budget).
        progress: Wraps the iterator over chunk starts (e.g. a pipeline's ``progress_bar``).

    Returns:
        ``(B, C, height, width)`` images.

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import decode_latents, encode_images
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> images = torch.rand(2, 1, 4, 4) * 2 - 1  # two 4x4 grayscale images in [-1, 1]
        >>> latents = encode_images(decoder, modulator, images)
        >>> with torch.no_grad():
        ...     decode_latents(decoder, modulator, latents, 16, 16).shape  # 4x larger than encoded
        torch.Size([2, 1, 16, 16])
    """
    if not isinstance(latents, torch.Tensor) or latents.ndim != 2:
        raise ValueError(f"latents must be a (B, latent_dim) tensor, got {getattr(latents, 'shape', type(latents))}")
    if latents.shape[0] < 1:
        raise ValueError(f"latents must hold at least one row, got shape {tuple(latents.shape)}")
    if not latents.dtype.is_floating_point:  # complex latents would lose their imaginary part in the cast below
        raise ValueError(f"latents must be real floating point, got {latents.dtype}")
    param = next(decoder.parameters())
    coords = image_grid(height, width, dtype=param.dtype, device=param.device)
    batch = latents.shape[0]
    if chunk_size is None:
        chunk_size = render_chunk_points(decoder, batch)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    latents = latents.to(device=param.device, dtype=param.dtype)
    modulations = modulator(latents)
    stats = decoder.reference_statistics()
    starts = range(0, coords.shape[0], chunk_size)
    out = None
    for i in progress(starts) if progress is not None else starts:
        chunk = decoder(coords[i : i + chunk_size], modulations, stats=stats)  # (B, points, C)
        if out is None:
            out = chunk.new_empty(batch, coords.shape[0], chunk.shape[-1])
        out[:, i : i + chunk.shape[1]] = chunk
    return out.reshape(batch, height, width, -1).permute(0, 3, 1, 2).contiguous()
