"""Bounds of the training scripts' numeric flags, checked before any folder is created.

A flag that fails only once training starts (``--learning_rate inf``, ``--max_grad_norm nan``) used to leave an
output folder behind that the next run then had to resume. Model-size flags share the bounds of loaded configs
(``models.config_checks.MODEL_BOUNDS``, derived there from memory); loop counts are capped far above any run.
"""
from __future__ import annotations

import argparse
import math

from ..models.config_checks import MODEL_BOUNDS, Bound

MAX_TRAINING_SEED = 2**32 - 1
"""Largest training seed: ``accelerate.utils.set_seed`` also seeds NumPy, whose legacy seed is 32-bit (the sampling
commands' ``runtime.values.MAX_SEED`` only seeds a ``torch.Generator``, which holds 64 bits)."""
_STEPS = Bound(1, 10**8)
_RATE = Bound(0, 100, open_low=True)

FLAG_BOUNDS: dict[str, Bound] = {
    "seed": Bound(0, MAX_TRAINING_SEED),
    "max_train_steps": _STEPS, "prior_max_train_steps": _STEPS, "checkpointing_steps": _STEPS,
    "prior_checkpointing_steps": _STEPS, "validation_steps": _STEPS, "logging_steps": _STEPS,
    "prior_lr_warmup_steps": Bound(0, 10**8), "checkpoints_total_limit": Bound(0, 10**6),
    "train_batch_size": Bound(1, 2**16), "prior_train_batch_size": Bound(1, 2**16),
    "validation_images": Bound(0, 10**5), "psnr_images": Bound(0, 10**5), "max_train_samples": Bound(1, 10**9),
    "shuffle_buffer_size": Bound(0, 10**7), "dataloader_num_workers": Bound(0, 256),
    "inner_steps": Bound(1, 10**5), "encode_steps": Bound(1, 10**5), "eval_encode_steps": Bound(1, 10**5),
    "latent_init_steps": Bound(1, 10**5),
    "latent_dim": MODEL_BOUNDS["latent_dim"], "n_qubits": MODEL_BOUNDS["n_qubits"],
    "hidden_layers": MODEL_BOUNDS["hidden_layers"], "modulator_hidden_layers": MODEL_BOUNDS["hidden_layers"],
    "n_reuploads": MODEL_BOUNDS["n_reuploads"], "n_blocks": MODEL_BOUNDS["n_blocks"],
    "hidden_features": MODEL_BOUNDS["hidden_features"], "n_heads": MODEL_BOUNDS["n_heads"],
    "n_fourier": MODEL_BOUNDS["n_fourier"], "prior_hidden_dim": MODEL_BOUNDS["hidden_dim"],
    "hidden_dim": MODEL_BOUNDS["hidden_dim"], "prior_num_blocks": MODEL_BOUNDS["num_blocks"],
    "num_blocks": MODEL_BOUNDS["num_blocks"], "time_embed_dim": MODEL_BOUNDS["time_embed_dim"],
    "learning_rate": _RATE, "prior_learning_rate": _RATE, "latent_learning_rate": _RATE,
    "max_grad_norm": Bound(0, 1e6), "weight_decay": Bound(0, 1e3), "latent_l2": Bound(0, 1e3),
    "frequency_init": MODEL_BOUNDS["frequency_init"], "fourier_scale": MODEL_BOUNDS["fourier_scale"],
    "inner_lr_init": MODEL_BOUNDS["inner_lr_init"], "prior_dropout": MODEL_BOUNDS["dropout"],
    "dropout": MODEL_BOUNDS["dropout"],
}
"""Bounds by flag name (the ``argparse`` destination); a flag not listed here is checked where it is used."""


def check_numeric_flags(args: argparse.Namespace) -> None:
    """``ValueError`` (one line naming the flag) for a listed numeric flag that is NaN, infinite or out of bounds;
    ``None`` (the flag's "not given") passes."""
    for name, bound in FLAG_BOUNDS.items():
        value = getattr(args, name, None)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{name} must be a finite number in {bound.describe()}, got {value}")
        if not bound.holds(value):
            raise ValueError(f"--{name} must be in {bound.describe()}, got {value}")


__all__ = ["FLAG_BOUNDS", "MAX_TRAINING_SEED", "check_numeric_flags"]
