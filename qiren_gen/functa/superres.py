"""Prior-based superresolution: encode a low-resolution image with the generative (meta-learned) decoder, render
it at any higher resolution. The decoder's knowledge of faces fills in what a single-image fit cannot.

``research.prior_superres.study`` measures it against bicubic interpolation and a single-image QIREN fit.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..data.grids import image_grid
from .codec import decode_latents, encode_images, encode_with_loss


def encode_area_consistent(decoder, modulator, images: torch.Tensor, factor: int,
                           steps: int | None = None) -> torch.Tensor:
    """Latents whose render at ``factor`` x the input size, area-averaged back down, matches ``images``.

    The modulator's encoding (meta-learned inner loop, or auto-decoding with the decoder frozen), from a zero
    latent, but with the low-resolution pixels modelled as what they are (averages over ``factor x factor``
    high-resolution pixels) instead of point samples of the decoder at the low-resolution pixel centres.

    Args:
        decoder: A modulated decoder.
        modulator: Its [`LatentModulator`][qiren_gen.models.LatentModulator].
        images: ``(B, C, h, w)`` low-resolution images in [-1, 1].
        factor: Integer upsampling factor the latents will be rendered at.
        steps: Encoding steps (default ``modulator.config.inner_steps``).

    Returns:
        ``(B, latent_dim)`` latents, detached.

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import encode_area_consistent
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> images = torch.rand(2, 1, 4, 4) * 2 - 1  # two 4x4 grayscale images in [-1, 1]
        >>> encode_area_consistent(decoder, modulator, images, factor=2).shape
        torch.Size([2, 4])
    """

    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    param = next(decoder.parameters())
    low = images.to(param)
    b, c, h, w = low.shape
    coords = image_grid(h * factor, w * factor, dtype=param.dtype, device=param.device)
    with torch.no_grad():
        stats = decoder.reference_statistics()

    def area_loss(latents: torch.Tensor) -> torch.Tensor:
        out = decoder(coords, modulator(latents), stats=stats)
        render = out.reshape(b, h * factor, w * factor, c).permute(0, 3, 1, 2)
        return (F.avg_pool2d(render, factor) - low).square().mean(dim=(1, 2, 3))

    return encode_with_loss(decoder, modulator, area_loss, b, steps)


def prior_superresolve(decoder, modulator, images: torch.Tensor, height: int, width: int,
                       steps: int | None = None, chunk_size: int | None = None,
                       consistency: str = "point") -> torch.Tensor:
    """Superresolution through a trained decoder's latent space: encode the low-resolution images, decode larger.

    Args:
        decoder: A trained modulated decoder.
        modulator: Its [`LatentModulator`][qiren_gen.models.LatentModulator].
        images: ``(B, C, h, w)`` in [-1, 1].
        height: Output height.
        width: Output width.
        steps: Encoding steps (default ``modulator.config.inner_steps``).
        chunk_size: Points per image rendered at once (see [`decode_latents`][qiren_gen.functa.decode_latents]).
        consistency: ``"point"`` encodes with the plain encoding ([`encode_images`][qiren_gen.functa.encode_images]);
            ``"area"`` (needs ``height / h == width / w``, an integer) fits the area-averaged high-resolution render.

    Returns:
        ``(B, C, height, width)`` images in about [-1, 1].

    Examples:
        >>> import torch
        >>> from qiren_gen.functa import prior_superresolve
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> images = torch.rand(2, 1, 4, 4) * 2 - 1  # two 4x4 grayscale images in [-1, 1]
        >>> prior_superresolve(decoder, modulator, images, 8, 8, consistency="area").shape
        torch.Size([2, 1, 8, 8])
    """

    image_grid(height, width)  # validates height / width with a clear ValueError
    if consistency == "point":
        latents = encode_images(decoder, modulator, images, steps=steps)
    elif consistency == "area":
        h, w = images.shape[-2:]
        if height % h or width % w or height // h != width // w:
            raise ValueError(f"area consistency needs one integer factor: {h}x{w} -> {height}x{width}")
        latents = encode_area_consistent(decoder, modulator, images, height // h, steps)
    else:
        raise ValueError(f"consistency must be 'point' or 'area', got {consistency!r}")
    with torch.no_grad():
        return decode_latents(decoder, modulator, latents, height, width, chunk_size=chunk_size)
