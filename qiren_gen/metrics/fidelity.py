"""FID / KID with torch-fidelity's feature and metric functions, and reference statistics saved as safetensors."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from torch.utils.data import Dataset

from ..io.atomic import save_tensors
from .extractors import INCEPTION, SUPPORTED_EXTRACTORS, build_feature_extractor, register_feature_extractors
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
        """Write one file that ``--reference`` accepts later (no image decoding, no feature extraction), atomically.

        The file is safetensors (tensors + JSON metadata), never a pickle: statistics files get shared, and loading a
        stranger's pickle would run its code.
        """
        tensors = {"mu": torch.as_tensor(np.asarray(self.mu)).contiguous(),
                   "sigma": torch.as_tensor(np.asarray(self.sigma)).contiguous()}
        if self.features is not None:
            tensors["features"] = torch.as_tensor(self.features).detach().cpu().contiguous()
        fields = {k: getattr(self, k) for k in ("feature_extractor", "layer", "num_images", "resolution", "source",
                                                "meta")}
        save_tensors(path, tensors, metadata={"format": STATS_FORMAT, "fields": json.dumps(fields)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReferenceStatistics:
        """Read a file written by `save` (safetensors only); a clear ``ValueError`` for anything else."""
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
    """FID (and KID) between generated ``samples`` and ``reference`` with torch-fidelity's own feature and metric
    functions.

    ``samples``: image batch or Dataset of uint8 (3, H, W). ``reference``: a Dataset, an image folder, or
    `ReferenceStatistics`. Returns (metrics keyed by `metric_names`, the reference statistics used).
    The extractor is built by `build_feature_extractor` (Inception from checked weights, never
    torch-fidelity's pickle load), and nothing goes through torch-fidelity's on-disk cache (which it reads back with
    pickle): reuse a reference through the returned `ReferenceStatistics` (``save`` / ``load``) instead.
    """
    input1 = _samples_dataset(samples)
    layer = _layer(feature_extractor)
    input2, _ = _reference_input(reference, feature_extractor, layer)
    kid = kid and (input2 is not None or reference.features is not None)
    cuda = torch.cuda.is_available() if cuda is None else cuda
    extractor = build_feature_extractor(feature_extractor, [layer], weights_path, cuda)  # after the cheap checks
    features1 = _features(input1, extractor, layer, batch_size, cuda, verbose)
    stats = reference if input2 is None else _statistics(
        _features(input2, extractor, layer, batch_size, cuda, verbose), feature_extractor, layer)
    return _metrics(features1, stats, feature_extractor, kid, kid_subsets, verbose), stats


def _samples_dataset(samples: Any) -> Dataset:
    dataset = samples if isinstance(samples, Dataset) else ImageTensorDataset(samples)
    if len(dataset) < 2:
        raise ValueError(f"FID needs at least 2 generated samples, got {len(dataset)}")
    return dataset


def _reference_input(reference: Dataset | str | ReferenceStatistics, feature_extractor: str,
                     layer: str) -> tuple[Dataset | None, int]:
    """``(dataset to extract features from, or None for statistics, number of reference images)``, checked."""
    if isinstance(reference, ReferenceStatistics):
        if reference.feature_extractor != feature_extractor or reference.layer != layer:
            raise ValueError(
                f"reference statistics were computed with {reference.feature_extractor} (layer {reference.layer}), "
                f"not {feature_extractor} (layer {layer})"
            )
        dataset, n = None, reference.num_images
    elif isinstance(reference, Dataset):
        dataset, n = reference, len(reference)
    elif isinstance(reference, str) and os.path.isdir(reference):  # torch-fidelity's own folder input
        from torch_fidelity.datasets import ImagesPathDataset
        from torch_fidelity.defaults import DEFAULTS
        from torch_fidelity.utils import glob_samples_paths

        files = glob_samples_paths(reference, DEFAULTS["samples_find_deep"], DEFAULTS["samples_find_ext"],
                                   DEFAULTS["samples_ext_lossy"], verbose=False)
        dataset, n = ImagesPathDataset(files), len(files)
    else:
        raise ValueError(f"reference must be a Dataset, an image folder or ReferenceStatistics, got {reference!r}")
    if n < 2:
        raise ValueError(f"the reference set needs at least 2 images, got {n}")
    return dataset, n


def _features(dataset: Dataset, extractor: torch.nn.Module, layer: str, batch_size: int, cuda: bool,
              verbose: bool) -> torch.Tensor:
    """``(N, D)`` features of a dataset at ``layer`` (torch-fidelity's batching, no DataLoader workers)."""
    from torch_fidelity.utils import get_featuresdict_from_dataset

    return get_featuresdict_from_dataset(dataset, extractor, batch_size, cuda, True, verbose)[layer]


def _statistics(features: torch.Tensor, feature_extractor: str, layer: str,
                max_features: int = 10000) -> ReferenceStatistics:
    """Mean / covariance of reference features as torch-fidelity computes them; the features kept for KID when there
    are at most ``max_features``."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    stat = fid_features_to_statistics(features)
    kept = features if features.shape[0] <= max_features else None
    return ReferenceStatistics(feature_extractor, layer, stat["mu"], stat["sigma"], int(features.shape[0]),
                               features=kept)


def _metrics(features: torch.Tensor, reference: ReferenceStatistics, feature_extractor: str, kid: bool,
             kid_subsets: int, verbose: bool) -> dict[str, float]:
    """FID (and KID, on subsets of at most `KID_MAX_SUBSET`) of generated features against the reference."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    fid_key, kid_key = metric_names(feature_extractor)
    reference_stat = {"mu": np.asarray(reference.mu), "sigma": np.asarray(reference.sigma)}
    out = {fid_key: float(fid_statistics_to_metric(fid_features_to_statistics(features), reference_stat,
                                                   verbose)[KEY_METRIC_FID])}
    if kid and reference.features is not None:
        subset = min(KID_MAX_SUBSET, features.shape[0], reference.num_images, reference.features.shape[0])
        raw = kid_features_to_metric(features, torch.as_tensor(reference.features), kid_subsets=kid_subsets,
                                     kid_subset_size=subset, verbose=verbose)
        out[f"{kid_key}_mean"] = float(raw[KEY_METRIC_KID_MEAN])
        out[f"{kid_key}_std"] = float(raw[KEY_METRIC_KID_STD])
        out["kid_subset_size"] = subset
    return out


def _layer(feature_extractor: str) -> str:
    """The FID layer of a supported extractor; one-line ``ValueError`` for any other name."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    register_feature_extractors()
    if feature_extractor not in SUPPORTED_EXTRACTORS:
        raise ValueError(f"unknown feature extractor {feature_extractor!r} (qiren-gen builds: "
                         f"{', '.join(SUPPORTED_EXTRACTORS)}; torch-fidelity's others load pickled weights)")
    return FEATURE_EXTRACTORS_REGISTRY[feature_extractor].get_default_feature_layer_for_metric("fid")
