"""Evaluate a generator: draw N samples (sharded across processes), FID/KID against a reference, JSON report + grid.

The generator is any ``sample_fn(batch_size, generator) -> images`` (float in [0, 1] or uint8, NCHW or NHWC), so the
logic is testable without a trained pipeline; `pipeline_sampler` adapts a diffusers-style pipeline.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object
from PIL import Image
from tqdm.auto import tqdm

from ..io.atomic import save_image, write_json
from ..metrics import INCEPTION, ReferenceStatistics, compute_fid_kid, resolve_inception_weights, to_uint8_rgb

SampleFn = Callable[[int, torch.Generator], Any]
KID_AUTO_MAX_SAMPLES = 10000  # "KID when N is small": above this, FID alone (KID's subsets add little there)


def shard_size(num_samples: int, rank: int, world_size: int) -> int:
    """How many of ``num_samples`` the process ``rank`` of ``world_size`` generates (the first ranks take the rest)."""
    return num_samples // world_size + (1 if rank < num_samples % world_size else 0)


def generate_samples(
    sample_fn: SampleFn,
    num_samples: int,
    batch_size: int = 64,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> torch.Tensor:
    """This process's share of ``num_samples`` as uint8 (n, 3, H, W), from a generator seeded ``seed + rank``."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    n = shard_size(num_samples, rank, world_size)
    generator = torch.Generator(device=device).manual_seed(seed + rank)
    chunks: list[torch.Tensor] = []
    done = 0
    with tqdm(total=n, desc=f"sampling (process {rank})" if world_size > 1 else "sampling", unit="img",
              disable=not progress, position=rank) as bar:
        while done < n:
            b = min(batch_size, n - done)
            images = to_uint8_rgb(sample_fn(b, generator))
            if images.shape[0] != b:
                raise ValueError(f"the generator returned {images.shape[0]} images for a batch of {b}")
            chunks.append(images)
            done += b
            bar.update(b)
    if not chunks:
        raise ValueError(f"process {rank} of {world_size} has no samples to draw (num_samples {num_samples})")
    return torch.cat(chunks)


def pipeline_sampler(pipe: Any, resolution: int | None = None, num_inference_steps: int | None = None) -> SampleFn:
    """Adapt a diffusers-style pipeline (``pipe(batch_size, height, width, generator, output_type='pt')``)."""

    def sample(batch_size: int, generator: torch.Generator) -> torch.Tensor:
        kwargs: dict[str, Any] = dict(batch_size=batch_size, generator=generator, output_type="pt", return_dict=True)
        if resolution is not None:
            kwargs.update(height=resolution, width=resolution)
        if num_inference_steps is not None:
            kwargs["num_inference_steps"] = num_inference_steps
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)  # one bar for the whole evaluation, not one per batch
        return pipe(**kwargs).images

    return sample


def save_grid(images: torch.Tensor, path: str, max_images: int = 64, min_size: int = 512) -> str:
    """Write up to ``max_images`` uint8 (N, 3, H, W) images as one PNG grid, upscaled (nearest) to >= ``min_size``,
    atomically."""
    images = to_uint8_rgb(images[:max_images])
    n, _, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pad = 2
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, im in enumerate(images.permute(0, 2, 3, 1).numpy()):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im
    scale = max(1, math.ceil(min_size / max(grid.shape[:2])))
    picture = Image.fromarray(grid)
    if scale > 1:
        picture = picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    save_image(path, picture)
    return path


def compute_report(
    samples: torch.Tensor,
    reference: Any,
    *,
    feature_extractor: str = INCEPTION,
    weights_path: str | None = None,
    kid: bool | None = None,
    batch_size: int = 64,
    cuda: bool | None = None,
    verbose: bool = False,
) -> tuple[dict[str, Any], ReferenceStatistics]:
    """Metrics of generated ``samples`` against ``reference``; ``kid=None`` means KID when N <= 10000."""
    n = samples.shape[0]
    if n < 2:
        raise ValueError(f"--num-samples must be >= 2 for FID, got {n}")
    kid = n <= KID_AUTO_MAX_SAMPLES if kid is None else kid
    t0 = time.perf_counter()
    metrics, stats = compute_fid_kid(
        samples, reference, feature_extractor=feature_extractor, weights_path=weights_path, kid=kid,
        batch_size=batch_size, cuda=cuda, verbose=verbose,
    )
    stats.resolution = int(samples.shape[-1])
    stats.source = stats.source or getattr(reference, "source", str(reference))
    notes = []
    if kid and not any(k.startswith(("kid", "kernel")) for k in metrics):
        notes.append("KID skipped: the reference statistics file holds no features (only mean / covariance)")
    report = {
        "metrics": metrics,
        "feature_extractor": feature_extractor,
        "standard_fid": feature_extractor == INCEPTION,
        "num_samples": int(n),
        "resolution": [int(samples.shape[-2]), int(samples.shape[-1])],
        "reference": stats.source,
        "num_reference": int(stats.num_images),
        "metric_seconds": round(time.perf_counter() - t0, 2),
    }
    if notes:
        report["notes"] = notes
    return report, stats


def write_outputs(report: dict[str, Any], samples: torch.Tensor, stats: ReferenceStatistics, output: str) -> dict:
    """Write ``metrics.json``, ``samples.png`` and ``reference_stats.pt`` (reusable as ``--reference``), each
    atomically: a failed write leaves the previous file whole."""
    os.makedirs(output, exist_ok=True)
    files = {
        "report": os.path.join(output, "metrics.json"),
        "grid": os.path.join(output, "samples.png"),
        "reference_stats": os.path.join(output, "reference_stats.pt"),
    }
    save_grid(samples, files["grid"])
    stats.save(files["reference_stats"])
    report = {**report, "files": files}
    write_json(files["report"], report)
    return report


def evaluate(
    sample_fn: SampleFn,
    reference: Any,
    *,
    num_samples: int,
    output: str | None = None,
    feature_extractor: str = INCEPTION,
    weights_path: str | None = None,
    kid: bool | None = None,
    batch_size: int = 64,
    seed: int = 0,
    accelerator: Any = None,
    progress: bool = True,
) -> dict[str, Any] | None:
    """Generate ``num_samples`` (sharded over ``accelerator``'s processes), score them on the main process.

    ``reference``: what `qiren_gen.data.reference.load_reference` returns, or a zero-argument callable that
    loads it (called on the main process only). The weights and the reference are checked before any sample is
    drawn, so a bad input costs no generation time. Returns the report on the main process, ``None`` elsewhere.
    """
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    if num_samples < 2:
        raise ValueError(f"--num-samples must be >= 2 for FID, got {num_samples}")
    if num_samples < world:
        raise ValueError(f"--num-samples {num_samples} is smaller than the number of processes ({world})")
    error = None  # (exception class name, message) from the main process's preflight, shared with every process
    if rank == 0:
        try:
            if feature_extractor == INCEPTION:
                weights_path = resolve_inception_weights(weights_path)
            reference = reference() if callable(reference) else reference
        except (OSError, ValueError) as exc:
            error = (type(exc).__name__ if isinstance(exc, ValueError) else "OSError", str(exc))
    if world > 1:
        error = broadcast_object_list([error])[0]
    if error:
        raise (ValueError if error[0] == "ValueError" else OSError)(error[1])
    device = accelerator.device if accelerator is not None else "cpu"
    shard = generate_samples(sample_fn, num_samples, batch_size, seed, rank, world, device, progress)
    if world > 1:
        shards = gather_object([shard])
        if rank != 0:
            return None
    else:
        shards = [shard]
    samples = torch.cat(shards)
    size = int(samples.shape[-1])
    if isinstance(reference, ReferenceStatistics):
        if reference.resolution and reference.resolution != size:
            raise ValueError(f"reference statistics are for {reference.resolution}px images, samples are {size}px")
    elif hasattr(reference, "resolution"):
        reference.resolution = size  # resize reference images to the samples' size (torch-fidelity's protocol)
    cuda = accelerator is not None and accelerator.device.type == "cuda"
    report, stats = compute_report(
        samples, reference, feature_extractor=feature_extractor, weights_path=weights_path, kid=kid, cuda=cuda,
        # torch-fidelity's own bars (feature extraction is the long part with Inception on a CPU); only for Inception,
        # as it also prints "Frechet Inception Distance: ..." whatever the extractor
        verbose=progress and feature_extractor == INCEPTION,
    )
    report.update(seed=seed, num_processes=world, samples_per_process=[int(s.shape[0]) for s in shards])
    if output is not None:
        report = write_outputs(report, samples, stats, output)
    return report
