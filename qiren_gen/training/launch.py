"""One ``Accelerator`` for every training loop: plain ``python`` or ``accelerate launch`` with any number of processes.

Several processes on a machine without CUDA must join with gloo (``cpu=True``); otherwise accelerate would treat them
as independent single-process runs all writing the same ``output_dir``.
"""
from __future__ import annotations

import logging
import os
import warnings

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from datasets.utils import logging as datasets_logging
from diffusers.utils import logging as diffusers_logging

logger = logging.getLogger(__name__)


def make_accelerator(mixed_precision: str = "no", seed: int = 0, log_with: str | None = None,
                     project_dir: str | None = None):
    """An ``Accelerator`` with seedable data order; checks that accelerate set up as many processes as launched."""

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if "MASTER_ADDR" in os.environ and "WORLD_SIZE" not in os.environ and "PMI_SIZE" not in os.environ:
        logger.warning(
            "accelerate launch --cpu --num_processes N>1 starts ONE process unless run under mpirun (accelerate 1.x); "
            "for N CPU processes use: accelerate launch --multi_gpu --num_processes N ... (works without CUDA)"
        )
    accelerator = Accelerator(
        cpu=world_size > 1 and not torch.cuda.is_available(),
        mixed_precision=mixed_precision,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=seed),
        log_with=log_with,
        project_dir=project_dir,
    )
    if accelerator.num_processes != world_size:
        raise RuntimeError(f"launched as {world_size} processes but accelerate set up {accelerator.num_processes}")
    if not accelerator.is_main_process:
        quiet_worker()
    return accelerator


def quiet_worker() -> None:
    """Warnings and library logs from the main process only: other ranks keep errors and drop the rest (N copies of
    one warning say nothing more than one)."""
    warnings.simplefilter("ignore")
    logging.getLogger("qiren_gen").setLevel(logging.ERROR)
    diffusers_logging.set_verbosity_error()
    datasets_logging.set_verbosity_error()


def synthesis_dtype(device: torch.device | str, precision: str = "auto",
                    bf16_supported: bool | None = None) -> torch.dtype | None:
    """The autocast dtype of a decoder's synthesis layers (its circuits always run in fp32): ``auto`` is bfloat16 on
    a CUDA device that supports it, else None (fp32); ``bf16`` forces it, ``fp32`` disables it."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if torch.device(device).type != "cuda":
        return None
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else None


__all__ = ["make_accelerator", "quiet_worker", "synthesis_dtype"]
