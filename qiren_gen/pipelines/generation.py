"""``QirenGenerationPipeline``: noise -> diffusion prior -> latents -> modulated QIREN decoder -> images at any size.

Reads top to bottom as the algorithm (diffusers' order): check inputs, prepare latents, denoising loop under a
progress bar, decode in coordinate chunks, post-process to ``output_type``. Loading lives in ``loading``, the model
card in ``model_card``, the Hub upload in ``hub``, the component checks in ``component_checks`` and the bundled
pipeline's folder in ``folders``.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Union

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from ..functa import decode_latents, prior_superresolve
from ..models import DECODER_CLASSES, LatentModulator
from ..models.denoiser import LatentDenoiser
from ..quantum.noise import as_noise_model
from ..quantum.shots import check_shots, measurement
from .component_checks import check_components
from .diffusers_entry import DiffusersEntryMixin
from .folders import BUNDLED_PIPELINE, bundled_pipeline_dir  # noqa: F401 - their import path before folders.py
from .hub import push_pipeline_to_hub
from .loading import safe_from_pretrained
from .model_card import read_model_card_sections, write_model_card
from .schedulers import check_scheduler

DecoderModel = Union[DECODER_CLASSES]  # noqa: UP007 - a runtime Union of a tuple; diffusers' from_pipe reads it
"""Type hint of the ``decoder`` component: any modulated decoder class (``from_pipe`` matches components by it)."""

MAX_RENDER_PIXELS = 4096 * 4096
"""Largest image (height * width) one call renders: 16.8M pixels, 64 MiB of float32 per channel per image."""

MAX_BATCH_PIXELS = 2**26
"""Largest ``batch_size * height * width`` one call renders (the output tensor alone is 256 MiB per channel)."""

COMPONENTS = ("decoder", "modulator", "prior", "scheduler")
OUTPUT_TYPES = ("pil", "np", "pt", "latent")


def check_generation_inputs(batch_size: int, height: int, width: int, num_inference_steps: int) -> None:
    """Raise ``ValueError`` (one line) for sizes or step counts the pipeline cannot honour."""
    for name, value in (("batch_size", batch_size), ("height", height), ("width", width),
                        ("num_inference_steps", num_inference_steps)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if height * width > MAX_RENDER_PIXELS:
        raise ValueError(
            f"{height}x{width} is {height * width} pixels, over the documented bound of {MAX_RENDER_PIXELS} "
            "(4096x4096) per image"
        )
    if batch_size * height * width > MAX_BATCH_PIXELS:
        raise ValueError(
            f"batch_size * height * width = {batch_size * height * width} is over the bound of {MAX_BATCH_PIXELS}; "
            "sample fewer images per call"
        )


class QirenGenerationPipeline(DiffusersEntryMixin, DiffusionPipeline):
    """Unconditional image generation with a functional (QIREN) decoder and a latent diffusion prior.

    The prior denoises a latent per image, the modulator maps it to the decoder's modulations, and the decoder, a
    function of continuous coordinates, renders the image at any height and width (in chunks, so memory stays bounded).

    Args:
        decoder: A modulated decoder: [`FeatureSynthesisDecoder`][qiren_gen.models.FeatureSynthesisDecoder] (the
            shipped one), [`ModulatedQIREN`][qiren_gen.models.ModulatedQIREN],
            [`ModulatedWideQIREN`][qiren_gen.models.ModulatedWideQIREN] or
            [`ModulatedSIREN`][qiren_gen.models.ModulatedSIREN].
        modulator: The [`LatentModulator`][qiren_gen.models.LatentModulator] (latent -> modulations) trained with the
            decoder.
        prior: The [`LatentDenoiser`][qiren_gen.models.LatentDenoiser] trained on the decoder's latents.
        scheduler: Any diffusers scheduler (DDIM, DPM-Solver++, UniPC, Euler, ...).

    Raises:
        ValueError: The components do not fit together (their types, latent or modulation sizes, NaN weights).

    Examples:
        >>> import torch
        >>> from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir
        >>> pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())  # LFW faces, shipped offline
        >>> pipe.set_progress_bar_config(disable=True)
        >>> images = pipe(batch_size=2, num_inference_steps=2, height=32, width=32,
        ...               generator=torch.Generator().manual_seed(0)).images
        >>> [image.size for image in images]
        [(32, 32), (32, 32)]
    """

    model_cpu_offload_seq = "prior->modulator->decoder"
    _callback_tensor_inputs = ["latents"]
    """Tensors a ``callback_on_step_end`` may read and replace: ``latents`` is x_t in the prior's normalised space."""

    def __init__(self, decoder: DecoderModel, modulator: LatentModulator, prior: LatentDenoiser,
                 scheduler: SchedulerMixin) -> None:
        super().__init__()
        check_components(decoder, modulator, prior, scheduler)
        self.register_modules(decoder=decoder, modulator=modulator, prior=prior, scheduler=scheduler)
        self.image_processor = VaeImageProcessor(do_resize=False, do_normalize=True)
        self.model_card_sections: dict[str, str] = {}
        self.model_card_location: str | None = None  # folder or Hub id shown in the model card's usage lines
        self._num_timesteps = 0
        self._interrupt = False

    # ------------------------------------------------------------------------------- diffusers' call state
    @property
    def num_timesteps(self) -> int:
        """Number of denoising steps the last (or running) call takes: ``len(scheduler.timesteps)``."""
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set ``pipe._interrupt = True`` in a step callback to skip the remaining steps (the current latents are
        decoded)."""
        return self._interrupt

    # ----------------------------------------------------------------------------------------------- checks
    def check_inputs(self, batch_size: int, height: int, width: int, num_inference_steps: int, output_type: str,
                     generator, callback_on_step_end=None, callback_on_step_end_tensor_inputs=None) -> None:
        """Raise ``ValueError`` (one line) for arguments ``__call__`` cannot honour, before any work is done."""
        check_generation_inputs(batch_size, height, width, num_inference_steps)
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"got {len(generator)} generators for batch_size {batch_size}")
        self.check_callback_inputs(callback_on_step_end, callback_on_step_end_tensor_inputs or ["latents"])

    def check_callback_inputs(self, callback_on_step_end, tensor_inputs) -> list[str]:
        """The tensor names a step callback receives, checked against ``_callback_tensor_inputs`` (one line)."""
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            tensor_inputs = callback_on_step_end.tensor_inputs
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise ValueError(f"callback_on_step_end must be callable, got {type(callback_on_step_end).__name__}")
        names = list(tensor_inputs or [])
        unknown = [k for k in names if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs: {', '.join(map(repr, unknown))} not in "
                             f"_callback_tensor_inputs {self._callback_tensor_inputs}")
        return names

    # ----------------------------------------------------------------------------------------------- sampling
    def _run_callback(self, callback, i: int, t, names: list[str], tensors: dict) -> dict:
        """Call ``callback(self, i, t, {name: tensor})``; returns the tensors it replaced, checked (one line)."""
        out = callback(self, i, t, {k: tensors[k] for k in names})
        if not isinstance(out, dict):
            raise ValueError(f"callback_on_step_end must return its callback_kwargs dict, got {type(out).__name__}")
        for key, value in out.items():
            if key not in self._callback_tensor_inputs:
                raise ValueError(f"callback_on_step_end returned '{key}', not in _callback_tensor_inputs "
                                 f"{self._callback_tensor_inputs}")
            if not isinstance(value, torch.Tensor) or value.shape != tensors[key].shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"callback_on_step_end returned '{key}' of shape {got}; expected "
                                 f"{tuple(tensors[key].shape)}")
        return {k: v.to(tensors[k]) for k, v in out.items()}

    def prepare_latents(self, batch_size: int, generator, latents: torch.Tensor | None) -> torch.Tensor:
        """Initial noise ``(B, latent_dim)`` scaled by ``init_noise_sigma`` (or the given ``latents``, checked).

        Call after ``scheduler.set_timesteps``: for sigma-space schedulers (Euler, LMS, Heun, ...) the initial
        sigma depends on the timesteps.
        """
        shape = (batch_size, self.prior.config.latent_dim)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=self._execution_device, dtype=self.prior.dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        return latents.to(self._execution_device, self.prior.dtype) * self.scheduler.init_noise_sigma

    def _step_kwargs(self, generator, eta: float) -> dict:
        params = set(inspect.signature(self.scheduler.step).parameters)
        return {k: v for k, v in (("eta", eta), ("generator", generator)) if k in params}

    @torch.inference_mode()
    def sample_latents(
        self, batch_size: int = 1, num_inference_steps: int = 50, generator=None, latents=None, eta: float = 0.0,
        callback_on_step_end: Callable | None = None, callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> torch.Tensor:
        """Run the reverse diffusion: ``(batch_size, latent_dim)`` decoder latents (denormalised)."""
        check_scheduler(self.scheduler)  # a scheduler assigned after construction is checked here
        names = self.check_callback_inputs(callback_on_step_end, callback_on_step_end_tensor_inputs or ["latents"])
        # timesteps first, then the noise: init_noise_sigma depends on the timesteps for sigma-space schedulers
        self.scheduler.set_timesteps(num_inference_steps, device=self._execution_device)
        timesteps = self.scheduler.timesteps
        latents = self.prepare_latents(batch_size, generator, latents)
        step_kwargs = self._step_kwargs(generator, eta)
        self._num_timesteps = len(timesteps)
        self._interrupt = False
        for i, t in enumerate(self.progress_bar(timesteps)):
            if self.interrupt:
                continue
            model_input = self.scheduler.scale_model_input(latents, t)
            model_output = self.prior(model_input, t).sample
            latents = self.scheduler.step(model_output, t, latents, **step_kwargs).prev_sample
            if callback_on_step_end is not None:
                latents = self._run_callback(callback_on_step_end, i, t, names, {"latents": latents}).get(
                    "latents", latents)
        return self.prior.denormalize(latents)

    @torch.inference_mode()
    def render(self, latents: torch.Tensor, height: int, width: int, chunk_size: int | None = None) -> torch.Tensor:
        """Decode latents ``(B, latent_dim)`` to images ``(B, C, H, W)`` in about [-1, 1], chunk by chunk of the
        grid, every image at once (a chunk's coordinate features are computed once for all of them).

        ``chunk_size`` caps the coordinates decoded at once, summed over the images (default: a memory budget,
        ``functa.render_chunk_points``)."""
        points = None if chunk_size is None else max(1, chunk_size // max(latents.shape[0], 1))
        return decode_latents(self.decoder, self.modulator, latents, height, width, chunk_size=points,
                              progress=lambda chunks: self.progress_bar(list(chunks)))

    @torch.inference_mode()
    def __call__(
        self,
        batch_size: int = 1,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        chunk_size: int | None = None,
        callback_on_step_end: Callable[[QirenGenerationPipeline, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        shots: int | None = None,
        noise=None,
    ) -> ImagePipelineOutput | tuple:
        """Sample ``batch_size`` images at ``height`` x ``width``.

        Args:
            batch_size: Number of images to sample.
            height: Height in pixels (default: the training resolution); any size up to 4096 x 4096.
            width: Width in pixels of the images (default: the training resolution).
            num_inference_steps: Denoising steps of the prior; more steps are slower and usually cleaner.
            generator: A `torch.Generator` (or one per image) that makes sampling deterministic.
            output_type: `"pil"` (a list of PIL images), `"np"` (an array `(B, H, W, C)` in [0, 1]), `"pt"` (a
                tensor `(B, C, H, W)` in [0, 1]) or `"latent"` (the decoder latents `(B, latent_dim)`, not decoded).
            return_dict: Return an `ImagePipelineOutput` (default) instead of a plain tuple.
            latents: Initial noise `(batch_size, latent_dim)` to start denoising from, instead of drawing it from
                `generator`.
            eta: DDIM's eta (0: deterministic DDIM); ignored by schedulers without it.
            chunk_size: Largest number of coordinates decoded at once, summed over the images (default: a memory
                budget); bounds memory at any resolution without changing the images.
            callback_on_step_end: `callback(pipe, i, t, {name: tensor})`, run after every denoising step, returns
                the tensors, maybe replaced; `pipe._interrupt = True` there stops denoising.
            callback_on_step_end_tensor_inputs: Tensors the callback receives, from `_callback_tensor_inputs`
                (default `["latents"]`).
            shots: Decode with every circuit expectation estimated from this many measurement samples (drawn from
                `generator`, its first one if a list); `None` (default): exact expectations.
            noise: Noisy gates while decoding: a `quantum.noise.NoiseModel`, a dict of its fields or one depolarising
                probability; `None` (default): noiseless. See the research page on quantum hardware.

        Returns:
            diffusers' `ImagePipelineOutput` whose `images` are in `output_type`, or, with `return_dict=False`, the
            tuple `(images,)`.

        Raises:
            ValueError: An argument the pipeline cannot honour (one line, before any work is done).

        Examples:
            >>> import torch
            >>> from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir
            >>> pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
            >>> pipe.set_progress_bar_config(disable=True)
            >>> out = pipe(batch_size=2, num_inference_steps=2, height=48, width=64, output_type="np",
            ...            generator=torch.Generator().manual_seed(0))
            >>> out.images.shape
            (2, 48, 64, 1)
        """
        # 1. check inputs
        height = self.prior.config.sample_size if height is None else height
        width = self.prior.config.sample_size if width is None else width
        self.check_inputs(batch_size, height, width, num_inference_steps, output_type, generator,
                          callback_on_step_end, callback_on_step_end_tensor_inputs)
        shots, noise = check_shots(shots), as_noise_model(noise)
        # 2-4. timesteps, initial noise and the denoising loop
        z = self.sample_latents(batch_size, num_inference_steps, generator, latents, eta,
                                callback_on_step_end, callback_on_step_end_tensor_inputs)
        if output_type == "latent":
            self.maybe_free_model_hooks()
            return ImagePipelineOutput(images=z) if return_dict else (z,)
        # 5. decode in coordinate chunks, 6. post-process
        with measurement(self.decoder, shots, noise, generator[0] if isinstance(generator, list) else generator):
            image = self.render(z, height, width, chunk_size).float()
        image = self.image_processor.postprocess(image, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return ImagePipelineOutput(images=image)

    @torch.no_grad()
    def superresolve(
        self, images, height: int, width: int, steps: int | None = None, output_type: str = "pil",
        chunk_size: int | None = None,
    ):
        """Prior-based superresolution: encode low-resolution ``images`` (PIL list, or ``(B, C, h, w)`` in [0, 1])
        with the generative decoder and render them at ``height x width``; returns ``output_type`` images."""
        check_generation_inputs(1, height, width, 1)
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        if isinstance(images, Image.Image):
            images = [images]
        if isinstance(images, list):
            if not images or not all(isinstance(im, Image.Image) for im in images):
                raise ValueError("images must be a non-empty list of PIL images or a (B, C, h, w) tensor in [0, 1]")
            mode = "L" if self.decoder.config.out_channels == 1 else "RGB"
            arrays = self.image_processor.pil_to_numpy([im.convert(mode) for im in images])
            images = self.image_processor.numpy_to_pt(arrays)
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError("images must be PIL images or a (B, C, h, w) tensor in [0, 1]")
        param = next(self.decoder.parameters())
        out = prior_superresolve(self.decoder, self.modulator, images.to(param) * 2 - 1, height, width, steps,
                                 chunk_size)
        return self.image_processor.postprocess(out.float(), output_type=output_type)

    # ----------------------------------------------------------------------------------------- save / load
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> QirenGenerationPipeline:
        """Load from a local folder or a Hub id; weights only as safetensors, never code from the folder.

        Raises ``OSError`` (folder missing, not a pipeline, Hub unreachable) or ``ValueError`` (missing or mismatched
        components) with one clear line.
        """
        pipe = safe_from_pretrained(cls, pretrained_model_name_or_path, COMPONENTS, **kwargs)
        pipe.model_card_sections = read_model_card_sections(Path(pipe.config._name_or_path))
        return pipe

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True, **kwargs) -> None:
        """Save components (safetensors), ``model_index.json``, the diffusers entry module ``qiren_pipeline.py`` and a
        generated ``README.md`` model card (both ways to load), atomically (a kill leaves the previous folder or
        none)."""
        super().save_pretrained(save_directory, safe_serialization=safe_serialization, **kwargs)

    def write_extra_files(self, folder: str | os.PathLike) -> None:
        """The entry module and the generated model card."""
        super().write_extra_files(folder)
        write_model_card(self, folder)

    def push_to_hub(self, repo_id: str, commit_message: str | None = None, private: bool | None = None,
                    token: str | None = None, create_pr: bool = False, **kwargs) -> str:
        """Save to a temporary folder (weights, configs, model card) and upload it to ``repo_id``; returns the URL.

        Raises ``OSError`` with one line when the Hub cannot be reached (offline, no token, no network).
        """
        return push_pipeline_to_hub(self, repo_id, commit_message, private, token, create_pr)


__all__ = ["MAX_BATCH_PIXELS", "MAX_RENDER_PIXELS", "QirenGenerationPipeline", "check_generation_inputs"]
