"""Reconstruction metrics: MSE and SSIM of image batches ((B, C, H, W) or (C, H, W)), and the project's one PSNR
(any shape, explicit data range)."""
from __future__ import annotations

import math

import numpy as np
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


def psnr_from_mse(mse: torch.Tensor | float, data_range: float) -> torch.Tensor | float:
    """Peak signal-to-noise ratio in dB from a mean squared error: ``10 log10(data_range**2 / mse)``.

    Args:
        mse: Mean squared error(s), a tensor (element-wise) or a number.
        data_range: Peak-to-peak width of the values' range: 1 for ``[0, 1]``, 2 for ``[-1, 1]``, 255 for uint8.

    Returns:
        PSNR in dB, of the same kind as ``mse`` (``inf`` where the error is 0, ``nan`` where it is ``nan``).

    Examples:
        >>> from qiren_gen.metrics import psnr_from_mse
        >>> psnr_from_mse(0.04, data_range=2.0)
        20.0
    """
    _check_data_range(data_range)
    if isinstance(mse, torch.Tensor):
        return 10.0 * torch.log10(data_range**2 / mse)
    mse = float(mse)
    if not mse >= 0:  # nan or negative
        return math.nan
    if mse == 0 or math.isinf(mse):
        return -math.inf if mse else math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def psnr(
    prediction: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    *,
    data_range: float,
    dim: int | tuple[int, ...] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of ``prediction`` against ``target``, for any tensor shape.

    ``data_range`` has no default on purpose: the project's images and signals live in ``[-1, 1]`` (range 2) while
    saved images and most other libraries use ``[0, 1]`` (range 1), and the same error reads 6.02 dB apart under the
    two. The squared error is accumulated in float64, so the figure does not depend on the inputs' precision.

    Args:
        prediction: Values to score (torch tensor or numpy array).
        target: Reference values of the same shape.
        data_range: Peak-to-peak width of the values' range: 1 for ``[0, 1]``, 2 for ``[-1, 1]``.
        dim: ``None`` (default): one PSNR of the error over every element (a signal, or one image). Otherwise the
            dimension(s) that make up one item, e.g. ``(1, 2, 3)`` for a ``(B, C, H, W)`` batch: one PSNR per item.
        reduction: With ``dim``: ``"mean"`` averages the items' PSNRs, ``"none"`` returns them one per item.

    Returns:
        A float64 tensor: 0-d, or one value per item for ``dim=... , reduction="none"``; ``inf`` for identical inputs.

    Examples:
        >>> import torch
        >>> from qiren_gen.metrics import psnr
        >>> target = torch.zeros(2, 1, 4, 4)
        >>> round(float(psnr(target + 0.2, target, data_range=2.0)), 4)
        20.0
        >>> psnr(target + 0.1, target, data_range=1.0, dim=(1, 2, 3), reduction="none").round(decimals=4)
        tensor([20., 20.], dtype=torch.float64)
    """
    _check_data_range(data_range)
    pred = torch.as_tensor(prediction).detach().to(torch.float64)
    ref = torch.as_tensor(target).detach().to(device=pred.device, dtype=torch.float64)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(ref.shape)}.")
    if dim is None:
        return psnr_from_mse((pred - ref).square().mean(), data_range)
    per_item = psnr_from_mse((pred - ref).square().mean(dim=dim), data_range)
    return _reduce(per_item, reduction)


def _check_data_range(data_range: float) -> None:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0 \
            or not math.isfinite(data_range):
        raise ValueError(f"data_range must be a positive number (1 for [0, 1], 2 for [-1, 1]), got {data_range!r}.")


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
