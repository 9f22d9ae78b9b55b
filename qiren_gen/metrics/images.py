"""Images as torch-fidelity takes them: uint8 (N, 3, H, W), grayscale replicated to RGB."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def to_uint8_rgb(images: Any) -> torch.Tensor:
    """Convert an image batch (float in [0, 1] or uint8; NCHW or NHWC; 1 or 3 channels) to uint8 (N, 3, H, W).

    Grayscale is replicated to three channels, as Inception expects RGB.
    """
    if isinstance(images, (list, tuple)) and images and not torch.is_tensor(images[0]):
        images = np.stack([np.asarray(im) for im in images])  # list of PIL images or arrays
    x = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    x = x.detach().cpu()
    if x.dim() == 3:  # (N, H, W) grayscale
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W) or (N, H, W, C), got shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


class ImageTensorDataset(Dataset):
    """A fixed set of uint8 (3, H, W) images held in memory: torch-fidelity's "Dataset" input."""

    def __init__(self, images: Any) -> None:
        self.images = to_uint8_rgb(images)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]
