"""What each tab of the demo computes, as plain functions of a generation pipeline (no Gradio here).

Each request builds its own ``torch.Generator`` from its own seed, so requests never share random state; the caller
serialises use of one pipeline object (its scheduler holds per-call state). Nothing assumes a decoder class or a
training size: sizes come from the pipeline's config, images from ``pipe(...)`` / ``pipe.render`` and the functa
facade (``encode_images`` / ``decode_latents``).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.utils import make_image_grid
from PIL import Image

from ..functa import decode_latents, encode_images
from ..metrics import psnr
from ..pipelines.schedulers import canonical_sampler_name, make_scheduler
from .limits import DemoLimits, as_int, check_demo_shots, check_pixels, check_seed, check_steps
from .uploads import centre_square

ANY_RESOLUTION_SIZES = (16, 32, 64, 128, 256)


def _generator(pipe, seed: int) -> torch.Generator:
    return torch.Generator(device=pipe.device).manual_seed(seed)


def grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns of an about-square grid of ``n`` images (rows divide ``n``)."""
    rows = max(1, int(math.floor(math.sqrt(n))))
    while n % rows:
        rows -= 1
    return rows, n // rows


def _steps(pipe, steps, limits: DemoLimits) -> int:
    return check_steps(steps, limits, pipe.scheduler.config.num_train_timesteps)


def _side(value, field: str, limits: DemoLimits) -> int:
    return as_int(value, field, 1, limits.max_side, "larger sides are refused to keep the answer fast")


@contextlib.contextmanager
def using_sampler(pipe, name: str | None) -> Iterator[None]:
    """Sample with the named sampler (``ddim``, ``dpm++``, ...) on the pipeline's noise schedule, then put the
    pipeline's own scheduler back; ``ValueError`` listing the known names for an unknown one."""
    name = canonical_sampler_name("ddim" if name in (None, "") else name)
    original = pipe.scheduler
    pipe.scheduler = make_scheduler(name, original.config)
    try:
        yield
    finally:
        pipe.scheduler = original


def sample_grid(pipe, seed, num_faces, resolution, steps, limits: DemoLimits, sampler: str | None = None,
                shots=0) -> Image.Image:
    """``num_faces`` samples of seed ``seed`` at ``resolution`` x ``resolution`` with ``sampler`` (default DDIM),
    as one grid image; ``shots`` > 0 estimates every circuit expectation from that many measurement samples (as a
    quantum device would), 0 or empty decodes exactly."""
    seed = check_seed(seed)
    num_faces = as_int(num_faces, "number of faces", 1, limits.max_faces)
    resolution = _side(resolution, "resolution", limits)
    check_pixels(limits, num_faces * resolution * resolution, f"{num_faces} faces at {resolution}x{resolution}")
    steps = _steps(pipe, steps, limits)
    shots = check_demo_shots(shots)
    with using_sampler(pipe, sampler):
        images = pipe(batch_size=num_faces, height=resolution, width=resolution, num_inference_steps=steps,
                      generator=_generator(pipe, seed), shots=shots).images
    return make_image_grid(images, *grid_shape(num_faces))


def any_resolution(pipe, seed, sizes, steps, limits: DemoLimits) -> list[Image.Image]:
    """One sample (one latent) rendered at every size in ``sizes``: the decoder is a function of coordinates."""
    seed = check_seed(seed)
    if not sizes:
        raise ValueError("sizes: pick at least one size")
    sizes = sorted({_side(s, "size", limits) for s in sizes})
    check_pixels(limits, sum(s * s for s in sizes), "sizes " + ", ".join(map(str, sizes)))
    steps = _steps(pipe, steps, limits)
    latents = pipe.sample_latents(1, steps, _generator(pipe, seed))
    return [pipe.image_processor.postprocess(pipe.render(latents, s, s).float(), output_type="pil")[0]
            for s in sizes]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` (``(1, d)``) at fractions ``t`` (``(n,)``)."""
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    t = t[:, None].to(a)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolate(pipe, seed_a, seed_b, num_frames, resolution, steps, limits: DemoLimits) -> Image.Image:
    """A strip of faces along the spherical path between the prior's starting noise of two seeds.

    The noise is interpolated, not the latents: DDIM (eta 0) maps noise to latents deterministically, and a
    spherical path keeps every point at the norm typical of Gaussian noise, so every frame is a proper prior
    sample; a straight line between two latents passes through averages the prior never produces.
    """
    seed_a, seed_b = check_seed(seed_a, "seed A"), check_seed(seed_b, "seed B")
    num_frames = as_int(num_frames, "number of faces", 2, limits.max_faces)
    resolution = _side(resolution, "resolution", limits)
    check_pixels(limits, num_frames * resolution * resolution,
                 f"{num_frames} faces at {resolution}x{resolution}")
    steps = _steps(pipe, steps, limits)
    dim = pipe.prior.config.latent_dim
    noise = [torch.randn((1, dim), generator=torch.Generator().manual_seed(s)) for s in (seed_a, seed_b)]
    path = slerp(noise[0], noise[1], torch.linspace(0, 1, num_frames))
    images = pipe(batch_size=num_frames, height=resolution, width=resolution, num_inference_steps=steps,
                  latents=path.to(pipe.device, pipe.prior.dtype), eta=0.0).images
    return make_image_grid(images, 1, num_frames)


@dataclass
class EncodedUpload:
    """An uploaded image as the model sees it, its reconstruction, and 4x renders (prior and bicubic)."""

    model_input: Image.Image
    reconstruction: Image.Image
    prior_upscaled: Image.Image
    bicubic_upscaled: Image.Image
    psnr_db: float
    method: str = "the meta-learned inner loop"


def encode_upload(pipe, image: Image.Image, scale: int = 4) -> EncodedUpload:
    """Encode ``image`` (centre-cropped, resized to the training size) with ``encode_images`` (the way the
    modulator says), decode it at that size and ``scale`` times larger; PSNR of the reconstruction."""
    side = pipe.prior.config.sample_size
    mode = "L" if pipe.decoder.config.out_channels == 1 else "RGB"
    small = centre_square(image, side, mode)
    pixels = pipe.image_processor.numpy_to_pt(pipe.image_processor.pil_to_numpy([small]))
    param = next(pipe.decoder.parameters())
    target = pixels.to(param) * 2 - 1
    latents = encode_images(pipe.decoder, pipe.modulator, target)
    with torch.no_grad():
        low = decode_latents(pipe.decoder, pipe.modulator, latents, side, side)
        high = decode_latents(pipe.decoder, pipe.modulator, latents, side * scale, side * scale)
    to_pil = lambda x: pipe.image_processor.postprocess(x.float(), output_type="pil")[0]  # noqa: E731
    low_clamped = low.float().clamp(-1, 1)
    return EncodedUpload(
        model_input=small,
        reconstruction=to_pil(low),
        prior_upscaled=to_pil(high),
        bicubic_upscaled=small.resize((side * scale, side * scale), Image.Resampling.BICUBIC),
        psnr_db=float(psnr(low_clamped, target.float(), data_range=2.0)),
        method=encoding_method(pipe.modulator),
    )


def encoding_method(modulator) -> str:
    """How ``encode_images`` finds a latent for this modulator, in words for the page."""
    if getattr(modulator.config, "encoding", "meta_sgd") == "auto_decode":
        return "fitting the latent with the decoder frozen (auto-decoding)"
    return "the meta-learned inner loop"


def to_uint8(values: np.ndarray) -> Image.Image:
    """A ``(H, W)`` array in [-1, 1] as an 8-bit grayscale image."""
    return Image.fromarray(((np.clip(values, -1, 1) + 1) * 127.5).round().astype(np.uint8))


__all__ = ["ANY_RESOLUTION_SIZES", "EncodedUpload", "any_resolution", "encode_upload", "encoding_method",
           "grid_shape", "interpolate", "sample_grid", "slerp", "to_uint8"]
