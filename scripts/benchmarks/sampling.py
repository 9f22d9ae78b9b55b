"""Samplers side by side on one pipeline: DDIM at 50 steps against DPM-Solver++ (or any sampler) at fewer steps.

Runs alternate (A, B, A, B, ...) in one process on one thread, so machine load hits both alike; each is timed twice,
the whole call (denoise + render, what ``qiren-gen sample`` waits for) and the denoising alone
(``output_type="latent"``). The images of every sampler are compared with the reference sampler's on the same seed.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from qiren_gen.pipelines.schedulers import make_scheduler


def compare_samplers(pipe, samplers: list[tuple[str, int]], runs: int = 3, num_images: int = 16,
                     resolution: int = 128, seed: int = 0) -> dict:
    """Median wall time (full call and denoising only) and mean abs image difference from ``samplers[0]``.

    ``samplers``: ``(name, steps)`` pairs, names as ``qiren-gen sample --scheduler`` takes them; the first is the
    reference. Every row is also compared with the run of the most steps (e.g. ``ddim:250``, near the exact
    solution of the deterministic samplers' ODE). Images are in [0, 1]: 0.01 is 2.55 grey levels of 255.
    """
    config = pipe.scheduler.config
    original = pipe.scheduler
    pipe.set_progress_bar_config(disable=True)
    schedulers = {name: make_scheduler(name, config) for name, _ in samplers}
    call = dict(batch_size=num_images, height=resolution, width=resolution)
    full = {key: [] for key in samplers}
    denoise = {key: [] for key in samplers}
    images: dict[tuple[str, int], np.ndarray] = {}
    try:
        for _ in range(runs):
            for name, steps in samplers:
                pipe.scheduler = schedulers[name]
                start = time.perf_counter()
                pipe(num_inference_steps=steps, output_type="latent", generator=torch.Generator().manual_seed(seed),
                     **call)
                denoise[(name, steps)].append(time.perf_counter() - start)
                start = time.perf_counter()
                out = pipe(num_inference_steps=steps, output_type="np",
                           generator=torch.Generator().manual_seed(seed), **call).images
                full[(name, steps)].append(time.perf_counter() - start)
                images[(name, steps)] = out
    finally:
        pipe.scheduler = original
    reference = images[samplers[0]]
    most = max(samplers, key=lambda key: key[1])  # the most steps: the nearest to the sampler ODE's exact solution
    rows = []
    for name, steps in samplers:
        key = (name, steps)
        rows.append({
            "sampler": name, "steps": steps,
            "median_call_s": round(statistics.median(full[key]), 3),
            "median_denoise_s": round(statistics.median(denoise[key]), 4),
            "mean_abs_diff_vs_reference": round(float(np.abs(images[key] - reference).mean()), 5),
            "max_abs_diff_vs_reference": round(float(np.abs(images[key] - reference).max()), 4),
            f"mean_abs_diff_vs_{most[0]}_{most[1]}": round(float(np.abs(images[key] - images[most]).mean()), 5),
        })
    base = rows[0]
    for row in rows:
        row["call_speedup_vs_reference"] = round(base["median_call_s"] / row["median_call_s"], 2)
        row["denoise_speedup_vs_reference"] = round(base["median_denoise_s"] / row["median_denoise_s"], 2)
    return {"reference": f"{samplers[0][0]} {samplers[0][1]} steps", "num_images": num_images,
            "resolution": resolution, "runs": runs, "seed": seed, "threads": torch.get_num_threads(),
            "load_average_1_5_15": os.getloadavg(), "rows": rows}


__all__ = ["compare_samplers"]
