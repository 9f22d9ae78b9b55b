"""The stage-1 command-line options shared by ``scripts/train_functa.py`` and ``scripts/train_pipeline.py``,
and the ``FunctaTrainingConfig`` they parse to."""
from __future__ import annotations

import argparse
import dataclasses

from ..quantum.circuit import encoding_scales
from ..runtime.values import parse_encoding_scale
from .functa_config import DECODERS, FunctaTrainingConfig, canonical_decoder


def add_stage1_arguments(p: argparse.ArgumentParser) -> None:
    """The stage-1 options (data, model, encoding, training), shared with ``scripts/train_pipeline.py``."""
    defaults = FunctaTrainingConfig()
    data = p.add_argument_group("data")
    data.add_argument("--dataset_name", help="Hugging Face Hub dataset id (e.g. a FFHQ or CelebA-HQ copy)")
    data.add_argument("--train_data_dir", help="local image folder (loaded with the imagefolder builder)")
    data.add_argument("--split", default=defaults.split)
    data.add_argument("--image_column", default=defaults.image_column,
                      help="default: 'image', else the dataset's one image-typed column")
    data.add_argument("--streaming", action="store_true", help="stream the dataset instead of downloading it")
    data.add_argument("--shuffle_buffer_size", type=int, default=defaults.shuffle_buffer_size,
                      help="streamed data: images shuffled in a buffer of this many (0: stream order)")
    data.add_argument("--cache_dir")
    data.add_argument("--max_train_samples", type=int)
    data.add_argument("--resolution", type=int, default=defaults.resolution, help="resize + centre-crop size")
    data.add_argument("--channels", type=int, choices=(1, 3), default=defaults.channels, help="1 = gray, 3 = RGB")
    model = p.add_argument_group("model")
    model.add_argument("--decoder", type=canonical_decoder, choices=DECODERS, default=defaults.decoder,
                       help="decoder family (former names, qiren / siren and hyphenated ones such as "
                            "circuit-features, are read as the current ones)")
    model.add_argument("--modulation", choices=("shift", "film", "angles", "weight"), default=defaults.modulation,
                       help="angles: modulated_qiren and wide_qiren only; weight (StyleGAN2 modulated layers): "
                            "*_features only")
    model.add_argument("--latent_dim", type=int, default=defaults.latent_dim)
    model.add_argument("--n_qubits", type=int, default=defaults.n_qubits)
    model.add_argument("--hidden_layers", type=int, default=defaults.hidden_layers)
    model.add_argument("--n_reuploads", type=int, default=defaults.n_reuploads)
    model.add_argument("--n_blocks", type=int, default=defaults.n_blocks)
    model.add_argument("--hidden_features", type=int, default=defaults.hidden_features,
                       help="width of SIREN / of the synthesis layers")
    model.add_argument("--n_heads", type=int, default=defaults.n_heads, help="circuits side by side (circuit_features)")
    model.add_argument("--entangler", default=defaults.entangler, help="entangler of the feature circuits")
    model.add_argument("--frequency_init", type=float, default=defaults.frequency_init,
                       help="initial scale of the normalised circuit inputs (circuit_features)")
    model.add_argument("--encoding_scale", type=_encoding_scale, default=defaults.encoding_scale,
                       help="circuit_features: RZ scales per re-upload: a number, one per re-upload (1,3) or "
                            "ternary[:BASE] (BASE * 3**r at upload r); default: RZ(x) at every upload")
    model.add_argument("--n_fourier", type=int, default=defaults.n_fourier, help="frequencies (fourier_features)")
    model.add_argument("--fourier_scale", type=float, default=defaults.fourier_scale,
                       help="std of the random frequencies (fourier_features)")
    model.add_argument("--modulator_hidden_layers", type=int, default=defaults.modulator_hidden_layers)
    meta = p.add_argument_group("meta-learning")
    meta.add_argument("--inner_steps", type=int, default=defaults.inner_steps)
    meta.add_argument("--inner_lr_init", type=float, default=None)
    meta.add_argument("--first_order", action="store_true", help="first-order meta-gradients (fast engine)")
    meta.add_argument("--encoding", choices=("meta_sgd", "auto_decode"), default=defaults.encoding,
                      help="meta-learned inner loop, or per-image latents trained jointly with the decoder")
    meta.add_argument("--latent_learning_rate", type=float, default=defaults.latent_learning_rate,
                      help="Adam lr of auto-decoded latents (training and encoding)")
    meta.add_argument("--latent_l2", type=float, default=defaults.latent_l2, help="auto-decode: weight of ||z||^2")
    meta.add_argument("--encode_steps", type=int, default=defaults.encode_steps,
                      help="auto-decode: default Adam steps to encode a new image")
    meta.add_argument("--flip_augment", action="store_true", help="also train on mirror images (own latents)")
    train = p.add_argument_group("training")
    train.add_argument("--output_dir", default=defaults.output_dir)
    train.add_argument("--train_batch_size", type=int, default=defaults.train_batch_size, help="per process")
    train.add_argument("--max_train_steps", type=int, default=defaults.max_train_steps)
    train.add_argument("--learning_rate", type=float, default=defaults.learning_rate)
    train.add_argument("--max_grad_norm", type=float, default=defaults.max_grad_norm)
    train.add_argument("--weight_decay", type=float, default=defaults.weight_decay, help="decoder + modulator")
    train.add_argument("--checkpointing_steps", type=int, default=defaults.checkpointing_steps)
    train.add_argument("--checkpoints_total_limit", type=int, default=defaults.checkpoints_total_limit)
    train.add_argument("--resume_from_checkpoint", help='"latest" or a checkpoint folder')
    train.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=defaults.mixed_precision)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--logging_steps", type=int, default=defaults.logging_steps)
    train.add_argument("--dataloader_num_workers", type=int, default=defaults.dataloader_num_workers,
                       help="processes decoding images (0: in the training process)")
    train.add_argument("--synthesis_precision", choices=("auto", "fp32", "bf16"), default=defaults.synthesis_precision,
                       help="synthesis layers of circuit/fourier-feature decoders (circuits stay fp32); auto: bf16 "
                            "on CUDA")
    train.add_argument("--step_memory_budget_mb", type=int, default=defaults.step_memory_budget_mb,
                       help="auto_decode: MiB one activation of the widest layer may take in a step; larger grids "
                            "train in chunks of points with the same gradient")


def _encoding_scale(text: str):
    """``--encoding_scale`` as the circuits take it (``1,3`` -> ``[[1.0], [3.0]]``; presets checked here)."""
    try:
        value = parse_encoding_scale(text)
        if isinstance(value, str):
            encoding_scales(value, 1, 1)  # an unknown preset or a bad base fails now, not after loading the data
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("--encoding-scale", "--encoding_scale")) from None
    return value


def config_from_args(args: argparse.Namespace, **overrides):
    """The ``FunctaTrainingConfig`` of parsed stage-1 options (``overrides`` win)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(FunctaTrainingConfig) if hasattr(args, f.name)}
    return FunctaTrainingConfig(**{**values, **overrides})


__all__ = ["add_stage1_arguments", "config_from_args"]
