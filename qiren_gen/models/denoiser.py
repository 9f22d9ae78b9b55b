"""Latent denoiser: the diffusion prior over normalised stage-1 latents (a residual MLP with a timestep embedding).

It also keeps the per-dimension mean and std of the training latents (persistent buffers, saved with the weights),
so the prior works in a unit-variance space and hands back latents in the decoder's own scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from .config_checks import check_whole_numbers


@dataclass
class LatentDenoiserOutput(BaseOutput):
    """Output of `LatentDenoiser`: the prediction (noise or velocity, as the scheduler's ``prediction_type``
    says), shape ``(B, latent_dim)``."""

    sample: torch.Tensor


class _ResidualBlock(nn.Module):
    """``x + Linear(SiLU(Linear(LN(x)) + t_emb))``; the last Linear starts at zero so every block starts as identity."""

    def __init__(self, width: int, time_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.time = nn.Linear(time_dim, width)
        self.act = nn.SiLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(self.norm(x)) + self.time(t_emb))
        return x + self.fc2(self.drop(h))


class LatentDenoiser(ModelMixin, ConfigMixin):
    """Residual-MLP denoiser ``(noisy latents (B, D), timesteps (B,)) -> prediction (B, D)``.

    What it predicts (noise, velocity) is set by the scheduler it is trained with (``prediction_type``).

    ``sample_size`` is the (square) resolution the latents were encoded from: the pipeline's default render size.
    ``latent_mean`` / ``latent_std`` buffers map decoder latents to the prior's normalised space and back.
    """

    # register_to_config signature (a config.json key per argument): the prior's sizes and training resolution
    @register_to_config
    def __init__(
        self,
        latent_dim: int = 64,
        hidden_dim: int = 256,
        num_blocks: int = 4,
        time_embed_dim: int = 128,
        dropout: float = 0.0,
        sample_size: int = 32,
    ) -> None:
        super().__init__()
        check_whole_numbers(self.config, latent_dim=1, hidden_dim=1, num_blocks=0, time_embed_dim=2, sample_size=1)
        if time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be even (half sines, half cosines), got {time_embed_dim}")
        self.time_proj = Timesteps(time_embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(time_embed_dim, time_embed_dim)
        self.input = nn.Linear(latent_dim, hidden_dim)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden_dim, time_embed_dim, dropout) for _ in range(num_blocks))
        self.out_norm = nn.LayerNorm(hidden_dim)
        self.output = nn.Linear(hidden_dim, latent_dim)
        self.register_buffer("latent_mean", torch.zeros(latent_dim))
        self.register_buffer("latent_std", torch.ones(latent_dim))

    @torch.no_grad()
    def set_latent_statistics(self, latents: torch.Tensor, eps: float = 1e-6) -> None:
        """Store the per-dimension mean / std of training latents ``(N, latent_dim)`` for (de)normalisation."""
        if latents.ndim != 2 or latents.shape[1] != self.config.latent_dim or latents.shape[0] < 2:
            raise ValueError(f"expected latents (N >= 2, {self.config.latent_dim}), got {tuple(latents.shape)}")
        lat = latents.to(self.latent_mean.device, torch.float32)
        self.latent_mean.copy_(lat.mean(0))
        self.latent_std.copy_(lat.std(0).clamp_min(eps))

    def normalize(self, latents: torch.Tensor) -> torch.Tensor:
        """Decoder latents -> the prior's zero-mean, unit-variance space."""
        return (latents - self.latent_mean.to(latents)) / self.latent_std.to(latents)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The prior's normalised space -> decoder latents."""
        return x * self.latent_std.to(x) + self.latent_mean.to(x)

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor | float | int, return_dict: bool = True
    ) -> LatentDenoiserOutput | tuple[torch.Tensor]:
        """Predict the noise in ``sample`` ``(B, latent_dim)`` at ``timestep`` (scalar or ``(B,)``)."""
        if sample.ndim != 2 or sample.shape[1] != self.config.latent_dim:
            raise ValueError(f"expected sample (B, {self.config.latent_dim}), got {tuple(sample.shape)}")
        t = torch.as_tensor(timestep, device=sample.device)
        if t.ndim == 0:
            t = t.expand(sample.shape[0])
        if t.shape != (sample.shape[0],):
            raise ValueError(f"expected timestep scalar or ({sample.shape[0]},), got {tuple(t.shape)}")
        t_emb = self.time_embedding(self.time_proj(t).to(sample.dtype))
        h = self.input(sample)
        for block in self.blocks:
            h = block(h, t_emb)
        out = self.output(self.out_norm(h))
        if not return_dict:
            return (out,)
        return LatentDenoiserOutput(sample=out)
