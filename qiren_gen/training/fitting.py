"""Full-batch Adam fitting of one INR to one signal (the paper's signal-fitting protocol), and rendering.

The paper trains for 301 full-batch epochs with Adam, lr 0.03 for QIREN. Baseline learning rates were chosen by a
small sweep over {1e-3, 3e-3, 1e-2, 3e-2} on the 32x32 camera and astronaut images and the Bach clip: the paper's
0.03 was best (or within noise) for every baseline except SIREN, which diverges at 0.03.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from tqdm.auto import tqdm

from ..models import SIREN, build_inr, canonical_model_name, is_qiren_plus

DEFAULT_STEPS = 301
DEFAULT_LEARNING_RATES: dict[str, float] = {
    "qiren": 0.03,  # the paper's
    "qiren_plus": 0.03,  # docs/research/qiren_search.md
    "siren": 3e-3,  # 0.03 diverges (MSE ~0.3 on camera); 3e-3 was best of {1e-3, 3e-3, 1e-2, 3e-2}
    "relu": 0.03,
    "tanh": 0.03,
    "relu_rff": 0.03,
    "ffn": 0.03,
}


DEFAULT_SCHEDULES: dict[str, str] = {"qiren_plus": "constant"}
"""Learning-rate schedule per model name where it is not the paper's constant rate (docs/research/qiren_search.md)."""


def _recipe_name(model: nn.Module) -> str:
    return "siren" if isinstance(model, SIREN) else "qiren_plus" if is_qiren_plus(model) else "qiren"


def default_learning_rate(model: nn.Module) -> float:
    """The default Adam learning rate for a model instance: 3e-3 for SIREN, qiren_plus's own, 0.03 otherwise.

    Args:
        model: A fitting model (from `build_fitting_model`).

    Returns:
        The learning rate its recipe uses.

    Examples:
        >>> from qiren_gen.training import build_fitting_model, default_learning_rate
        >>> default_learning_rate(build_fitting_model("siren", in_features=1))
        0.003
    """
    return DEFAULT_LEARNING_RATES[_recipe_name(model)]


def default_schedule(model: nn.Module) -> str:
    """The default learning-rate schedule for a model instance (constant, as in the paper, unless a preset says).

    Args:
        model: A fitting model (from `build_fitting_model`).

    Returns:
        ``"constant"`` or ``"cosine"``.

    Examples:
        >>> from qiren_gen.training import build_fitting_model, default_schedule
        >>> default_schedule(build_fitting_model("qiren", in_features=1))
        'constant'
    """
    return DEFAULT_SCHEDULES.get(_recipe_name(model), "constant")


@dataclass
class FitResult:
    """What `fit_inr` returns.

    Args:
        losses: Loss after every step (before the update).
        seconds: The loop's wall-clock time.
        cpu_seconds: The loop's process CPU time.

    Examples:
        >>> from qiren_gen.training import FitResult
        >>> FitResult(losses=[0.5, 0.25], seconds=0.1).losses[-1]
        0.25
    """

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def build_fitting_model(name: str, in_features: int, out_features: int = 1, seed: int = 0, **kwargs) -> ModelMixin:
    """A fitting model by name with a reproducible initialisation (the global RNG state is left untouched).

    Args:
        name: One of ``qiren_gen.models.MODEL_BUILDERS`` (``"qiren"``, ``"qiren_plus"``, ``"siren"``, ``"relu"``,
            ``"tanh"``, ``"relu_rff"``, ``"ffn"``, ``"qfgn"``, ``"qvf"``), or a former spelling (``"qiren-plus"``,
            ``"relu-rff"``).
        in_features: Coordinate dimensions: 1 for audio, 2 for images.
        out_features: Values per coordinate.
        seed: Seed of the initial weights.
        **kwargs: Passed to the model's constructor.

    Returns:
        The model (a diffusers ``ModelMixin``).

    Examples:
        >>> from qiren_gen.training import build_fitting_model
        >>> model = build_fitting_model("qiren", in_features=2, seed=0)
        >>> type(model).__name__, model.config.in_features
        ('QIREN', 2)
    """
    name = canonical_model_name(name)
    if name in ("relu_rff", "ffn"):
        kwargs.setdefault("seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_inr(name, in_features, out_features, **kwargs)


SCHEDULES = ("constant", "cosine")

MAX_LEARNING_RATE = 100.0
"""Largest accepted Adam step size: far above any useful one (0.03 here), far below float32 overflow."""


def _check_fit_args(coords: torch.Tensor, targets: torch.Tensor, steps: int, learning_rate: float) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not 0 < learning_rate <= MAX_LEARNING_RATE:
        raise ValueError(f"learning rate must be in (0, {MAX_LEARNING_RATE:g}], got {learning_rate!r}")
    if coords.ndim != 2 or targets.ndim != 2 or coords.shape[0] != targets.shape[0]:
        raise ValueError(f"need coords (N, d) and targets (N, c) with the same N, got {tuple(coords.shape)}, "
                         f"{tuple(targets.shape)}")
    if coords.shape[0] < 2:
        raise ValueError("need at least 2 samples to fit (BatchNorm needs a batch)")


def fit_inr(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    steps: int = DEFAULT_STEPS,
    learning_rate: float = 0.03,
    progress: bool = True,
    desc: str = "fitting",
    schedule: str = "constant",
    on_step: Callable[[int, float, torch.Tensor], None] | None = None,
) -> FitResult:
    """Fit ``model(coords) ~ targets`` by full-batch Adam on the MSE; leaves the model calibrated, in eval mode.

    Args:
        model: A coordinate network (e.g. from `build_fitting_model`).
        coords: ``(N, in_features)`` coordinates in [-1, 1].
        targets: ``(N, out_features)`` values.
        steps: Adam steps.
        learning_rate: Adam learning rate (see `default_learning_rate`).
        progress: Show a progress bar.
        desc: The progress bar's label.
        schedule: ``"constant"`` (the paper's) or ``"cosine"`` (anneals the learning rate to 0 over ``steps``).
        on_step: Called as ``on_step(step, loss, prediction)`` after every step with the (detached) prediction the
            loss measured, so a caller can show the fit as it trains.

    Returns:
        A `FitResult` with the loss curve and timings.

    Examples:
        >>> import torch
        >>> from qiren_gen.training import build_fitting_model, fit_inr
        >>> model = build_fitting_model("qiren", in_features=1, seed=0)
        >>> coords = torch.linspace(-1, 1, 32)[:, None]
        >>> result = fit_inr(model, coords, torch.sin(3 * coords), steps=30, progress=False)
        >>> len(result.losses), result.losses[-1] < result.losses[0]
        (30, True)
    """
    _check_fit_args(coords, targets, steps, learning_rate)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if schedule == "cosine" else None
    result = FitResult()
    model.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        prediction = model(coords)
        loss = torch.mean((prediction - targets) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        result.losses.append(loss.item())
        if not math.isfinite(result.losses[-1]) or not all(bool(torch.isfinite(p).all()) for p in params):
            raise ValueError(f"the fit diverged at step {step + 1} (non-finite loss or weights); "
                             "lower the learning rate")
        bar.set_postfix(mse=f"{result.losses[-1]:.2e}", refresh=False)
        if on_step is not None:
            on_step(step, result.losses[-1], prediction.detach())
    calibrate_batchnorm(model, coords)
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - cpu_start
    return result


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, coords: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to the exact (biased) batch statistics of the training grid.

    After this, ``model.eval()`` computes on the training grid exactly what training-mode forward computed, and on
    any other grid (superresolution, a single point) the same function: normalisation no longer depends on the query.
    Models without BatchNorm are only switched to eval mode.

    Args:
        model: A coordinate network.
        coords: The ``(N, in_features)`` training grid.

    Returns:
        ``model``, in eval mode.

    Examples:
        >>> import torch
        >>> from qiren_gen.training import build_fitting_model, calibrate_batchnorm
        >>> model = build_fitting_model("qiren", in_features=1)
        >>> grid = torch.linspace(-1, 1, 16)[:, None]
        >>> with torch.no_grad():
        ...     before = model.train()(grid)
        >>> bool(torch.allclose(calibrate_batchnorm(model, grid)(grid), before, atol=1e-5))
        True
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        saved = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
        model.train()
        model(coords)
        n = coords.shape[0]
        for m, momentum in zip(norms, saved, strict=True):
            # PyTorch stores the unbiased variance; training normalised by the biased one
            m.running_var.mul_((n - 1) / n)
            m.momentum = momentum
    model.eval()
    return model


@torch.no_grad()
def render(model: nn.Module, coords: torch.Tensor, chunk_size: int = 65536) -> torch.Tensor:
    """Evaluate ``model`` (in eval mode) on ``coords`` chunk by chunk, so memory stays bounded at any resolution.

    Args:
        model: A coordinate network.
        coords: ``(N, in_features)`` coordinates.
        chunk_size: Coordinates evaluated at once.

    Returns:
        ``(N, out_features)`` values, without gradients.

    Examples:
        >>> import torch
        >>> from qiren_gen.training import build_fitting_model, render
        >>> render(build_fitting_model("siren", in_features=1), torch.linspace(-1, 1, 100)[:, None]).shape
        torch.Size([100, 1])
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    model.eval()
    return torch.cat([model(chunk) for chunk in coords.split(chunk_size)], dim=0)
