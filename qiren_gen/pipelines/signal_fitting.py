"""``QirenSignalFittingPipeline``: fit an INR (QIREN or a baseline) to one audio clip or image, then render it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..metrics import psnr
from ..metrics.signals import mse
from ..training.fitting import DEFAULT_STEPS, build_fitting_model, render
from ._signals import FittingModel, as_targets, check_fit_inputs, fit_pipeline_model, grid_for, postprocess
from .diffusers_entry import DiffusersEntryMixin
from .loading import safe_from_pretrained


@dataclass
class SignalFittingOutput(BaseOutput):
    """What `QirenSignalFittingPipeline` returns.

    Args:
        signal: The fitted signal, as ``output_type`` asked (numpy array, torch tensor or list).
        mse: Mean squared error of the fit against the target.
        psnr: PSNR in dB of the fit (signals in [-1, 1]: data range 2).
        losses: The loss after every step.
        seconds: Wall-clock time of the fit.

    Examples:
        >>> import numpy as np
        >>> from qiren_gen.pipelines import SignalFittingOutput
        >>> SignalFittingOutput(np.zeros(4), mse=0.01, psnr=26.02, losses=[0.3, 0.01], seconds=0.5).losses[-1]
        0.01
    """

    signal: np.ndarray | torch.Tensor | list
    mse: float
    psnr: float
    losses: list[float]
    seconds: float


class QirenSignalFittingPipeline(DiffusersEntryMixin, DiffusionPipeline):
    """Fit ``model`` to a signal sampled on a regular grid in [-1, 1] (the paper's signal-representation task).

    The signal is ``(N,)`` audio for a 1-D model or an ``(H, W)`` image for a 2-D model, values in [-1, 1]. Training
    is full-batch Adam on the MSE; afterwards BatchNorm statistics are frozen to the training grid, so
    ``render(shape)`` evaluates the same continuous function at any resolution.

    Args:
        model: A coordinate network from ``qiren_gen.models.MODEL_BUILDERS`` (``QIREN``, ``SIREN``, the MLPs); build
            one by name with `from_model_name`.

    Examples:
        >>> import numpy as np
        >>> from qiren_gen.pipelines import QirenSignalFittingPipeline
        >>> pipe = QirenSignalFittingPipeline.from_model_name("qiren", in_features=1, out_features=1, seed=0)
        >>> pipe.set_progress_bar_config(disable=True)
        >>> result = pipe(np.sin(np.linspace(0, 6, 64)), num_steps=20)
        >>> result.signal.shape, bool(result.psnr > 0)
        ((64,), True)
    """

    model_cpu_offload_seq = "model"

    def __init__(self, model: FittingModel) -> None:
        super().__init__()
        self.register_modules(model=model)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved pipeline (folder or Hub id): safetensors weights only, never code or pickles from the folder."""
        return safe_from_pretrained(cls, pretrained_model_name_or_path, ("model",), **kwargs)

    @classmethod
    def from_model_name(cls, name: str = "qiren", in_features: int = 2, out_features: int = 1, seed: int = 0, **kwargs):
        """A pipeline around a freshly initialised model ``name`` (qiren, qiren_plus, siren, relu, tanh, relu_rff,
        ffn, qfgn, qvf; the former spellings qiren-plus / relu-rff are read as the current names)."""
        return cls(model=build_fitting_model(name, in_features, out_features, seed=seed, **kwargs))

    def check_inputs(self, num_steps: int, learning_rate: float | None, output_type: str,
                     schedule: str | None = None) -> None:
        check_fit_inputs(num_steps, learning_rate, output_type, schedule)

    def render(self, shape: tuple[int, ...], align_corners: bool = True, output_type: str = "np"):
        """Evaluate the fitted model on a ``shape`` grid (``(N,)`` or ``(H, W)``) of ``[-1, 1]``."""
        cfg = self.model.config
        coords = grid_for(tuple(shape), cfg.in_features, align_corners).to(self.device)
        return postprocess(render(self.model, coords).cpu(), tuple(shape), output_type)

    def __call__(
        self,
        signal,
        num_steps: int = DEFAULT_STEPS,
        learning_rate: float | None = None,
        align_corners: bool = True,
        output_type: str = "np",
        return_dict: bool = True,
        schedule: str | None = None,
        callback_on_step_end: Callable[[QirenSignalFittingPipeline, int, int, dict], object] | None = None,
    ) -> SignalFittingOutput | tuple:
        """Fit the model to ``signal`` and return the fitted signal on the same grid.

        ``learning_rate`` defaults to the paper's 0.03 (3e-3 for SIREN); ``align_corners=True`` is the paper's
        ``linspace(-1, 1)`` grid. ``schedule`` (``"constant"`` or ``"cosine"``) defaults to the model's recipe.
        ``callback_on_step_end(pipe, step, step, {"loss", "prediction"})`` runs after
        every optimiser step (diffusers' callback shape; ``prediction`` is the current fit as ``output_type="pt"``).
        """
        self.check_inputs(num_steps, learning_rate, output_type, schedule)
        cfg = self.model.config
        targets, spatial = as_targets(signal, cfg.in_features, cfg.out_features)
        coords = grid_for(spatial, cfg.in_features, align_corners).to(self.device)
        targets = targets.to(self.device)

        def report(step: int, loss: float, prediction: torch.Tensor) -> None:
            fit = postprocess(prediction.cpu(), spatial, "pt")
            callback_on_step_end(self, step, step, {"loss": loss, "prediction": fit})

        on_step = report if callback_on_step_end is not None else None
        result = fit_pipeline_model(self, coords, targets, num_steps, learning_rate, schedule, "fitting", on_step)
        fitted = render(self.model, coords).cpu()
        err = mse(fitted, targets.cpu())
        out = postprocess(fitted, spatial, output_type)
        metrics = (err, float(psnr(fitted, targets.cpu(), data_range=2.0)), result.losses, result.seconds)
        if not return_dict:
            return (out, *metrics)
        return SignalFittingOutput(out, *metrics)
