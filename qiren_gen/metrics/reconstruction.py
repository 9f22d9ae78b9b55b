"""Reconstruction metrics for image batches (float in [0, data_range], (B, C, H, W) or (C, H, W)): MSE, PSNR, SSIM."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _batched(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}")
    if pred.dim() == 3:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W) or (C, H, W), got {tuple(pred.shape)}")
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    return pred.to(dtype), target.to(dtype)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error per image (``reduction='none'``) or over the batch."""
    pred, target = _batched(pred, target)
    return _reduce((pred - target).pow(2).flatten(1).mean(1), reduction)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (inf for identical images), averaged unless ``reduction='none'``."""
    per_image = mse(pred, target, reduction="none")
    return _reduce(10.0 * torch.log10(data_range**2 / per_image), reduction)


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), Gaussian 11x11 window, averaged over channels; differentiable.

    Matches ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=..., channel_axis=0)`` (the published SSIM), so numbers compare with other papers.
    """
    pred, target = _batched(pred, target)
    size = 2 * int(3.5 * sigma + 0.5) + 1  # skimage's window for gaussian_weights (truncate=3.5)
    if min(pred.shape[-2:]) < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size} pixels, got {tuple(pred.shape[-2:])}")
    b, c, h, w = pred.shape
    g = _gaussian_window(size, sigma, pred.dtype, pred.device)
    window = (g[:, None] * g[None, :]).expand(c, 1, size, size)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)  # valid region only: skimage crops the same border

    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return _reduce(s.flatten(1).mean(1), reduction)
