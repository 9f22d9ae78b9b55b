"""``QirenSuperResolutionPipeline``: fit an INR to a low-resolution image, render it on a finer grid.

Reading order (diffusers style): ``check_inputs`` -> ``encode`` -> ``decode`` (render on the high-resolution grid)
-> post-process. Two modes, chosen by the components the pipeline holds:

* ``"fit"`` (component ``model``): fit a fresh INR to the one low-resolution image (the paper's experiment);
* ``"prior"`` (components ``decoder`` + ``modulator`` of a trained generative pipeline): encode the image into the
  functional model's latent space with its meta-learned inner loop and render that function at high resolution,
  so what the model learned about faces fills in the missing detail.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..data.grids import MAX_GRID_POINTS
from ..functa import decode_latents, encode_images
from ..metrics import psnr
from ..metrics.signals import mse
from ..models import LatentModulator
from ..training.fitting import DEFAULT_STEPS, build_fitting_model, render
from ._signals import FittingModel, as_targets, check_fit_inputs, fit_pipeline_model, grid_for, postprocess
from .diffusers_entry import DiffusersEntryMixin
from .generation import DecoderModel
from .loading import safe_from_pretrained

INTERPOLATION_MODES = ("bilinear", "nearest", "bicubic")


@dataclass
class SuperResolutionOutput(BaseOutput):
    """What `QirenSuperResolutionPipeline` returns.

    Args:
        images: The high-resolution image(s), as ``output_type`` asked.
        low_res_mse: Mean squared error of the fit on the low-resolution input.
        losses: The loss after every step (empty in prior mode).
        seconds: Wall-clock time of the fit.

    Examples:
        >>> import numpy as np
        >>> from qiren_gen.pipelines import SuperResolutionOutput
        >>> SuperResolutionOutput(np.zeros((8, 8)), low_res_mse=0.01, losses=[0.01], seconds=0.2).images.shape
        (8, 8)
    """

    images: np.ndarray | torch.Tensor | list
    low_res_mse: float
    losses: list[float]
    seconds: float


def interpolate_image(image: np.ndarray, scale: int, mode: str = "bilinear", align_corners: bool = False) -> np.ndarray:
    """Classical upsampling baseline of a ``(H, W)`` image by an integer ``scale``.

    Args:
        image: ``(H, W)`` image.
        scale: Integer upsampling factor.
        mode: ``torch.nn.functional.interpolate`` mode (``"bilinear"``, ``"bicubic"``, ``"nearest"``).
        align_corners: Must match the grid convention the INR uses, so both methods place samples at the same points.

    Returns:
        The ``(scale * H, scale * W)`` image.

    Examples:
        >>> import numpy as np
        >>> from qiren_gen.pipelines import interpolate_image
        >>> interpolate_image(np.zeros((4, 4)), scale=2).shape
        (8, 8)
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


class QirenSuperResolutionPipeline(DiffusersEntryMixin, DiffusionPipeline):
    """Superresolution by implicit representation: fit a coordinate network on the low-resolution image and query a
    finer grid, or (prior mode) encode it with a trained decoder + modulator and decode it larger.

    BatchNorm statistics are frozen to the low-resolution training grid after fitting (see
    ``qiren_gen.training.calibrate_batchnorm``), so the high-resolution render is the same continuous function the
    fit learned, not one renormalised to the statistics of the new grid.

    Args:
        model: Fit mode: the coordinate network to fit (build one by name with `from_model_name`).
        decoder: Prior mode: a trained modulated decoder (with ``modulator``, instead of ``model``).
        modulator: Prior mode: the decoder's [`LatentModulator`][qiren_gen.models.LatentModulator].

    Examples:
        >>> import numpy as np
        >>> from qiren_gen.pipelines import QirenSuperResolutionPipeline
        >>> pipe = QirenSuperResolutionPipeline.from_model_name("qiren", seed=0)
        >>> pipe.set_progress_bar_config(disable=True)
        >>> low = np.outer(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8))
        >>> pipe(low, scale=2, num_steps=10).images.shape
        (16, 16)
    """

    model_cpu_offload_seq = "model"
    _optional_components = ["model", "decoder", "modulator"]

    def __init__(
        self, model: FittingModel | None = None, decoder: DecoderModel | None = None,
        modulator: LatentModulator | None = None,
    ) -> None:
        super().__init__()
        has_prior = decoder is not None and modulator is not None
        if (model is None) == (not has_prior) or (decoder is None) != (modulator is None):
            raise ValueError("give either `model` (fit mode) or both `decoder` and `modulator` (prior mode)")
        self.register_modules(model=model, decoder=decoder, modulator=modulator)

    @property
    def mode(self) -> str:
        """``"fit"`` (fit a fresh INR per image) or ``"prior"`` (encode with a pretrained functional model)."""
        return "fit" if self.model is not None else "prior"

    @classmethod
    def from_generation_pipeline(cls, pipeline) -> QirenSuperResolutionPipeline:
        """Prior mode sharing the decoder and hypernetwork of a (pretrained) ``QirenGenerationPipeline``."""
        return cls(decoder=pipeline.decoder, modulator=pipeline.modulator)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved pipeline (folder or Hub id): safetensors weights only, never code or pickles from the folder."""
        parts = ("model", "decoder", "modulator")  # fit mode saves only model, prior mode decoder + modulator
        return safe_from_pretrained(cls, pretrained_model_name_or_path, parts, optional=parts, **kwargs)

    @classmethod
    def from_model_name(cls, name: str = "qiren", seed: int = 0, **kwargs):
        """A pipeline around a freshly initialised 2-D grayscale model ``name``."""
        return cls(model=build_fitting_model(name, 2, 1, seed=seed, **kwargs))

    def check_inputs(self, scale: int, num_steps: int, learning_rate: float | None, output_type: str,
                     schedule: str | None = None) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be an int >= 1, got {scale!r}")
        check_fit_inputs(num_steps, learning_rate, output_type, schedule)
        if self.mode == "fit" and self.model.config.in_features != 2:
            raise ValueError("superresolution needs a 2-D (image) model")

    def encode(self, image, num_steps: int, learning_rate: float | None, align_corners: bool,
               schedule: str | None = None):
        """Fit the model to the low-resolution image; returns (fitted low-res values, targets, spatial shape,
        result)."""
        cfg = self.model.config
        targets, spatial = as_targets(image, cfg.in_features, cfg.out_features)
        coords = grid_for(spatial, 2, align_corners).to(self.device)
        result = fit_pipeline_model(self, coords, targets.to(self.device), num_steps, learning_rate, schedule,
                                    "fitting low-res")
        return render(self.model, coords).cpu(), targets, spatial, result

    def encode_with_prior(self, image, scale: int):
        """Encode the low-resolution image with the functional model and render it ``scale`` times larger.

        Returns (low-res render, targets, spatial shape, high-res render, seconds). Pixel-centre grids only.
        """
        channels = self.decoder.config.out_channels
        targets, spatial = as_targets(image, 2, channels)
        if len(spatial) != 2:
            raise ValueError(f"prior mode needs a 2-D image, got spatial shape {spatial}")
        param = next(self.decoder.parameters())
        images = targets.T.reshape(1, channels, *spatial).to(param)
        start = time.perf_counter()
        latents = encode_images(self.decoder, self.modulator, images)
        with torch.no_grad():
            low = decode_latents(self.decoder, self.modulator, latents, *spatial)
            high = decode_latents(self.decoder, self.modulator, latents, spatial[0] * scale, spatial[1] * scale)
        seconds = time.perf_counter() - start
        as_points = lambda x: x[0].reshape(channels, -1).T.float().cpu()  # noqa: E731
        return as_points(low), targets, spatial, as_points(high), seconds

    def decode(self, height: int, width: int, align_corners: bool) -> torch.Tensor:
        """Render the fitted function on a ``height x width`` grid (chunked, eval mode)."""
        return render(self.model, grid_for((height, width), 2, align_corners).to(self.device)).cpu()

    # Mirrors QirenSignalFittingPipeline.__call__'s fit arguments: diffusers spells out every call argument.
    def __call__(
        self,
        image,
        scale: int = 2,
        num_steps: int = DEFAULT_STEPS,
        learning_rate: float | None = None,
        align_corners: bool = False,
        output_type: str = "np",
        return_dict: bool = True,
        schedule: str | None = None,
    ) -> SuperResolutionOutput | tuple:
        """Upsample a ``(H, W)`` image in [-1, 1] by ``scale`` (``num_steps`` / ``learning_rate``: fit mode only).

        ``align_corners=False`` samples pixel centres (consistent with area resizing); ``True`` is the paper's
        ``linspace`` grid. ``schedule`` (fit mode: ``"constant"`` or ``"cosine"``) defaults to the model's recipe.
        """
        self.check_inputs(scale, num_steps, learning_rate, output_type, schedule)
        if self.mode == "prior":
            _, low_shape = as_targets(image, 2, self.decoder.config.out_channels)
        else:
            _, low_shape = as_targets(image, self.model.config.in_features, self.model.config.out_features)
        high_points = low_shape[0] * scale * low_shape[1] * scale
        if high_points > MAX_GRID_POINTS:  # checked before fitting: never lose a fit to an impossible render
            raise ValueError(f"a {low_shape[0] * scale}x{low_shape[1] * scale} output has {high_points} pixels, "
                             f"over the limit of {MAX_GRID_POINTS}")
        if self.mode == "prior":
            if align_corners:
                raise ValueError("prior mode renders on pixel centres; align_corners=True is for fit mode")
            fitted_low, targets, spatial, high, seconds = self.encode_with_prior(image, scale)
            losses: list[float] = []
        else:
            fitted_low, targets, spatial, result = self.encode(image, num_steps, learning_rate, align_corners, schedule)
            high = self.decode(spatial[0] * scale, spatial[1] * scale, align_corners)
            losses, seconds = result.losses, result.seconds
        images = postprocess(high, (spatial[0] * scale, spatial[1] * scale), output_type)
        low_mse = mse(fitted_low, targets)
        if not return_dict:
            return (images, low_mse, losses, seconds)
        return SuperResolutionOutput(images, low_mse, losses, seconds)


def superres_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MSE and PSNR of a high-resolution prediction against its ground truth."""
    return {"mse": mse(prediction, target), "psnr": float(psnr(prediction, target, data_range=2.0))}
