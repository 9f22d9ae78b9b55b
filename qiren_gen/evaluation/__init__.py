"""Evaluate a generator: FID / KID reports over N samples, and sample-quality figures on small datasets.

``fid`` draws samples (sharded across processes) and scores them with ``qiren_gen.metrics``; ``sample_quality``
measures diversity, memorisation and reconstruction. Both sit above ``functa`` (they encode and decode images).
"""
from .fid import (
    KID_AUTO_MAX_SAMPLES,
    compute_report,
    evaluate,
    generate_samples,
    pipeline_sampler,
    save_grid,
    shard_size,
    write_outputs,
)
from .sample_quality import generation_report, gradient_sharpness, mean_pairwise_distance, nearest_neighbour_distances

__all__ = ["KID_AUTO_MAX_SAMPLES", "compute_report", "evaluate", "generate_samples", "generation_report",
           "gradient_sharpness", "mean_pairwise_distance", "nearest_neighbour_distances", "pipeline_sampler",
           "save_grid", "shard_size", "write_outputs"]
