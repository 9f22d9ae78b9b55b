"""FID / KID through ``torch_fidelity.calculate_metrics``, and reference statistics in torch-fidelity's cache format."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .extractors import INCEPTION, register_feature_extractors, resolve_inception_weights
from .images import ImageTensorDataset

STATS_FORMAT = "qiren-gen-reference-stats/1"
KID_MAX_SUBSET = 1000  # torch-fidelity's default subset size; smaller sets use all their samples per subset


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
        """Write one file that ``--reference`` accepts later (no image decoding, no feature extraction).

        The file is safetensors (tensors + JSON metadata), never a pickle: statistics files get shared, and loading a
        stranger's pickle would run its code.
        """
        import json

        from safetensors.torch import save_file

        tensors = {"mu": torch.as_tensor(np.asarray(self.mu)).contiguous(),
                   "sigma": torch.as_tensor(np.asarray(self.sigma)).contiguous()}
        if self.features is not None:
            tensors["features"] = torch.as_tensor(self.features).detach().cpu().contiguous()
        fields = {k: getattr(self, k) for k in ("feature_extractor", "layer", "num_images", "resolution", "source",
                                                "meta")}
        save_file(tensors, os.fspath(path), metadata={"format": STATS_FORMAT, "fields": json.dumps(fields)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReferenceStatistics":
        """Read a file written by `save` (safetensors only); a clear ``ValueError`` for anything else."""
        import json

        from safetensors import safe_open

        try:
            with safe_open(os.fspath(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
            raise ValueError(f"{path}: not a readable reference statistics file ({type(exc).__name__})") from None
        if metadata.get("format") != STATS_FORMAT or not {"mu", "sigma"} <= set(tensors):
            raise ValueError(f"{path}: not a qiren-gen reference statistics file (format {STATS_FORMAT})")
        try:
            fields = json.loads(metadata.get("fields", ""))
            return cls(mu=tensors["mu"].numpy(), sigma=tensors["sigma"].numpy(), features=tensors.get("features"),
                       **fields)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: damaged reference statistics metadata ({type(exc).__name__})") from None


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
    verbose: bool = False,
) -> tuple[dict[str, float], ReferenceStatistics]:
    """FID (and KID) between generated ``samples`` and ``reference`` through ``torch_fidelity.calculate_metrics``.

    ``samples``: image batch or Dataset of uint8 (3, H, W). ``reference``: a Dataset, an image folder, or
    `ReferenceStatistics`. Returns (metrics keyed by `metric_names`, the reference statistics used).
    torch-fidelity's cache lives in a temporary folder for this call only (no stale entries across runs); reuse a
    reference through the returned `ReferenceStatistics` (``save`` / ``load``) instead.
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
    name = "qiren-reference"
    try:
        if isinstance(reference, ReferenceStatistics):
            if reference.feature_extractor != feature_extractor or reference.layer != layer:
                raise ValueError(
                    f"reference statistics were computed with {reference.feature_extractor} (layer {reference.layer}), "
                    f"not {feature_extractor} (layer {layer})"
                )
            n2 = reference.num_images
            kid = kid and reference.features is not None
            _write_cache(reference, tmp, name)
            input2 = name  # torch-fidelity reads both entries from its cache and never opens input2
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
            cache_root=tmp,
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
            stats = _read_cache(tmp, name, feature_extractor, layer, n2)
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
