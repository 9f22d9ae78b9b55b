"""Stage 2: train the diffusion prior over normalised stage-1 latents (DDPM objective, Accelerate loop).

Pure pieces (the loss, the latent cache) are separate from the loop so tests and scripts can use them alone. The loop
runs unchanged under ``accelerate launch`` (one or many processes, CPU or GPU) and resumes from checkpoints.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from safetensors import safe_open
from safetensors.torch import load_file
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..functa import encode_images
from ..io.atomic import save_tensors, write_text
from ..models.denoiser import LatentDenoiser
from .checkpointing import (
    agreed_resume_checkpoint,
    check_compatible,
    load_checkpoint_state,
    read_training_state,
    save_checkpoint,
)
from .field_alias import FieldAlias
from .randomness import STAGE2, seeded_default_rng, step_generator
from .rank_failures import failure_shared_by_ranks
from .stopping import TrainingStopped, stop_on_signals


def make_training_scheduler(num_train_timesteps: int = 1000, prediction_type: str = "v_prediction") -> DDPMScheduler:
    """The DDPM noise schedule used for training: cosine betas, v-prediction by default.

    v-prediction because epsilon-prediction divides by ``sqrt(alpha_bar_t)`` to estimate the clean latent, which
    near ``t = T`` turns small noise errors into far-off samples (measured: ~20% outliers on a two-cluster toy).
    """
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=prediction_type,
        clip_sample=False,
    )


def diffusion_loss(
    denoiser: LatentDenoiser,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    timesteps: torch.Tensor | None = None,
) -> torch.Tensor:
    """DDPM loss on clean normalised latents ``x0 (B, D)``: MSE between the prediction and its target. ``noise``
    and ``timesteps`` are drawn from ``generator`` unless given (the training loop gives them, see
    `prior_batch`)."""
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    t = timesteps
    if t is None:
        t = torch.randint(
            0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator, device=x0.device
        )
    noisy = scheduler.add_noise(x0, noise, t)
    pred = denoiser(noisy, t).sample
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(x0, noise, t)
    elif kind == "sample":
        target = x0
    else:
        raise ValueError(f"unsupported prediction_type {kind!r}")
    return F.mse_loss(pred.float(), target.float())


# ---------------------------------------------------------------------------------------------------------------
# Latent cache: an encode pass over the dataset, stored as safetensors with a fingerprint of what produced it.


def fingerprint(*tensors_or_modules) -> str:
    """A short SHA-256 of tensors and module state dicts: identifies the data and weights a cache came from."""
    h = hashlib.sha256()
    for obj in tensors_or_modules:
        items = obj.state_dict().items() if isinstance(obj, torch.nn.Module) else [("t", obj)]
        for name, t in sorted(items, key=lambda kv: kv[0]):
            h.update(name.encode())
            h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def encode_dataset(
    decoder,
    modulator,
    images: torch.Tensor,
    cache_file: str | Path | None = None,
    batch_size: int = 32,
    steps: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Encode ``images (N, C, H, W)`` in [-1, 1] to latents ``(N, latent_dim)``, cached in ``cache_file``.

    A cache is reused only when its fingerprint (decoder, modulator, images, steps) matches, so a retrained stage 1
    never feeds stale latents to the prior.
    """
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"expected images (N, C, H, W), got {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    key = fingerprint(decoder, modulator, images) + f"-steps{steps}"
    if cache_file is not None and Path(cache_file).is_file():
        try:
            with safe_open(str(cache_file), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for a damaged file
            # Caches are written atomically, so an unreadable file is not one of ours: never overwrite it.
            raise ValueError(f"'{cache_file}' exists but is not a readable latents cache ({type(exc).__name__}); "
                             "delete it or pass another --latents_cache") from None
        if meta.get("fingerprint") == key:
            return load_file(str(cache_file))["latents"]
    chunks = []
    for start in tqdm(range(0, images.shape[0], batch_size), desc="stage 2: encode", disable=not progress):
        chunks.append(encode_images(decoder, modulator, images[start : start + batch_size], steps=steps).detach())
    latents = torch.cat(chunks).to("cpu", torch.float32).contiguous()
    if cache_file is not None:
        path = Path(cache_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(path, {"latents": latents}, metadata={"fingerprint": key})  # a crash leaves no half a cache
    return latents


# ---------------------------------------------------------------------------------------------------------------
# The training loop.


def prior_batch(data: torch.Tensor, batch_size: int, num_train_timesteps: int, seed: int, rank: int, step: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x0, noise, timesteps)`` of rank ``rank`` at step ``step``: rows of ``data`` drawn with replacement, and
    their noise and timesteps, all from one generator seeded by ``(seed, prior stage, rank, step)``. The same on a
    resumed run; independent across ranks."""
    generator = step_generator(seed, STAGE2, rank, step)  # CPU: the same numbers on any device
    rows = torch.randint(0, data.shape[0], (batch_size,), generator=generator)
    noise = torch.randn((batch_size, data.shape[1]), generator=generator, dtype=torch.float32)
    timesteps = torch.randint(0, num_train_timesteps, (batch_size,), generator=generator)
    device = data.device
    return data[rows.to(device)], noise.to(device, data.dtype), timesteps.to(device)


@dataclass
class PriorTrainingConfig:
    """Hyper-parameters of `train_prior` (saved next to checkpoints). The defaults are the recipe's:
    ``scripts/train_pipeline.py``'s ``--prior_*`` flags and ``scripts/train_prior.py``'s flags read them.

    Args:
        max_train_steps: Optimiser steps.
        batch_size: Latents per step (``train_batch_size``, the flags' name, reads and sets it too).
        learning_rate: AdamW learning rate (after warm-up).
        weight_decay: AdamW weight decay.
        lr_warmup_steps: Linear warm-up steps.
        checkpointing_steps: Steps between checkpoints.
        checkpoints_total_limit: Checkpoints kept (``None``: all).
        seed: Seed of the data order and noise.
        log_every: Steps between logged losses.

    Examples:
        >>> from qiren_gen.training.prior import PriorTrainingConfig
        >>> PriorTrainingConfig(max_train_steps=100).batch_size
        64
    """

    max_train_steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_warmup_steps: int = 50
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = 2
    seed: int = 0
    log_every: int = 50

    train_batch_size = FieldAlias("batch_size")
    """``batch_size`` under the flags' (and ``FunctaTrainingConfig``'s) name."""


PRIOR_MODEL_DEFAULTS = {"hidden_dim": 256, "num_blocks": 3, "time_embed_dim": 128, "dropout": 0.1}
"""The size of a new (scratch) prior, ``LatentDenoiser`` keyword arguments: the recipe's, read by both
``scripts/train_pipeline.py`` (``--prior_hidden_dim``, ...) and ``scripts/train_prior.py`` (``--hidden_dim``, ...)."""


def train_prior(
    denoiser: LatentDenoiser,
    latents: torch.Tensor,
    scheduler: DDPMScheduler,
    accelerator,
    output_dir: str | Path,
    config: PriorTrainingConfig | None = None,
    resume_from_checkpoint: str | None = None,
    on_log: Callable[[int, float], None] | None = None,
) -> dict:
    """Train ``denoiser`` on decoder latents with the DDPM objective.

    Sets the denoiser's latent statistics from ``latents`` (unless resuming, where they come with the checkpoint),
    checkpoints every ``checkpointing_steps`` atomically under ``output_dir/checkpoint-<step>``, and resumes from
    ``resume_from_checkpoint``. The unwrapped, trained denoiser is left in ``denoiser``.

    Args:
        denoiser: The `LatentDenoiser` to train.
        latents: ``(N, latent_dim)`` latents of the training images.
        scheduler: The training noise schedule (`make_training_scheduler`).
        accelerator: An ``accelerate.Accelerator`` (``qiren_gen.training.launch.make_accelerator``).
        output_dir: Folder of the checkpoints.
        config: Hyper-parameters (default `PriorTrainingConfig`).
        resume_from_checkpoint: ``"latest"`` or a checkpoint path.
        on_log: Called as ``on_log(step, loss)`` every ``log_every`` steps.

    Returns:
        ``{"losses": [...], "global_step": ...}``.

    Examples:
        >>> import torch
        >>> from qiren_gen.models import LatentDenoiser
        >>> from qiren_gen.training.launch import make_accelerator
        >>> from qiren_gen.training.prior import PriorTrainingConfig, make_training_scheduler, train_prior
        >>> denoiser = LatentDenoiser(latent_dim=4, hidden_dim=16, num_blocks=1, time_embed_dim=8)
        >>> config = PriorTrainingConfig(max_train_steps=3, batch_size=8, log_every=1, checkpointing_steps=3)
        >>> result = train_prior(denoiser, torch.randn(32, 4), make_training_scheduler(100), make_accelerator(),
        ...                      "prior-run", config)
        >>> result["global_step"]
        3
    """
    run = PriorTrainer(denoiser, latents, scheduler, accelerator, output_dir, config or PriorTrainingConfig(),
                       resume_from_checkpoint)
    losses = run.train(on_log)
    run.finish()
    return {"losses": losses, "global_step": run.global_step}


class PriorTrainer:
    """One run of `train_prior`: set-up and resume at construction, `training_step`, `train`,
    `finish`."""

    def __init__(self, denoiser: LatentDenoiser, latents: torch.Tensor, scheduler: DDPMScheduler, accelerator,
                 output_dir: str | Path, cfg: PriorTrainingConfig, resume_from_checkpoint: str | None) -> None:
        if cfg.max_train_steps < 1 or cfg.batch_size < 1 or cfg.learning_rate <= 0:
            raise ValueError("need max_train_steps >= 1, batch_size >= 1 and learning_rate > 0")
        if latents.ndim != 2 or latents.shape[1] != denoiser.config.latent_dim or latents.shape[0] < 2:
            raise ValueError(f"expected latents (N >= 2, {denoiser.config.latent_dim}), got {tuple(latents.shape)}")
        self.cfg, self.scheduler, self.accelerator, self.output_dir = cfg, scheduler, accelerator, Path(output_dir)
        self.model_config = {k: v for k, v in denoiser.config.items() if not k.startswith("_")}
        resume_path = agreed_resume_checkpoint(accelerator, self.output_dir, resume_from_checkpoint)
        if resume_path is None:
            denoiser.set_latent_statistics(latents)
        else:
            check_compatible(read_training_state(resume_path, cfg.max_train_steps).get("model_config", {}),
                             self.model_config, resume_path)
        optimizer = torch.optim.AdamW(denoiser.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        lr_scheduler = get_scheduler(
            "cosine", optimizer, num_warmup_steps=cfg.lr_warmup_steps * accelerator.num_processes,
            num_training_steps=cfg.max_train_steps * accelerator.num_processes,
        )
        self.model, self.optimizer, self.lr_scheduler = accelerator.prepare(denoiser, optimizer, lr_scheduler)
        self.global_step = 0
        if resume_path is not None:
            load_checkpoint_state(accelerator, resume_path)
            self.global_step = read_training_state(resume_path, cfg.max_train_steps)["step"]
            accelerator.print(f"stage 2: resumed from {resume_path} at step {self.global_step}")
        self.data = accelerator.unwrap_model(self.model).normalize(latents.to(accelerator.device, torch.float32))

    def training_step(self, step: int) -> torch.Tensor:
        """Step ``step`` of this rank: its batch, noise and timesteps, the loss, backward and AdamW; returns the loss.

        Every draw of step k on rank r (batch rows, noise, timesteps, dropout masks) comes from a seed derived from
        (seed, stage 2, r, k): a resumed run draws exactly what an uninterrupted one drew, and ranks draw
        independently of each other. Nothing here reads or moves the global generator."""
        cfg, accelerator = self.cfg, self.accelerator
        x0, noise, timesteps = prior_batch(self.data, cfg.batch_size, self.scheduler.config.num_train_timesteps,
                                           cfg.seed, accelerator.process_index, step)
        with accelerator.accumulate(self.model):
            with seeded_default_rng(cfg.seed, STAGE2, accelerator.process_index, step, self.data.device):
                loss = diffusion_loss(self.model, self.scheduler, x0, noise=noise, timesteps=timesteps)
            accelerator.backward(loss)
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss

    def train(self, on_log: Callable[[int, float], None] | None = None) -> list[float]:
        """Steps to ``max_train_steps``; each step's loss is averaged over ranks, logged every ``log_every`` steps
        and checkpointed when due. A SIGTERM / SIGINT: finish the step, checkpoint, stop (every rank)."""
        cfg, accelerator = self.cfg, self.accelerator
        losses: list[float] = []
        bar = tqdm(range(self.global_step, cfg.max_train_steps), initial=self.global_step, total=cfg.max_train_steps,
                   desc="stage 2", disable=not accelerator.is_local_main_process)
        self.model.train()
        with stop_on_signals() as stop_request:
            for step in bar:
                loss = self.training_step(step)
                self.global_step = step + 1
                pair = torch.tensor([loss.detach().float().item(), stop_request.flag], device=accelerator.device)
                gathered = accelerator.gather(pair.reshape(1, 2))
                value, stopping = gathered[:, 0].mean().item(), bool(gathered[:, 1].sum().item() > 0)
                if not math.isfinite(value):
                    raise FloatingPointError(f"stage 2 (prior) loss became {value} at step {self.global_step}; "
                                             "lower the learning rate")
                losses.append(value)
                if self.global_step % cfg.log_every == 0 or self.global_step == cfg.max_train_steps:
                    bar.set_postfix(loss=f"{sum(losses[-cfg.log_every:]) / len(losses[-cfg.log_every:]):.4f}")
                    if on_log is not None:
                        on_log(self.global_step, value)
                if (cfg.checkpointing_steps and self.global_step % cfg.checkpointing_steps == 0) or stopping:
                    saved = self.save_checkpoint()
                if stopping:
                    accelerator.print(f"stage 2: stopped by a signal at step {self.global_step}, after saving {saved}; "
                                      "continue with --resume_from_checkpoint latest")
                    raise TrainingStopped(f"stopped at step {self.global_step}, checkpoint saved in {saved}; continue "
                                          "with --resume_from_checkpoint latest")
        return losses

    def save_checkpoint(self) -> Path:
        """``output_dir/checkpoint-<step>`` with the denoiser's config and the hyper-parameters."""
        return save_checkpoint(self.accelerator, self.output_dir, self.global_step,
                               {"model_config": self.model_config, "training_config": asdict(self.cfg)},
                               total_limit=self.cfg.checkpoints_total_limit)

    def finish(self) -> None:
        """Evaluation mode, and ``output_dir/prior_training.json`` (the hyper-parameters and the final step)."""
        self.model.eval()
        self.accelerator.wait_for_everyone()
        with failure_shared_by_ranks(self.accelerator, f"the prior's training record to {self.output_dir}"):
            if self.accelerator.is_main_process:  # a failure here stops every rank, none waits for the main one
                self.output_dir.mkdir(parents=True, exist_ok=True)
                write_text(self.output_dir / "prior_training.json",
                           json.dumps({**asdict(self.cfg), "final_step": self.global_step}))


__all__ = ["PRIOR_MODEL_DEFAULTS", "PriorTrainer", "PriorTrainingConfig", "diffusion_loss", "encode_dataset",
           "fingerprint", "make_training_scheduler", "prior_batch", "train_prior"]
