"""Random draws of the trainers, each from a seed derived from ``(seed, stage, rank, step)``, never from the state
the global generator happens to be in.

Why: a resumed run must draw exactly what an uninterrupted run drew (a resumed process builds one more DataLoader
iterator, skips work, loads checkpoints: all of that moves the global generator), and every rank must draw its own
noise, timesteps and dropout masks (seeding the global generator alike on every rank gives N copies of one rank's
noise). ``derive_seed`` mixes the four numbers with SHA-256, so nearby seeds, ranks and steps give unrelated
streams.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch

STAGE1 = 1
"""Stage 1: decoder, modulator and latent table."""
STAGE2 = 2
"""Stage 2: the latent diffusion prior."""
STAGE_FUNCTA = STAGE1
"""Former name of ``STAGE1``."""
STAGE_PRIOR = STAGE2
"""Former name of ``STAGE2``."""
INIT_STEP = -1
"""The ``step`` of draws made before the first training step (model and table initialisation)."""


def derive_seed(seed: int, stage: int, rank: int, step: int) -> int:
    """A 63-bit seed that depends on all of ``(seed, stage, rank, step)`` and on nothing else."""
    digest = hashlib.sha256(f"qiren-gen:{seed}:{stage}:{rank}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def step_generator(seed: int, stage: int, rank: int, step: int, device: torch.device | str = "cpu"
                   ) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with `derive_seed` (pass it to ``randn`` / ``randint``)."""
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(derive_seed(seed, stage, rank, step))
    return generator


@contextlib.contextmanager
def seeded_default_rng(seed: int, stage: int, rank: int, step: int,
                       device: torch.device | str = "cpu") -> Iterator[None]:
    """Within the block, the default generators (CPU, and ``device``'s when it is CUDA) start from
    `derive_seed`; afterwards they are back where they were.

    For draws that take no ``generator`` argument: module initialisation (``nn.Linear``) and dropout masks. The
    global generator's state outside the block is untouched, so nothing else shifts.
    """
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        value = derive_seed(seed, stage, rank, step)
        torch.manual_seed(value)  # seeds CPU and every CUDA device inside the fork
        yield


__all__ = ["INIT_STEP", "STAGE1", "STAGE2", "STAGE_FUNCTA", "STAGE_PRIOR", "derive_seed", "seeded_default_rng",
           "step_generator"]
