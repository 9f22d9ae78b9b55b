"""Image metrics: MSE / PSNR / SSIM for reconstructions, FID / KID with torch-fidelity's feature and metric functions.

FID and KID use torch-fidelity's standard ``inception-v3-compat`` extractor by default (the numbers papers report).
``qiren-pixel-pool`` is a tiny deterministic extractor registered through torch-fidelity's extension API: it needs no
weights, so tests and offline smoke runs exercise the real plumbing, but its Fréchet distance is *not* FID.
"""
from __future__ import annotations

from .extractors import (
    INCEPTION,
    INCEPTION_BYTES,
    INCEPTION_SHA256,
    INCEPTION_WEIGHTS_FILE,
    PIXEL_POOL,
    SUPPORTED_EXTRACTORS,
    build_feature_extractor,
    extract_features,
    load_inception_state_dict,
    register_feature_extractors,
    resolve_inception_weights,
)
from .fidelity import KID_MAX_SUBSET, ReferenceStatistics, compute_fid_kid, metric_names
from .images import ImageTensorDataset, to_uint8_rgb
from .reconstruction import mse, psnr, psnr_from_mse, ssim

__all__ = [
    "INCEPTION", "INCEPTION_BYTES", "INCEPTION_SHA256", "INCEPTION_WEIGHTS_FILE", "KID_MAX_SUBSET", "PIXEL_POOL",
    "SUPPORTED_EXTRACTORS", "ImageTensorDataset", "ReferenceStatistics", "build_feature_extractor",
    "compute_fid_kid", "extract_features", "load_inception_state_dict", "metric_names", "mse", "psnr", "psnr_from_mse",
    "register_feature_extractors",
    "resolve_inception_weights", "ssim", "to_uint8_rgb",
]
