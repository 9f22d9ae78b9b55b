"""The configuration of a stage-1 run (decoder + modulator, and the latents of the training images), and the
freshly initialised models it describes."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.datasets import check_resolution
from ..models.modulated import ENCODINGS, LatentModulator
from ..models.registry import DECODER_ALIASES, DECODERS, build_decoder, canonical_decoder
from .field_alias import FieldAlias

MAX_LATENT_DIM = 65536
"""Largest latent size accepted (functa uses 64-1024); beyond it the modulator's weights alone exhaust memory."""


@dataclass
class FunctaTrainingConfig:
    """Everything a stage-1 training run needs; ``scripts/train_functa.py`` fills it from the command line.

    Each field is the same-named flag of ``scripts/train_functa.py`` (``--train_batch_size`` is ``train_batch_size``);
    the main ones:

    Args:
        output_dir: Folder of checkpoints, the trained ``decoder`` / ``modulator`` and ``train_summary.json``.
        dataset_name: A Hub dataset (or ``train_data_dir``: a local image folder).
        resolution: Side of the square training images.
        channels: 1 (grayscale) or 3 (RGB).
        decoder: One of ``DECODERS``: ``"modulated_qiren"``, ``"modulated_siren"``, ``"circuit_features"``,
            ``"fourier_features"``, ``"wide_qiren"`` (former names, ``"qiren"`` / ``"siren"`` and the hyphenated
            ``"circuit-features"`` ..., are read as the current ones).
        modulation: How latents act on the decoder.
        latent_dim: Numbers per image latent.
        encoding: ``"meta_sgd"`` (Functa's inner loop) or ``"auto_decode"`` (a latent table, DeepSDF-style).
        train_batch_size: Images per step (``batch_size``, the prior's spelling, is accepted too).
        max_train_steps: Optimiser steps.
        learning_rate: Adam learning rate of the decoder and modulator.
        seed: Seed of the initial weights and the data order.

    Examples:
        >>> from qiren_gen.training.functa_trainer import FunctaTrainingConfig
        >>> cfg = FunctaTrainingConfig(decoder="circuit_features", resolution=8, latent_dim=16)
        >>> cfg.validate()  # raises ValueError for settings that cannot train
        >>> FunctaTrainingConfig(decoder="qiren").decoder, FunctaTrainingConfig(decoder="wide-qiren").decoder
        ('modulated_qiren', 'wide_qiren')
    """

    output_dir: str = "functa-model"
    dataset_name: str | None = None
    train_data_dir: str | None = None
    split: str = "train"
    image_column: str | None = None
    streaming: bool = False
    shuffle_buffer_size: int = 1000
    cache_dir: str | None = None
    max_train_samples: int | None = None
    resolution: int = 16
    channels: int = 1
    decoder: str = "modulated_qiren"
    modulation: str = "shift"
    latent_dim: int = 32
    n_qubits: int = 8
    hidden_layers: int = 2
    n_reuploads: int = 2
    n_blocks: int = 2
    hidden_features: int = 16
    n_heads: int = 32
    entangler: str = "cnot_chain"
    n_fourier: int = 32
    fourier_scale: float = 6.0
    frequency_init: float = 1.0
    encoding_scale: float | list | str | None = None
    """circuit_features: per-re-upload RZ scales of the feature circuits (e.g. ``"ternary"``); None: ``RZ(x)``."""
    modulator_hidden_layers: int = 0
    inner_steps: int = 3
    inner_lr_init: float | None = None
    first_order: bool = False
    encoding: str = "meta_sgd"
    latent_learning_rate: float = 1e-2
    latent_l2: float = 1e-4
    encode_steps: int = 300
    flip_augment: bool = False
    weight_decay: float = 0.0
    train_batch_size: int = 16
    max_train_steps: int = 200
    learning_rate: float = 3e-3
    max_grad_norm: float | None = 1.0
    checkpointing_steps: int = 100
    checkpoints_total_limit: int | None = 2
    resume_from_checkpoint: str | None = None
    mixed_precision: str = "no"
    seed: int = 0
    logging_steps: int = 10
    dataloader_num_workers: int = 0
    table_eval_images: int | None = 64
    synthesis_precision: str = "auto"
    step_memory_budget_mb: int = 64
    """auto_decode: MiB one activation of the widest layer may take in a step; larger grids train in chunks of
    points with the same gradient."""

    batch_size = FieldAlias("train_batch_size")
    """``train_batch_size`` under the prior's name (``PriorTrainingConfig.batch_size``)."""

    def __setattr__(self, name: str, value) -> None:
        # The one place a decoder name enters the config (constructor or assignment): former spellings become current.
        super().__setattr__(name, canonical_decoder(value) if name == "decoder" else value)

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that cannot train."""
        check_resolution(self.resolution)
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        for name in ("latent_dim", "train_batch_size", "max_train_steps", "checkpointing_steps", "logging_steps",
                     "step_memory_budget_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.latent_dim > MAX_LATENT_DIM:
            raise ValueError(f"latent_dim must be <= {MAX_LATENT_DIM}, got {self.latent_dim}")
        if self.inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.dataloader_num_workers < 0 or self.shuffle_buffer_size < 0:
            raise ValueError("dataloader_num_workers and shuffle_buffer_size must be >= 0")
        if self.synthesis_precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"synthesis_precision must be auto, fp32 or bf16, got {self.synthesis_precision!r}")
        if not self.latent_learning_rate > 0 or not self.latent_l2 >= 0 or self.encode_steps < 1:
            raise ValueError("need latent_learning_rate > 0, latent_l2 >= 0 and encode_steps >= 1")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")


def build_models(cfg: FunctaTrainingConfig) -> tuple[torch.nn.Module, LatentModulator]:
    """Decoder and modulator for ``cfg``, freshly initialised (seed the RNG first for identical init on every process).

    Args:
        cfg: The run's configuration (decoder family and sizes).

    Returns:
        ``(decoder, modulator)``.

    Examples:
        >>> import torch
        >>> from qiren_gen.training.functa_trainer import FunctaTrainingConfig, build_models
        >>> _ = torch.manual_seed(0)
        >>> decoder, modulator = build_models(FunctaTrainingConfig(n_qubits=2, hidden_layers=1, latent_dim=4))
        >>> type(decoder).__name__, modulator.config.latent_dim
        ('ModulatedQIREN', 4)
    """
    decoder = build_decoder(cfg)
    # SIREN's omega_0 = 30 makes latent gradients ~30x larger than QIREN's, so its step sizes start smaller.
    lr_init = (cfg.inner_lr_init if cfg.inner_lr_init is not None
               else 0.01 if cfg.decoder == "modulated_siren" else 1.0)
    auto = cfg.encoding == "auto_decode"
    modulator = LatentModulator.for_decoder(
        decoder, cfg.latent_dim, hidden_layers=cfg.modulator_hidden_layers,
        inner_steps=cfg.encode_steps if auto else cfg.inner_steps, inner_lr_init=lr_init, encoding=cfg.encoding,
        encode_lr=cfg.latent_learning_rate, latent_l2=cfg.latent_l2,
    )
    return decoder, modulator


__all__ = ["DECODERS", "DECODER_ALIASES", "MAX_LATENT_DIM", "FunctaTrainingConfig", "build_decoder", "build_models",
           "canonical_decoder"]
