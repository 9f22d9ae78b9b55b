"""``pipe(..., shots=N)`` against the exact call: the cost of measuring the bundled decoder's circuits with shots.

The bundled decoder's circuits see coordinates only, so one call evaluates (and samples) them once per grid, shared
by every face; the exact call keeps those features in the decoder's cache between calls, a shots call draws new
samples every call. Both are timed, and the exact call also with the cache cleared (its first call).
"""
from __future__ import annotations

import statistics
import time

import torch

from qiren_gen.pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir


def time_pipeline_shots(shots: int = 1000, batch_size: int = 16, size: int = 128, steps: int = 50,
                        repeats: int = 3) -> dict:
    """Medians (s) of interleaved exact (warm and cold feature cache) and ``shots`` calls, and their ratios."""
    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    pipe.set_progress_bar_config(disable=True)

    def call(**kw) -> float:
        g = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        pipe(batch_size=batch_size, height=size, width=size, num_inference_steps=steps, generator=g,
             output_type="np", **kw)
        return time.perf_counter() - start

    call()  # warm-up (and fills the exact feature cache)
    times: dict[str, list[float]] = {"exact": [], "exact_cold": [], "shots": []}
    for _ in range(repeats):
        times["exact"].append(call())
        pipe.decoder.clear_feature_cache()  # the first call of a session: features computed
        times["exact_cold"].append(call())
        times["shots"].append(call(shots=shots))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"shots": shots, "batch_size": batch_size, "size": size, "steps": steps, "repeats": repeats,
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "ratio_shots_vs_exact": round(med["shots"] / med["exact"], 2),
            "ratio_shots_vs_exact_cold": round(med["shots"] / med["exact_cold"], 2)}


__all__ = ["time_pipeline_shots"]
