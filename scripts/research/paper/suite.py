"""The QIREN paper's signal experiments as one suite: sound fitting, image fitting, superresolution.

Every (model, seed, signal) fit is an independent job; jobs run in worker processes with one torch thread each
(on a small shared CPU this is much faster than one process with several threads). An image fit serves both the
image-fitting table (its error on the 32x32 grid) and superresolution (its render on the 64x64 grid), exactly the
paper's protocol: fit 32x32, render 64x64, compare with the 64x64 ground truth.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from qiren_gen.data.grids import image_grid, time_grid
from qiren_gen.data.signals import load_wav, open_image, resize_image
from qiren_gen.models import canonical_model_name
from qiren_gen.training.fitting import DEFAULT_LEARNING_RATES, build_fitting_model, fit_inr, render

PAPER_MODELS = ("qiren", "siren", "relu-rff", "relu", "tanh")  # the paper's Fig. 7 models; "ffn" can be added
PAPER_IMAGES = ("astronaut", "camera", "coffee")
BACH_SLICE = "20000:25000:5"
# The paper's Fig. 7 (error relative to the Tanh MLP, read off the plot of arXiv 2406.03873).
PAPER_FIG7 = {
    "qiren": (0.54, 0.54, 0.45),
    "siren": (0.77, 0.62, 0.50),
    "relu-rff": (0.57, 0.63, 0.72),
    "relu": (0.70, 0.75, 0.65),
}


@dataclass
class Job:
    """One fit: ``kind`` is "sound" or "image"; ``signal`` the target; ``high`` the superres truth (images)."""

    kind: str
    name: str
    model: str
    seed: int
    steps: int
    signal: np.ndarray
    high: np.ndarray | None = None
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES[model]
    model_kwargs: dict = field(default_factory=dict)
    schedule: str = "constant"


@dataclass
class JobResult:
    kind: str
    name: str
    model: str
    seed: int
    params: int
    mse: float
    seconds: float
    cpu_seconds: float
    learning_rate: float
    fitted: np.ndarray
    superres: np.ndarray | None = None
    superres_mse: float | None = None
    losses: list[float] = field(default_factory=list)


def init_worker() -> None:
    """A fitting worker's set-up: one torch thread, so parallel fits do not over-subscribe the cores."""
    torch.set_num_threads(1)


def run_job(job: Job) -> JobResult:
    """Fit one model to one signal on the paper's linspace grid; for images also render the 2x grid."""
    in_features = 1 if job.kind == "sound" else 2
    model = build_fitting_model(job.model, in_features, 1, seed=job.seed, **job.model_kwargs)
    if job.kind == "sound":
        coords = time_grid(job.signal.size)
    else:
        coords = image_grid(*job.signal.shape, align_corners=True)
    targets = torch.as_tensor(job.signal, dtype=torch.float32).reshape(-1, 1)
    lr = DEFAULT_LEARNING_RATES[canonical_model_name(job.model)] if job.learning_rate is None else job.learning_rate
    fit = fit_inr(model, coords, targets, job.steps, lr, progress=False, schedule=job.schedule)
    fitted = render(model, coords).reshape(job.signal.shape).double().numpy()
    result = JobResult(
        job.kind, job.name, job.model, job.seed,
        params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        mse=float(np.mean((fitted - job.signal) ** 2)), seconds=fit.seconds, cpu_seconds=fit.cpu_seconds,
        learning_rate=lr, fitted=fitted, losses=fit.losses,
    )
    if job.high is not None:
        high = render(model, image_grid(*job.high.shape, align_corners=True)).reshape(job.high.shape).double().numpy()
        result.superres = high
        result.superres_mse = float(np.mean((high - job.high) ** 2))
    return result


def make_jobs(bach_path: str | None, seeds: list[int], steps: int, models=PAPER_MODELS, images=PAPER_IMAGES,
              size: int = 32, scale: int = 2) -> list[Job]:
    """All fits of the suite, longest (QIREN) first so that workers finish together."""
    signals: list[tuple[str, str, np.ndarray, np.ndarray | None]] = []
    if bach_path is not None:
        signals.append(("sound", "bach", load_wav(bach_path, BACH_SLICE).samples, None))
    for name in images:
        gray = open_image(name)
        signals.append(("image", name, resize_image(gray, size), resize_image(gray, size * scale)))
    jobs = [Job(kind, name, model, seed, steps, sig, high)
            for model in models for seed in seeds for kind, name, sig, high in signals]
    return sorted(jobs, key=lambda j: j.model != "qiren")


def run_suite(jobs: list[Job], workers: int = 2, progress: bool = True) -> tuple[list[JobResult], float]:
    """Run every job (in ``workers`` processes, one thread each); returns results and wall-clock seconds."""
    start = time.perf_counter()
    results: list[JobResult] = []
    bar = tqdm(total=len(jobs), desc="paper suite", disable=not progress)
    if workers <= 1:
        init_worker()
        for job in jobs:
            results.append(run_job(job))
            bar.update()
    else:
        ctx = __import__("multiprocessing").get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker) as pool:
            futures = [pool.submit(run_job, job) for job in jobs]
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update()
    bar.close()
    return results, time.perf_counter() - start


def default_workers() -> int:
    """Two workers where two cores are visible (this project's development machines), else one."""
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
