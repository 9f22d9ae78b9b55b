"""Feature extractors: the weight-free ``qiren-pixel-pool`` (registered with torch-fidelity's extension API) and
the standard Inception-v3 weights, resolved before any sample is generated so an offline machine fails at once."""
from __future__ import annotations

import os
import socket
import urllib.error
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .images import to_uint8_rgb

INCEPTION = "inception-v3-compat"
PIXEL_POOL = "qiren-pixel-pool"


def _pixel_pool_class() -> type:
    from torch_fidelity import FeatureExtractorBase

    class PixelPoolFeatureExtractor(FeatureExtractorBase):
        """Area-downsample to 4x4 per channel, scale to [0, 1]: 48 deterministic features. Not Inception: not FID."""

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return ("48",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return "48"

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> torch.Tensor:
            return torch.zeros(1, 3, 16, 16, dtype=torch.uint8)

        def __init__(self, name: str, features_list: list[str], **kwargs: Any) -> None:
            super().__init__(name, features_list)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
                raise ValueError(f"expected uint8 images (B, 3, H, W), got {x.dtype} {tuple(x.shape)}")
            feats = F.adaptive_avg_pool2d(x.double() / 255.0, 4).flatten(1).float()
            return (feats,)

    return PixelPoolFeatureExtractor


def register_feature_extractors() -> None:
    """Register qiren-gen's extra extractors with torch-fidelity (idempotent)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if PIXEL_POOL not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(PIXEL_POOL, _pixel_pool_class())


def extract_features(images: Any, feature_extractor: str = PIXEL_POOL, **kwargs: Any) -> np.ndarray:
    """Features of an image batch from a registered torch-fidelity extractor at its FID layer (float64 array)."""
    from torch_fidelity.utils import create_feature_extractor, resolve_feature_layer_for_metric

    register_feature_extractors()
    layer = resolve_feature_layer_for_metric("fid", feature_extractor=feature_extractor)
    fe = create_feature_extractor(feature_extractor, [layer], cuda=False, verbose=False, **kwargs)
    with torch.no_grad():
        return fe(to_uint8_rgb(images))[0].double().numpy()


INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


def resolve_inception_weights(path: str | os.PathLike | None = None, timeout: float = 60.0) -> str:
    """Return a local path to torch-fidelity's Inception-v3 weights, downloading them (torch hub cache) if needed.

    Raises a one-line ``OSError`` naming ``--fid-weights PATH`` when the file is missing or cannot be downloaded.
    """
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise OSError(f"--fid-weights {path}: no such file (expected a local copy of {INCEPTION_WEIGHTS_FILE})")
        _check_inception_state_dict(path)
        return path
    from torch_fidelity import feature_extractor_inceptionv3 as fe_inception

    url = fe_inception.URL_INCEPTION_V3
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    if os.path.isfile(cached):
        return cached
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torch.hub.download_url_to_file(url, cached, progress=True)
    except (urllib.error.URLError, OSError, socket.timeout, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(
            f"cannot download the Inception-v3 FID weights ({reason}); you are probably offline: pass "
            f"--fid-weights PATH, a local copy of {INCEPTION_WEIGHTS_FILE} (from {url})"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return cached


def _check_inception_state_dict(path: str) -> None:
    """Fail in one line, before any sampling, when ``path`` is not torch-fidelity's Inception state dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors: no code runs
    except Exception as exc:  # noqa: BLE001 - pickle / zip / torch errors all mean "not a weights file"
        raise ValueError(f"--fid-weights {path}: not a PyTorch weights file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not {"Conv2d_1a_3x3.conv.weight", "fc.weight"} <= set(state):
        raise ValueError(f"--fid-weights {path}: not torch-fidelity's Inception-v3 weights ({INCEPTION_WEIGHTS_FILE})")
