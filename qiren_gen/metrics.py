"""Image metrics: MSE / PSNR / SSIM for reconstructions, FID / KID through ``torch_fidelity.calculate_metrics``.

FID and KID use torch-fidelity's standard ``inception-v3-compat`` extractor by default (the numbers papers report).
``qiren-pixel-pool`` is a tiny deterministic extractor registered through torch-fidelity's extension API: it needs no
weights, so tests and offline smoke runs exercise the real plumbing, but its Fréchet distance is *not* FID.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import urllib.error
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

INCEPTION = "inception-v3-compat"
PIXEL_POOL = "qiren-pixel-pool"
STATS_FORMAT = "qiren-gen-reference-stats/1"
KID_MAX_SUBSET = 1000  # torch-fidelity's default subset size; smaller sets use all their samples per subset


# ----------------------------------------------------------------------------------------------------------------------
# Reconstruction metrics (float images in [0, data_range], shape (B, C, H, W) or (C, H, W))
# ----------------------------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------------------------
# Images for torch-fidelity: uint8, (N, 3, H, W)
# ----------------------------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------------------------
# A weight-free extractor for tests and offline smoke runs (registered with torch-fidelity's extension API)
# ----------------------------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------------------------
# Inception weights: resolved up front, so an offline machine fails before any sample is generated
# ----------------------------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------------------------
# Cached reference statistics: torch-fidelity's own cache entries, bundled in one file
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class ReferenceStatistics:
    """Reference-set features / FID statistics from one extractor, as torch-fidelity caches them."""

    feature_extractor: str
    layer: str
    mu: np.ndarray
    sigma: np.ndarray
    num_images: int
    resolution: int | None = None
    source: str = ""
    features: torch.Tensor | None = None  # kept for KID when the set is small enough
    meta: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """Write one ``.pt`` file that ``--reference`` accepts later (no image decoding, no feature extraction)."""
        obj = {"format": STATS_FORMAT, **{k: getattr(self, k) for k in self.__dataclass_fields__}}
        torch.save(obj, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReferenceStatistics":
        """Read a file written by :meth:`save`; a clear ``ValueError`` for anything else."""
        try:
            obj = torch.load(os.fspath(path), map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
            raise ValueError(f"{path}: not a readable reference statistics file ({type(exc).__name__})") from None
        if not isinstance(obj, dict) or obj.get("format") != STATS_FORMAT:
            raise ValueError(f"{path}: not a qiren-gen reference statistics file (format {STATS_FORMAT})")
        obj.pop("format")
        return cls(**obj)


# ----------------------------------------------------------------------------------------------------------------------
# FID / KID
# ----------------------------------------------------------------------------------------------------------------------
def metric_names(feature_extractor: str) -> tuple[str, str]:
    """Report keys: ``fid``/``kid`` only for the standard Inception extractor, never for a stand-in."""
    if feature_extractor == INCEPTION:
        return "fid", "kid"
    return f"frechet_distance[{feature_extractor}]", f"kernel_distance[{feature_extractor}]"


def compute_fid_kid(
    samples: Any,
    reference: Dataset | str | ReferenceStatistics,
    *,
    feature_extractor: str = INCEPTION,
    weights_path: str | None = None,
    kid: bool = True,
    kid_subsets: int = 100,
    batch_size: int = 64,
    cuda: bool | None = None,
    reference_cache_name: str | None = None,
    cache_root: str | None = None,
    verbose: bool = False,
) -> tuple[dict[str, float], ReferenceStatistics]:
    """FID (and KID) between generated ``samples`` and ``reference`` through ``torch_fidelity.calculate_metrics``.

    ``samples``: image batch or Dataset of uint8 (3, H, W). ``reference``: a Dataset, an image folder, or
    :class:`ReferenceStatistics`. Returns (metrics keyed by :func:`metric_names`, the reference statistics used).
    """
    import torch_fidelity
    from torch_fidelity.metric_fid import KEY_METRIC_FID
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD

    register_feature_extractors()
    input1 = samples if isinstance(samples, Dataset) else ImageTensorDataset(samples)
    n1 = len(input1)
    if n1 < 2:
        raise ValueError(f"FID needs at least 2 generated samples, got {n1}")
    layer = _layer(feature_extractor)
    tmp = tempfile.mkdtemp(prefix="qiren-fidelity-")
    try:
        root = cache_root or tmp
        name = reference_cache_name or "qiren-reference"
        if isinstance(reference, ReferenceStatistics):
            if reference.feature_extractor != feature_extractor or reference.layer != layer:
                raise ValueError(
                    f"reference statistics were computed with {reference.feature_extractor} (layer {reference.layer}), "
                    f"not {feature_extractor} (layer {layer})"
                )
            n2 = reference.num_images
            kid = kid and reference.features is not None
            _write_cache(reference, tmp, name)
            root, input2 = tmp, name  # torch-fidelity reads both entries from its cache and never opens input2
        else:
            input2 = reference
            n2 = _count(reference)
        if n2 < 2:
            raise ValueError(f"the reference set needs at least 2 images, got {n2}")
        if feature_extractor == INCEPTION:
            weights_path = resolve_inception_weights(weights_path)  # after the cheap checks: offline fails last
        subset = min(KID_MAX_SUBSET, n1, n2)
        kwargs = dict(
            input1=input1,
            input2=input2,
            input2_cache_name=name,
            cache=True,
            cache_root=root,
            fid=True,
            kid=kid,
            kid_subsets=kid_subsets,
            kid_subset_size=subset,
            feature_extractor=feature_extractor,
            feature_layer_fid=layer,
            feature_layer_kid=layer,
            batch_size=batch_size,
            cuda=torch.cuda.is_available() if cuda is None else cuda,
            save_cpu_ram=True,  # no DataLoader worker processes: images are in memory or cheap to decode
            verbose=verbose,
        )
        if weights_path is not None:
            kwargs["feature_extractor_weights_path"] = weights_path
        raw = torch_fidelity.calculate_metrics(**kwargs)
        if isinstance(reference, ReferenceStatistics):
            stats = reference
        else:
            stats = _read_cache(root, name, feature_extractor, layer, n2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fid_key, kid_key = metric_names(feature_extractor)
    out = {fid_key: float(raw[KEY_METRIC_FID])}
    if KEY_METRIC_KID_MEAN in raw:
        out[f"{kid_key}_mean"] = float(raw[KEY_METRIC_KID_MEAN])
        out[f"{kid_key}_std"] = float(raw[KEY_METRIC_KID_STD])
        out["kid_subset_size"] = subset
    return out, stats


def _layer(feature_extractor: str) -> str:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if feature_extractor not in FEATURE_EXTRACTORS_REGISTRY:
        known = ", ".join(sorted(FEATURE_EXTRACTORS_REGISTRY))
        raise ValueError(f"unknown feature extractor {feature_extractor!r} (torch-fidelity knows: {known})")
    return FEATURE_EXTRACTORS_REGISTRY[feature_extractor].get_default_feature_layer_for_metric("fid")


def _count(reference: Dataset | str) -> int:
    if isinstance(reference, Dataset):
        return len(reference)
    if isinstance(reference, str) and os.path.isdir(reference):
        from torch_fidelity.defaults import DEFAULTS

        exts = tuple("." + e for e in DEFAULTS["samples_find_ext"].split(","))
        return sum(1 for f in os.listdir(reference) if f.lower().endswith(exts))
    raise ValueError(f"reference must be a Dataset, an image folder or ReferenceStatistics, got {reference!r}")


def _cache_paths(root: str, name: str, feature_extractor: str, layer: str) -> tuple[str, str]:
    # torch-fidelity's cache naming (utils.extract_featuresdict_from_input_id_cached, metric_fid.*_cached)
    features = os.path.join(root, f"{name}-{feature_extractor}-features-{layer}.pt")
    stat = os.path.join(root, f"{name}-{feature_extractor}-stat-fid-{layer}.pt")
    return features, stat


def _write_cache(ref: ReferenceStatistics, root: str, name: str) -> None:
    features, stat = _cache_paths(root, name, ref.feature_extractor, ref.layer)
    torch.save({"mu": ref.mu, "sigma": ref.sigma}, stat)
    if ref.features is not None:
        torch.save(ref.features, features)


def _read_cache(
    root: str, name: str, feature_extractor: str, layer: str, n: int, max_features: int = 10000
) -> ReferenceStatistics:
    features_path, stat_path = _cache_paths(root, name, feature_extractor, layer)
    stat = torch.load(stat_path, map_location="cpu", weights_only=False)
    features = None
    if os.path.isfile(features_path) and n <= max_features:
        features = torch.load(features_path, map_location="cpu", weights_only=False)
    return ReferenceStatistics(feature_extractor, layer, stat["mu"], stat["sigma"], n, features=features)
