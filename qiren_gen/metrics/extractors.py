"""Feature extractors: the weight-free ``qiren-pixel-pool`` (registered with torch-fidelity's extension API) and
torch-fidelity's Inception-v3, built from weights whose whole sha256 is checked and which are loaded without pickle.
The weights are resolved before any sample is generated, so an offline machine fails at once."""
from __future__ import annotations

import functools
import os
import secrets
import socket
import urllib.error
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io.errors import quoted
from ..io.weights import check_digest, read_weights
from ..runtime.errors import one_line
from .images import to_uint8_rgb

INCEPTION = "inception-v3-compat"
PIXEL_POOL = "qiren-pixel-pool"


@functools.cache
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


def extract_features(images: Any, feature_extractor: str = PIXEL_POOL, weights_path: str | None = None) -> np.ndarray:
    """Features of an image batch at the extractor's FID layer (float64 array), from `build_feature_extractor`."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    register_feature_extractors()
    layer = FEATURE_EXTRACTORS_REGISTRY[feature_extractor].get_default_feature_layer_for_metric("fid") \
        if feature_extractor in FEATURE_EXTRACTORS_REGISTRY else ""
    fe = build_feature_extractor(feature_extractor, [layer], weights_path)
    with torch.no_grad():
        return fe(to_uint8_rgb(images))[0].double().numpy()


INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
"""The full sha256 of torch-fidelity's Inception-v3 weights. torch-fidelity publishes only its first 8 hex digits (in
the file name, torch.hub's convention); the whole digest is the one the same file has as pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` and in OpenMMLab's weight table. 32 bits of prefix can be matched by a
made-up file in under a minute; all 256 bits cannot."""
INCEPTION_BYTES = 95_628_359
"""Length of that file, checked before it is hashed."""

SUPPORTED_EXTRACTORS = (INCEPTION, PIXEL_POOL)
"""The extractors qiren-gen builds. torch-fidelity's others (CLIP, DINOv2, VGG16) load their weights with pickle or
run code fetched from the network, so they are refused rather than run."""


def _check_inception_file(path: str, what: str) -> None:
    check_digest(path, INCEPTION_SHA256, INCEPTION_BYTES,
                 f"{what} (torch-fidelity's Inception-v3 weights {INCEPTION_WEIGHTS_FILE}; FID needs exactly "
                 "that file)")


def resolve_inception_weights(path: str | os.PathLike | None = None, timeout: float = 60.0) -> str:
    """Return a local path to torch-fidelity's Inception-v3 weights, downloading them (torch hub cache) if needed.

    The file must be exactly torch-fidelity's: its length and its whole sha256 (`INCEPTION_SHA256`) are
    checked, here and again when it is loaded. Raises a one-line ``OSError`` naming ``--fid-weights PATH`` when the
    file is missing or cannot be downloaded, and a one-line ``ValueError`` (``BadInputFile``) for any other file.
    """
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise OSError(f"--fid-weights {quoted(path)}: no such file (expected a local copy of "
                          f"{INCEPTION_WEIGHTS_FILE})")
        _check_inception_file(path, f"--fid-weights {quoted(path)}")
        return path
    from torch_fidelity import feature_extractor_inceptionv3 as fe_inception

    url = fe_inception.URL_INCEPTION_V3
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    if os.path.isfile(cached):
        _check_inception_file(cached, f"the cached weights {quoted(cached)} (delete the file to download it again)")
        return cached
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    _download_checked(url, cached, timeout)
    return cached


def _download_checked(url: str, cached: str, timeout: float) -> None:
    """Download ``url`` beside ``cached``, check its whole digest, then rename it into place (a wrong or cut
    download never becomes the cached file)."""
    partial = f"{cached}.{secrets.token_hex(4)}.partial"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torch.hub.download_url_to_file(url, partial, hash_prefix=INCEPTION_SHA256[:8], progress=True)
        _check_inception_file(partial, "the downloaded Inception-v3 weights")
        os.replace(partial, cached)
    except (TimeoutError, urllib.error.URLError, OSError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(
            f"cannot download the Inception-v3 FID weights ({reason}); you are probably offline: pass "
            f"--fid-weights PATH, a local copy of {INCEPTION_WEIGHTS_FILE} (from {url})"
        ) from None
    except (RuntimeError, ValueError) as exc:  # torch.hub's prefix mismatch, or our full digest
        raise OSError(f"the downloaded Inception-v3 weights are corrupt ({one_line(exc, 200)}); try again") from None
    finally:
        socket.setdefaulttimeout(previous)
        if os.path.exists(partial):
            os.unlink(partial)


def load_inception_state_dict(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The Inception-v3 state dict, from a file whose full digest is checked, loaded without pickle
    (``torch.load(weights_only=True)``): a file that is not torch-fidelity's is refused before it is parsed, and
    nothing in a file ever runs."""
    path = resolve_inception_weights(path)
    return read_weights(path, sha256=INCEPTION_SHA256, size=INCEPTION_BYTES,
                        what=f"the Inception-v3 weights {quoted(path)}")


def add_inception_layers(module: torch.nn.Module) -> None:
    """Give ``module`` torch-fidelity 0.4's Inception-v3 layers, named as in its weights file (untrained)."""
    from torch_fidelity import feature_extractor_inceptionv3 as t

    module.Conv2d_1a_3x3 = t.BasicConv2d(3, 32, kernel_size=3, stride=2)
    module.Conv2d_2a_3x3 = t.BasicConv2d(32, 32, kernel_size=3)
    module.Conv2d_2b_3x3 = t.BasicConv2d(32, 64, kernel_size=3, padding=1)
    module.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
    module.Conv2d_3b_1x1 = t.BasicConv2d(64, 80, kernel_size=1)
    module.Conv2d_4a_3x3 = t.BasicConv2d(80, 192, kernel_size=3)
    module.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
    module.Mixed_5b = t.InceptionA(192, pool_features=32)
    module.Mixed_5c = t.InceptionA(256, pool_features=64)
    module.Mixed_5d = t.InceptionA(288, pool_features=64)
    module.Mixed_6a = t.InceptionB(288)
    module.Mixed_6b = t.InceptionC(768, channels_7x7=128)
    module.Mixed_6c = t.InceptionC(768, channels_7x7=160)
    module.Mixed_6d = t.InceptionC(768, channels_7x7=160)
    module.Mixed_6e = t.InceptionC(768, channels_7x7=192)
    module.Mixed_7a = t.InceptionD(768)
    module.Mixed_7b = t.InceptionE_1(1280)
    module.Mixed_7c = t.InceptionE_2(2048)
    module.AvgPool = nn.AdaptiveAvgPool2d(output_size=(1, 1))
    module.fc = nn.Linear(2048, 1008)


@functools.cache
def _checked_inception_class() -> type:
    from torch_fidelity import feature_extractor_inceptionv3 as tf_inception
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.helpers import text_to_dtype

    class CheckedInceptionV3(tf_inception.FeatureExtractorInceptionV3):
        """torch-fidelity's Inception-v3 extractor (its layers, its ``forward``) built from a state dict that
        `load_inception_state_dict` checked, instead of torch-fidelity's own unrestricted ``torch.load``
        or unhashed hub download. The layers are torch-fidelity 0.4's; loading the state dict strictly fails on any
        other layout."""

        def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                     feature_extractor_internal_dtype: str | None = None, **kwargs: Any) -> None:
            FeatureExtractorBase.__init__(self, name, features_list)
            if feature_extractor_internal_dtype not in ("float32", "float64", None):
                raise ValueError("the Inception extractor's internal dtype must be float32 or float64")
            self.feature_extractor_internal_dtype = text_to_dtype(feature_extractor_internal_dtype, "float32")
            add_inception_layers(self)
            self.load_state_dict(load_inception_state_dict(feature_extractor_weights_path))
            self.to(self.feature_extractor_internal_dtype)
            self.requires_grad_(False)
            self.eval()

    return CheckedInceptionV3


def build_feature_extractor(feature_extractor: str, layers: list[str], weights_path: str | None = None,
                            cuda: bool = False) -> torch.nn.Module:
    """The extractor ``feature_extractor`` giving ``layers``: Inception-v3 from checked weights (never through
    torch-fidelity's pickle load), or the weight-free pixel pool; one-line ``ValueError`` for any other name."""
    if feature_extractor not in SUPPORTED_EXTRACTORS:
        raise ValueError(f"feature extractor {feature_extractor!r} is not supported: qiren-gen builds "
                         f"{' and '.join(SUPPORTED_EXTRACTORS)} only (torch-fidelity's others load pickled weights)")
    register_feature_extractors()
    cls = _checked_inception_class() if feature_extractor == INCEPTION else _pixel_pool_class()
    extractor = cls(feature_extractor, list(layers), feature_extractor_weights_path=weights_path)
    extractor.requires_grad_(False)
    extractor.eval()
    return extractor.cuda() if cuda else extractor
