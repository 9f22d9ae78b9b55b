"""``QirenGenerationPipeline``: noise -> diffusion prior -> latents -> modulated QIREN decoder -> images at any size.

Reads top to bottom as the algorithm (diffusers' order): check inputs, prepare latents, denoising loop under a
progress bar, decode in coordinate chunks, post-process to ``output_type``.
"""
from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Union

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.image_processor import VaeImageProcessor
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

from ..models import DECODER_CLASSES, LatentModulator
from ..models.denoiser import LatentDenoiser
from ..quantum.noise import as_noise_model
from ..quantum.shots import check_shots, measurement
from ..runtime.allocator import configure_allocator
from ..runtime.errors import hub_error_reason, one_line
from .diffusers_entry import DiffusersEntryMixin
from .loading import safe_from_pretrained
from .schedulers import check_scheduler

DecoderModel = Union[DECODER_CLASSES]  # noqa: UP007 - a runtime Union of a tuple; diffusers' from_pipe reads it
"""Type hint of the ``decoder`` component: any modulated decoder class (``from_pipe`` matches components by it)."""

MAX_RENDER_PIXELS = 4096 * 4096
"""Largest image (height * width) one call renders: 16.8M pixels, 64 MiB of float32 per channel per image."""

MAX_BATCH_PIXELS = 2**26
"""Largest ``batch_size * height * width`` one call renders (the output tensor alone is 256 MiB per channel)."""

COMPONENTS = ("decoder", "modulator", "prior", "scheduler")


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


def check_components(decoder, modulator, prior, scheduler) -> None:
    """Raise ``ValueError`` when the four components do not fit together (types, latent size, decoder input)."""
    for name, obj, cls in (("decoder", decoder, DECODER_CLASSES), ("modulator", modulator, LatentModulator),
                           ("prior", prior, LatentDenoiser)):
        if not isinstance(obj, cls):
            expected = cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls)
            raise ValueError(f"pipeline component '{name}' must be a {expected}, got {type(obj).__name__}")
    check_scheduler(scheduler)
    for name, model in (("decoder", decoder), ("modulator", modulator), ("prior", prior)):
        if not all(bool(torch.isfinite(t).all()) for t in [*model.parameters(), *model.buffers()]
                   if t.is_floating_point()):
            raise ValueError(f"pipeline component '{name}' has NaN or infinite weights (damaged or diverged model)")
    if prior.config.latent_dim != modulator.config.latent_dim:
        raise ValueError(
            f"mismatched components: prior latent_dim {prior.config.latent_dim} != modulator latent_dim "
            f"{modulator.config.latent_dim}"
        )
    try:  # the cheapest complete check that modulator output and decoder input agree: decode one point
        with torch.inference_mode():
            z = torch.zeros(1, modulator.config.latent_dim, device=modulator.device, dtype=modulator.dtype)
            coords = torch.zeros(1, 1, 2, device=decoder.device, dtype=decoder.dtype)
            out = decoder(coords, modulator(z))
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"mismatched components: the decoder cannot take the modulator's output ({one_line(exc)})"
                         ) from None
    if out.shape[-1] != decoder.config.out_channels:
        raise ValueError(f"mismatched components: decoder gives {out.shape[-1]} channels, config says "
                         f"{decoder.config.out_channels}")


class QirenGenerationPipeline(DiffusersEntryMixin, DiffusionPipeline):
    """Unconditional image generation with a functional (QIREN) decoder and a latent diffusion prior.

    The prior denoises a latent per image, the modulator maps it to the decoder's modulations, and the decoder, a
    function of continuous coordinates, renders the image at any height and width (in chunks, so memory stays bounded).

    Args:
        decoder: A modulated decoder: :class:`~qiren_gen.models.FeatureSynthesisDecoder` (the shipped one),
            :class:`~qiren_gen.models.ModulatedQIREN`, :class:`~qiren_gen.models.ModulatedWideQIREN` or
            :class:`~qiren_gen.models.ModulatedSIREN`.
        modulator: The :class:`~qiren_gen.models.LatentModulator` (latent -> modulations) trained with the decoder.
        prior: The :class:`~qiren_gen.models.LatentDenoiser` trained on the decoder's latents.
        scheduler: Any diffusers scheduler (DDIM, DPM-Solver++, UniPC, Euler, ...).

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
        configure_allocator()  # rendering's large activations stay on the heap (QIREN_GEN_MALLOC=default: off)
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

    # ----------------------------------------------------------------------------------------------- sampling
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
        from ..functa import decode_latents

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
        callback_on_step_end: Callable[["QirenGenerationPipeline", int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        shots: int | None = None,
        noise=None,
    ) -> ImagePipelineOutput | tuple:
        """Sample ``batch_size`` images at ``height`` x ``width`` (default: the training resolution).

        ``output_type``: ``"pil"`` (list of PIL images), ``"np"`` (``(B, H, W, C)`` in [0, 1]), ``"pt"``
        (``(B, C, H, W)`` in [0, 1]) or ``"latent"`` (the decoder latents). ``generator`` makes sampling
        deterministic. ``chunk_size`` caps the number of coordinates decoded at once (memory bound at any
        resolution). ``callback_on_step_end(pipe, i, t, {name: tensor})`` runs after every denoising step with the
        tensors named in ``callback_on_step_end_tensor_inputs`` (default ``["latents"]``) and returns them, maybe
        replaced; setting ``pipe._interrupt = True`` there stops denoising.

        ``shots=N`` decodes with every circuit expectation estimated from N measurement samples (drawn from
        ``generator``, its first one if a list), ``noise`` (a ``quantum.noise.NoiseModel``, dict or float) with noisy
        gates; ``None`` (default): exact expectations. See ``docs/research/hardware.md``.
        """
        # 1. check inputs
        height = self.prior.config.sample_size if height is None else height
        width = self.prior.config.sample_size if width is None else width
        check_generation_inputs(batch_size, height, width, num_inference_steps)
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"got {len(generator)} generators for batch_size {batch_size}")
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
        from PIL import Image

        from ..functa import prior_superresolve

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
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "QirenGenerationPipeline":
        """Load from a local folder or a Hub id; weights only as safetensors, never code from the folder.

        Raises ``OSError`` (folder missing, not a pipeline, Hub unreachable) or ``ValueError`` (missing or mismatched
        components) with one clear line.
        """

        pipe = safe_from_pretrained(cls, pretrained_model_name_or_path, COMPONENTS, **kwargs)
        folder = Path(pipe.config._name_or_path)
        card = folder / "README.md"
        if card.is_file():
            pipe.model_card_sections = parse_model_card_sections(card.read_text())
        return pipe

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True, **kwargs) -> None:
        """Save components (safetensors), ``model_index.json``, the diffusers entry module ``qiren_pipeline.py`` and a
        generated ``README.md`` model card (both ways to load)."""
        super().save_pretrained(save_directory, safe_serialization=safe_serialization, **kwargs)
        from .model_card import generate_model_card

        Path(save_directory, "README.md").write_text(
            generate_model_card(self, self.model_card_sections, self.model_card_location))

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        create_pr: bool = False,
        **kwargs,
    ) -> str:
        """Save to a temporary folder (weights, configs, model card) and upload it to ``repo_id``; returns the URL.

        Raises ``OSError`` with one line when the Hub cannot be reached (offline, no token, no network).
        """
        from huggingface_hub import create_repo, upload_folder

        try:
            repo_id = create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
            location, self.model_card_location = self.model_card_location, repo_id
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    self.save_pretrained(tmp)
                finally:
                    self.model_card_location = location
                info = upload_folder(repo_id=repo_id, folder_path=tmp, token=token, create_pr=create_pr,
                                     commit_message=commit_message or "Upload QirenGenerationPipeline")
        except Exception as exc:  # noqa: BLE001 - requests / huggingface_hub errors: one line for all
            raise OSError(f"cannot push to the Hugging Face Hub repo '{repo_id}' ({hub_error_reason(exc)}).") from None
        return str(info)


def parse_model_card_sections(text: str) -> dict[str, str]:
    """The ``## Training`` / ``## Quality`` sections of a model card, so a re-saved pipeline keeps them."""
    from .model_card import KEPT_SECTIONS

    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip() if line[3:].strip() in KEPT_SECTIONS else None
            if current:
                sections[current] = ""
            continue
        if current:
            sections[current] += line + "\n"
    return {k: v.strip() + "\n" for k, v in sections.items()}


BUNDLED_PIPELINE = "qiren-lfw-faces"
"""Name of the pretrained pipeline shipped in the repository's top-level ``pipelines/`` folder."""


def bundled_pipeline_dir() -> Path:
    """Folder of the bundled pretrained pipeline (LFW faces), loadable offline.

    It is ``qiren_gen/bundled/`` in an installed wheel (the build copies it there), else the checkout's top-level
    ``pipelines/`` (checkout, editable install).

    Returns:
        The folder holding ``model_index.json`` and the components.

    Raises:
        OSError: Neither location holds the pipeline.

    Examples:
        >>> from qiren_gen.pipelines import bundled_pipeline_dir
        >>> (bundled_pipeline_dir() / "model_index.json").is_file()
        True
    """
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "bundled" / BUNDLED_PIPELINE, package.parent / "pipelines" / BUNDLED_PIPELINE)
    for folder in candidates:
        if (folder / "model_index.json").is_file():
            return folder
    raise OSError(
        f"the bundled pipeline is in neither '{candidates[0]}' (installed wheel) nor '{candidates[1]}' (checkout); "
        "pass --pipeline DIR_OR_HUB_ID"
    )
