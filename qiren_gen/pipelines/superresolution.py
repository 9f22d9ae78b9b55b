"""``QirenSuperResolutionPipeline``: fit an INR to a low-resolution image, render it on a finer grid.

Reading order (diffusers style): ``check_inputs`` -> ``encode`` (here: fit the INR to the low-resolution image) ->
``decode`` (render on the high-resolution grid) -> post-process. A prior-based mode (encode an image with a
pretrained functional model instead of fitting from scratch) can override ``encode`` alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput

from ..signal_metrics import mse, psnr
from ..training.fitting import DEFAULT_STEPS, build_fitting_model, default_learning_rate, fit_inr, render
from ._signals import OUTPUT_TYPES, as_targets, grid_for, postprocess

INTERPOLATION_MODES = ("bilinear", "nearest", "bicubic")


@dataclass
class SuperResolutionOutput(BaseOutput):
    """High-resolution image(s), the fit's MSE on the low-resolution input, the loss curve and fit time."""

    images: np.ndarray | torch.Tensor | list
    low_res_mse: float
    losses: list[float]
    seconds: float


def interpolate_image(image: np.ndarray, scale: int, mode: str = "bilinear", align_corners: bool = False) -> np.ndarray:
    """Classical upsampling baseline of a ``(H, W)`` image by an integer ``scale``.

    ``align_corners`` must match the grid convention the INR uses, so both methods place samples at the same points.
    """
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
    x = torch.as_tensor(np.asarray(image, dtype=np.float64))[None, None]
    size = (x.shape[-2] * scale, x.shape[-1] * scale)
    if mode == "nearest":
        y = F.interpolate(x, size=size, mode="nearest-exact")
    else:
        y = F.interpolate(x, size=size, mode=mode, align_corners=align_corners)
    return y[0, 0].clamp(-1, 1).numpy()


class QirenSuperResolutionPipeline(DiffusionPipeline):
    """Superresolution by implicit representation: fit ``model`` on the low-resolution image, query a finer grid.

    BatchNorm statistics are frozen to the low-resolution training grid after fitting (see
    ``qiren_gen.training.calibrate_batchnorm``), so the high-resolution render is the same continuous function the
    fit learned, not one renormalised to the statistics of the new grid.
    """

    model_cpu_offload_seq = "model"

    def __init__(self, model: ModelMixin) -> None:
        super().__init__()
        self.register_modules(model=model)

    @classmethod
    def from_model_name(cls, name: str = "qiren", seed: int = 0, **kwargs):
        """A pipeline around a freshly initialised 2-D grayscale model ``name``."""
        return cls(model=build_fitting_model(name, 2, 1, seed=seed, **kwargs))

    def check_inputs(self, scale: int, num_steps: int, learning_rate: float | None, output_type: str) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be an int >= 1, got {scale!r}")
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
        if learning_rate is not None and not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if self.model.config.in_features != 2:
            raise ValueError("superresolution needs a 2-D (image) model")

    def encode(self, image, num_steps: int, learning_rate: float | None, align_corners: bool):
        """Fit the model to the low-resolution image; returns (fitted low-res values, targets, spatial shape, result)."""
        cfg = self.model.config
        targets, spatial = as_targets(image, cfg.in_features, cfg.out_features)
        coords = grid_for(spatial, 2, align_corners).to(self.device)
        lr = default_learning_rate(self.model) if learning_rate is None else learning_rate
        result = fit_inr(self.model, coords, targets.to(self.device), num_steps, lr,
                         progress=not self._progress_disabled(), desc="fitting low-res")
        return render(self.model, coords).cpu(), targets, spatial, result

    def decode(self, height: int, width: int, align_corners: bool) -> torch.Tensor:
        """Render the fitted function on a ``height x width`` grid (chunked, eval mode)."""
        return render(self.model, grid_for((height, width), 2, align_corners).to(self.device)).cpu()

    def __call__(
        self,
        image,
        scale: int = 2,
        num_steps: int = DEFAULT_STEPS,
        learning_rate: float | None = None,
        align_corners: bool = False,
        output_type: str = "np",
        return_dict: bool = True,
    ) -> SuperResolutionOutput | tuple:
        """Upsample a ``(H, W)`` image in [-1, 1] by ``scale``.

        ``align_corners=False`` samples pixel centres (consistent with area resizing); ``True`` is the paper's
        ``linspace`` grid.
        """
        self.check_inputs(scale, num_steps, learning_rate, output_type)
        fitted_low, targets, spatial, result = self.encode(image, num_steps, learning_rate, align_corners)
        high = self.decode(spatial[0] * scale, spatial[1] * scale, align_corners)
        images = postprocess(high, (spatial[0] * scale, spatial[1] * scale), output_type)
        low_mse = mse(fitted_low, targets)
        if not return_dict:
            return (images, low_mse, result.losses, result.seconds)
        return SuperResolutionOutput(images, low_mse, result.losses, result.seconds)

    def _progress_disabled(self) -> bool:
        return bool(getattr(self, "_progress_bar_config", {}).get("disable", False))


def superres_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MSE and PSNR of a high-resolution prediction against its ground truth."""
    return {"mse": mse(prediction, target), "psnr": psnr(prediction, target)}
