"""The signal-fitting QIREN on a simulated device: fitted exactly to one signal (camera, the Bach clip), then
evaluated under finite shots (every point) and depolarizing noise (256x256 density matrices, a random point subset),
and fitted a second time under finite shots (noise-aware training) to see what that buys at few shots."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from qiren_gen.data.signals import load_image, load_wav
from qiren_gen.metrics import psnr
from qiren_gen.pipelines import QirenSignalFittingPipeline
from qiren_gen.pipelines._signals import as_targets, grid_for
from qiren_gen.quantum.noise import NoiseModel
from qiren_gen.quantum.shots import measurement
from qiren_gen.training.fitting import render
from research.paper.suite import BACH_SLICE


@dataclass(frozen=True)
class SignalTask:
    """One signal of the study: its label, the array (``(N,)`` audio or ``(H, W)`` image in [-1, 1])."""

    name: str
    label: str
    signal: np.ndarray

    @property
    def in_features(self) -> int:
        return self.signal.ndim


def signal_study(task: SignalTask, cfg, progress) -> dict:
    """Exact fit of the paper's QIREN to ``task``, its PSNR vs shots and vs depolarizing p, and a shot-trained fit."""
    def fitted(train_shots: int | None = None):
        pipe = QirenSignalFittingPipeline.from_model_name("qiren", task.in_features, 1, seed=0)
        pipe.set_progress_bar_config(disable=True)
        start = time.perf_counter()
        with measurement(pipe.model, train_shots, None, torch.Generator().manual_seed(123),
                         train_shots=train_shots is not None):
            result = pipe(task.signal, num_steps=cfg.signal_steps)
        return pipe.model, result.psnr, time.perf_counter() - start

    model, fit_psnr, fit_s = fitted()
    progress(f"{task.name} fit: {fit_psnr:.2f} dB in {fit_s:.0f} s")
    coords = grid_for(tuple(task.signal.shape), task.in_features, True)
    target = as_targets(task.signal, task.in_features, 1)[0].float().reshape(-1, 1)

    def point_psnr(points, shots=None, noise=None, seed=0, net=None) -> float:
        net = model if net is None else net
        with torch.no_grad(), measurement(net, shots, noise, torch.Generator().manual_seed(seed)):
            out = render(net, coords[points]).float().reshape(-1, 1)
        return float(psnr(out.clamp(-1, 1), target[points], data_range=2.0))

    def shot_mean(points, shots, net=None) -> float:
        return float(np.mean([point_psnr(points, shots=shots, seed=s, net=net) for s in range(cfg.seeds)]))

    every = torch.arange(coords.shape[0])
    exact = point_psnr(every)
    shots = {}
    for n in cfg.shots:
        shots[n] = shot_mean(every, n)
        progress(f"{task.name}, {n} shots: {shots[n]:.2f} dB")
    subset = torch.randperm(coords.shape[0], generator=torch.Generator().manual_seed(0))[: cfg.signal_noise_points]
    exact_subset = point_psnr(subset)
    noise, seconds = {}, {}
    for p in cfg.depolarizing:
        start = time.perf_counter()
        noise[p] = point_psnr(subset, noise=NoiseModel(depolarizing=p))
        seconds[p] = time.perf_counter() - start
        progress(f"{task.name}, depolarizing {p:g}: {noise[p]:.2f} dB ({seconds[p]:.0f} s)")
    start = time.perf_counter()
    point_psnr(subset)
    exact_s = time.perf_counter() - start

    # Noise-aware training: the same fit under train_shots (straight-through gradients), both evaluated at few shots.
    aware, _, aware_s = fitted(cfg.train_shots)
    comparison = {}
    for name, net in {"exact-trained": model, f"trained with {cfg.train_shots} shots": aware}.items():
        row = {n: shot_mean(every, n, net) for n in cfg.train_eval_shots}
        row["exact"] = point_psnr(every, net=net)
        comparison[name] = row
        progress(f"{task.name} {name}: " + ", ".join(f"{k}: {v:.2f}" for k, v in row.items()))
    return {"label": task.label, "fit_psnr": fit_psnr, "fit_seconds": fit_s, "exact": exact, "shots": shots,
            "noise_aware": comparison, "noise_aware_fit_seconds": aware_s, "points": int(coords.shape[0]),
            "noise_pixels": int(subset.numel()), "exact_on_noise_pixels": exact_subset, "depolarizing": noise,
            "density_matrix_seconds": float(np.median(list(seconds.values()))), "state_vector_seconds": exact_s,
            "circuits": len(model.hybrid_layers), "qubits": model.config.n_qubits}


def signal_tasks(camera_size: int, bach_path: str | None) -> list[SignalTask]:
    """Camera at ``camera_size`` (scikit-image, offline) and, given its path, the paper's Bach clip (its slice)."""
    tasks = [SignalTask("camera", f"QIREN fit of camera {camera_size}x{camera_size}",
                        np.asarray(load_image("camera", camera_size)))]
    if bach_path is not None:
        samples = load_wav(bach_path, BACH_SLICE).samples
        tasks.append(SignalTask("bach", f"QIREN fit of the Bach clip ({samples.shape[0]:,} samples)",
                                np.asarray(samples)))
    return tasks


__all__ = ["SignalTask", "signal_study", "signal_tasks"]
