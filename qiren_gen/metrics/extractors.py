"""Feature extractors: the weight-free ``qiren-pixel-pool`` (registered with torch-fidelity's extension API) and
the standard Inception-v3 weights, resolved before any sample is generated so an offline machine fails at once."""
from __future__ import annotations

import hashlib
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
INCEPTION_SHA256_PREFIX = "6726825d"  # torch.hub naming: the file's sha256 starts with the suffix of its name


def resolve_inception_weights(path: str | os.PathLike | None = None, timeout: float = 60.0) -> str:
    """Return a local path to torch-fidelity's Inception-v3 weights, downloading them (torch hub cache) if needed.

    The file must be exactly torch-fidelity's (sha256 checked): FID is only comparable with those weights. Raises a
    one-line ``OSError`` naming ``--fid-weights PATH`` when the file is missing or cannot be downloaded, and a
    ``ValueError`` when a file is not the right one.
    """
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise OSError(f"--fid-weights {path}: no such file (expected a local copy of {INCEPTION_WEIGHTS_FILE})")
        _verify_sha256(path, f"--fid-weights {path}")
        return path
    from torch_fidelity import feature_extractor_inceptionv3 as fe_inception

    url = fe_inception.URL_INCEPTION_V3
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    if os.path.isfile(cached):
        _verify_sha256(cached, f"cached weights {cached} (delete the file to download it again)")
        return cached
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torch.hub.download_url_to_file(url, cached, hash_prefix=INCEPTION_SHA256_PREFIX, progress=True)
    except (urllib.error.URLError, OSError, socket.timeout, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(
            f"cannot download the Inception-v3 FID weights ({reason}); you are probably offline: pass "
            f"--fid-weights PATH, a local copy of {INCEPTION_WEIGHTS_FILE} (from {url})"
        ) from None
    except RuntimeError as exc:  # torch.hub's hash mismatch: the download is removed, nothing half-written stays
        raise OSError(f"the downloaded Inception-v3 weights are corrupt ({exc}); try again") from None
    finally:
        socket.setdefaulttimeout(previous)
    return cached


def _verify_sha256(path: str, what: str) -> None:
    """One-line ``ValueError`` unless the file's sha256 starts with `INCEPTION_SHA256_PREFIX`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(INCEPTION_SHA256_PREFIX):
        raise ValueError(
            f"{what}: not torch-fidelity's Inception-v3 weights {INCEPTION_WEIGHTS_FILE} (sha256 "
            f"{digest.hexdigest()[:8]}..., expected {INCEPTION_SHA256_PREFIX}...); FID needs exactly those weights"
        )
