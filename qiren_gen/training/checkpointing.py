"""Atomic Accelerate checkpoints and ``--resume_from_checkpoint latest|PATH`` resolution.

A checkpoint is ``output_dir/checkpoint-<step>``: ``accelerator.save_state`` (registered models, optimizer,
scheduler, every process's RNG states) plus ``training_state.json`` (step, epoch position, the run's config). It is
written into a temporary sibling folder and renamed into place only when complete, so a kill at any moment leaves
either the previous checkpoints or the new one, never a half-written folder that ``latest`` would pick up. A write
that fails on any one process (a full disk) stops every process with the same line, none left waiting for it
(``rank_failures``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate.utils import broadcast_object_list
from safetensors.torch import load_file, save_file

from ..models.synthesis import FEATURE_ALIASES
from .rank_failures import failure_shared_by_ranks

STATE_FILE = "training_state.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest (lowest step) first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _CHECKPOINT_RE.match(path.name)
        if match and path.is_dir() and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found)]


def resolve_resume_checkpoint(output_dir: str | os.PathLike, resume_from_checkpoint: str | None) -> Path | None:
    """``None`` -> no resume; ``"latest"`` -> newest complete checkpoint or ``None``; a path -> that checkpoint.

    Raises ``OSError`` for a path that is not a complete checkpoint.
    """
    if not resume_from_checkpoint:
        return None
    if resume_from_checkpoint == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume_from_checkpoint)
    if not path.is_dir() and (Path(output_dir) / path).is_dir():
        path = Path(output_dir) / path
    if not (path / STATE_FILE).is_file():
        raise OSError(f"not a complete checkpoint (no {STATE_FILE}): {resume_from_checkpoint}")
    return path


def agreed_resume_checkpoint(accelerator, output_dir: str | os.PathLike,
                             resume_from_checkpoint: str | None) -> Path | None:
    """`resolve_resume_checkpoint` on the main process, broadcast to every rank: all ranks resume from the
    checkpoint the main one chose (other machines' disks may lag behind, or not hold ``output_dir`` at all). A
    refusal is raised on every rank alike, so none waits for the others forever."""
    if accelerator.num_processes == 1:
        return resolve_resume_checkpoint(output_dir, resume_from_checkpoint)
    answer: list = [None, None]
    if accelerator.is_main_process:
        try:
            found = resolve_resume_checkpoint(output_dir, resume_from_checkpoint)
            answer = [None if found is None else str(found), None]
        except OSError as exc:
            answer = [None, str(exc)]
    broadcast_object_list(answer, from_process=0)
    if answer[1] is not None:
        raise OSError(answer[1])
    return None if answer[0] is None else Path(answer[0])


def read_training_state(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The ``training_state.json`` of a checkpoint."""
    return json.loads((Path(checkpoint) / STATE_FILE).read_text())


def check_compatible(saved: dict[str, Any], current: dict[str, Any], checkpoint: str | os.PathLike) -> None:
    """Raise ``ValueError`` naming the first differing key when a checkpoint's model config differs from this run's.

    Config values renamed since the checkpoint was made (``features: "quantum"``, now ``"circuit"``) compare under
    their current names, so such checkpoints still resume.
    """
    saved = _with_current_names(saved)
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise ValueError(
                f"checkpoint {checkpoint} was made with a different configuration: {key}={saved.get(key)!r} there, "
                f"{current.get(key)!r} here"
            )


def _with_current_names(signature: dict[str, Any]) -> dict[str, Any]:
    decoder = signature.get("decoder")
    if isinstance(decoder, dict) and decoder.get("features") in FEATURE_ALIASES:
        signature = {**signature, "decoder": {**decoder, "features": FEATURE_ALIASES[decoder["features"]]}}
    return signature


def save_checkpoint(
    accelerator,
    output_dir: str | os.PathLike,
    step: int,
    state: dict[str, Any],
    total_limit: int | None = None,
    models: dict[str, Any] | None = None,
) -> Path:
    """Save ``accelerator`` state + ``state`` atomically as ``output_dir/checkpoint-<step>``; all processes call it.

    ``models`` (name -> module) not prepared by Accelerate are written as ``<name>.safetensors`` (read back with
    `load_checkpoint_models`), so model weights in a checkpoint are never pickles. Keeps at most
    ``total_limit`` checkpoints (oldest removed after the new one is in place).
    """
    root = Path(output_dir)
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    what, kept = f"checkpoint {step} to {root}", "the earlier checkpoints are intact"

    def discard() -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    # Each part ends with every rank learning whether any rank failed (no rank is left waiting in a barrier), and
    # the exchange that ends it orders the parts: the folder exists before any rank writes into it, every rank's
    # files are in it before the main process publishes it.
    with failure_shared_by_ranks(accelerator, what, discard, kept):
        if accelerator.is_main_process:
            root.mkdir(parents=True, exist_ok=True)
            discard()
            tmp.mkdir()
    with failure_shared_by_ranks(accelerator, what, discard, kept):
        tmp.mkdir(parents=True, exist_ok=True)  # whoever writes creates: another machine may not share output_dir
        accelerator.save_state(str(tmp))
    with failure_shared_by_ranks(accelerator, what, discard, kept):
        if accelerator.is_main_process:
            _publish_checkpoint(tmp, final, step, state, models)
    if accelerator.is_main_process:
        if total_limit is not None and total_limit > 0:
            for old in list_checkpoints(root)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _publish_checkpoint(tmp: Path, final: Path, step: int, state: dict[str, Any],
                        models: dict[str, Any] | None) -> None:
    """The main process's part of ``save_checkpoint``: the models and the marker file, then the rename that
    publishes ``final``."""
    if models:
        for name, model in models.items():
            tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
            save_file(tensors, str(tmp / f"{name}.safetensors"))
    payload = json.dumps({"step": step, **state}, indent=2, sort_keys=True)
    (tmp / STATE_FILE).write_text(payload)
    with open(tmp / STATE_FILE, "rb+") as handle:  # flush the marker file before the rename publishes it
        os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def load_checkpoint_models(checkpoint: str | os.PathLike, models: dict[str, Any]) -> None:
    """Load the ``<name>.safetensors`` written by `save_checkpoint` into each module (strict)."""
    for name, model in models.items():
        path = Path(checkpoint) / f"{name}.safetensors"
        if not path.is_file():
            raise OSError(f"checkpoint {checkpoint} has no {name}.safetensors (made by an older qiren-gen?)")
        device = next(iter(model.state_dict().values())).device
        model.load_state_dict(load_file(str(path), device=str(device)))


__all__ = [
    "agreed_resume_checkpoint",
    "load_checkpoint_models",
    "STATE_FILE",
    "check_compatible",
    "list_checkpoints",
    "read_training_state",
    "resolve_resume_checkpoint",
    "save_checkpoint",
]
