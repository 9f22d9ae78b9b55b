"""Fitting metrics for signals in [-1, 1]: MSE and PSNR (peak-to-peak range 2). (numpy or torch in, one float out; image-batch metrics live in ``reconstruction``)."""
from __future__ import annotations

import math

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def mse(prediction: ArrayLike, target: ArrayLike) -> float:
    """Mean squared error over all samples (shapes must match)."""
    p, t = _np(prediction), _np(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} does not match target shape {t.shape}")
    return float(np.mean((p - t) ** 2))


def psnr(prediction: ArrayLike, target: ArrayLike, data_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB for values in a range of width ``data_range`` (2 for [-1, 1])."""
    err = mse(prediction, target)
    return math.inf if err == 0 else 10 * math.log10(data_range**2 / err)
