"""Prior-based superresolution: encode a low-resolution image with the generative (meta-learned) decoder, render
it at any higher resolution. The decoder's knowledge of faces fills in what a single-image fit cannot.

``compare_superres`` measures it against bicubic interpolation and a single-image QIREN fit (the paper's
superresolution protocol) on real held-out images.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def prior_superresolve(decoder, modulator, images: torch.Tensor, height: int, width: int,
                       steps: int | None = None, chunk_size: int | None = None) -> torch.Tensor:
    """``images (B, C, h, w)`` in [-1, 1] -> ``(B, C, height, width)`` in about [-1, 1] via encode -> decode."""
    from ..data.grids import image_grid
    from ..functa import decode_latents, encode_images

    image_grid(height, width)  # validates height / width with a clear ValueError
    latents = encode_images(decoder, modulator, images, steps=steps)
    with torch.no_grad():
        return decode_latents(decoder, modulator, latents, height, width, chunk_size=chunk_size)


def fit_single_image_qiren(image: torch.Tensor, height: int, width: int, steps: int = 300, lr: float = 0.03,
                           seed: int = 0) -> torch.Tensor:
    """Fit the paper's QIREN (8 qubits, ~650 parameters, Adam 0.03, full batch) to one ``(C, h, w)`` image in
    [-1, 1] on its pixel-centre grid and render it at ``height x width`` (BatchNorm in eval mode)."""
    from ..data.grids import image_grid
    from ..models import QIREN

    torch.manual_seed(seed)
    c, h, w = image.shape
    model = QIREN(in_features=2, out_features=c)
    coords = image_grid(h, w)
    target = image.permute(1, 2, 0).reshape(-1, c)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = (model(coords) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(image_grid(height, width))
    return out.reshape(height, width, c).permute(2, 0, 1)


def _psnr01(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = (pred.clamp(0, 1).double() - target.double()).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-12))


def compare_superres(decoder, modulator, faces: torch.Tensor, factor: int = 4, fit_steps: int = 300,
                     progress: bool = True) -> dict:
    """PSNR (dB, [0, 1] images) of ``factor``-x superresolution of ``faces (N, C, H, W)`` in [0, 1].

    Ground truth: the faces area-resized to the largest multiple of ``factor``; input: its ``factor``-x area
    downsampling. Methods: bicubic, single-image QIREN fit, prior-based (this module), plus the prior-based
    reconstruction of the full-resolution face (an upper bound for the encoder). Returns per-method mean PSNR,
    per-image PSNRs and the images themselves (for figures).
    """
    from tqdm.auto import tqdm

    if factor < 2:
        raise ValueError(f"factor must be >= 2, got {factor}")
    size = (faces.shape[2] // factor * factor, faces.shape[3] // factor * factor)
    if min(size) < factor:
        raise ValueError(f"images of {tuple(faces.shape[2:])} are too small for {factor}x")
    gt = F.interpolate(faces.float(), size=size, mode="area") if tuple(faces.shape[2:]) != size else faces.float()
    low = F.avg_pool2d(gt, factor)
    results = {"bicubic": F.interpolate(low, size=size, mode="bicubic", align_corners=False).clamp(0, 1)}
    fits = [fit_single_image_qiren(im * 2 - 1, *size, steps=fit_steps)
            for im in tqdm(low, desc="single-image fits", disable=not progress)]
    results["qiren_single_image_fit"] = ((torch.stack(fits) + 1) / 2).clamp(0, 1)
    results["qiren_prior"] = ((prior_superresolve(decoder, modulator, low * 2 - 1, *size) + 1) / 2).clamp(0, 1)
    results["qiren_prior_full_res_encode"] = (
        (prior_superresolve(decoder, modulator, gt * 2 - 1, *size) + 1) / 2).clamp(0, 1)
    per_image = {k: _psnr01(v, gt) for k, v in results.items()}
    return {
        "factor": factor, "size": size, "num_images": int(faces.shape[0]),
        "psnr": {k: float(v.mean()) for k, v in per_image.items()},
        "psnr_per_image": {k: v.tolist() for k, v in per_image.items()},
        "images": {"ground_truth": gt, "low_res": low, **results},
    }
