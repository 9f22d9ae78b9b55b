"""Helpers shared by the fitting pipelines: signal <-> (coordinates, targets), the fit itself and output
post-processing."""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
from PIL import Image

from ..data.grids import image_grid, time_grid
from ..models import MLP, QFGN, QIREN, QVF, SIREN, FourierFeatureMLP
from ..training.fitting import SCHEDULES, FitResult, default_learning_rate, default_schedule, fit_inr

FittingModel = Union[QIREN, SIREN, MLP, FourierFeatureMLP, QFGN, QVF]  # noqa: UP007 - diffusers' from_pipe reads this hint
"""Type hint of a fitting pipeline's ``model``: every class ``build_inr`` makes (``from_pipe`` matches by it)."""

OUTPUT_TYPES = ("np", "pt", "pil")


def grid_for(shape: tuple[int, ...], in_features: int, align_corners: bool) -> torch.Tensor:
    """Coordinates of every sample of a signal with spatial ``shape`` (``(N,)`` audio, ``(H, W)`` images)."""
    if in_features == 1:
        return time_grid(shape[0], align_corners=align_corners)
    if in_features == 2:
        return image_grid(shape[0], shape[1], align_corners=align_corners)
    raise ValueError(f"only 1-D (audio) and 2-D (image) models are supported, got in_features={in_features}")


def as_targets(signal, in_features: int, out_features: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Signal array ``(N[, C])`` or ``(H, W[, C])`` in [-1, 1] -> float32 targets ``(points, C)`` and its spatial
    shape."""
    if isinstance(signal, Image.Image):
        signal = np.asarray(signal.convert("L"), dtype=np.float64) / 127.5 - 1
    try:
        x = (signal.detach().cpu() if isinstance(signal, torch.Tensor)
             else torch.as_tensor(np.asarray(signal, dtype=np.float64)))
    except (TypeError, ValueError):
        raise ValueError(f"the signal must be an array of numbers, got {type(signal).__name__}") from None
    x = x.to(torch.float32)
    if x.ndim == in_features:
        x = x.unsqueeze(-1)
    if x.ndim != in_features + 1 or x.shape[-1] != out_features:
        raise ValueError(
            f"a model with in_features={in_features}, out_features={out_features} needs a signal of shape "
            f"{'(N' if in_features == 1 else '(H, W'}[, {out_features}]), got {tuple(x.shape)}"
        )
    spatial = tuple(x.shape[:-1])
    if min(spatial) < 2:
        raise ValueError(f"the signal needs at least 2 samples along every axis, got shape {spatial}")
    if x.numel() == 0 or not torch.isfinite(x).all():
        raise ValueError("the signal is empty or contains NaN / infinite values")
    return x.reshape(-1, out_features), spatial


def postprocess(values: torch.Tensor, spatial: tuple[int, ...], output_type: str):
    """``(points, C)`` -> ``np`` array / ``pt`` tensor of shape ``spatial`` (+ C if C > 1), or a list of PIL images."""
    out = values.reshape(*spatial, -1)
    if out.shape[-1] == 1:
        out = out[..., 0]
    if output_type == "pt":
        return out
    if output_type == "np":
        return out.numpy()
    if output_type == "pil":
        if len(spatial) != 2:
            raise ValueError("output_type='pil' is only for images")
        pixels = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        return [Image.fromarray(pixels)]
    raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")


def check_fit_inputs(num_steps: int, learning_rate: float | None, output_type: str,
                     schedule: str | None = None) -> None:
    """The fit loop's arguments, shared by the fitting and superresolution pipelines: clear ValueErrors."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if learning_rate is not None and not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    if schedule is not None and schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def fit_pipeline_model(pipeline, coords: torch.Tensor, targets: torch.Tensor, num_steps: int,
                       learning_rate: float | None, schedule: str | None, desc: str, on_step=None) -> FitResult:
    """Fit ``pipeline.model`` to ``targets`` at ``coords`` with its recipe's learning rate and schedule where none is
    given, with a progress bar unless ``pipeline.set_progress_bar_config(disable=True)`` turned it off."""
    model = pipeline.model
    progress = not getattr(pipeline, "_progress_bar_config", {}).get("disable", False)
    return fit_inr(model, coords, targets, num_steps,
                   default_learning_rate(model) if learning_rate is None else learning_rate,
                   progress=progress, desc=desc, on_step=on_step,
                   schedule=default_schedule(model) if schedule is None else schedule)
