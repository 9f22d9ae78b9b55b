"""The MSE of a fitted signal (numpy or torch in, one float out); its PSNR is
``qiren_gen.metrics.psnr(..., data_range=2.0)`` for signals in [-1, 1]. Image-batch metrics live in
``reconstruction``."""
from __future__ import annotations

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
