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

import torch
from accelerate.utils import broadcast_object_list
from accelerate.utils.other import TORCH_SAFE_GLOBALS  # numpy's RNG arrays, as Accelerate itself allows them

from ..io import BadInputFile, Int, quoted, read_json_state, read_torch_file, read_weights
from ..io.atomic import save_tensors, write_text
from ..models.synthesis import FEATURE_ALIASES
from ..runtime.errors import one_line
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


_MAX_POSITION = 2**62  # epochs and batches within one: any count a run can reach


def read_training_state(checkpoint: str | os.PathLike, max_step: int | None = None,
                        position: bool = False) -> dict[str, Any]:
    """The ``training_state.json`` of a checkpoint, read by the checked reader: ``step`` a whole number in
    ``[0, max_step]`` (the run's ``max_train_steps``), the data position (``epoch``, ``batch_in_epoch``; required
    with ``position``) whole numbers >= 0; anything else (``-100``, ``"x"``) is one `BadInputFile` line naming the
    file."""
    schema = {"step": Int(0, _MAX_POSITION if max_step is None else max_step),
              "epoch": Int(0, _MAX_POSITION, required=position),
              "batch_in_epoch": Int(0, _MAX_POSITION, required=position)}
    return read_json_state(Path(checkpoint) / STATE_FILE, schema)


_CUSTOM_RE = re.compile(r"^custom_checkpoint_\d+\.pkl$")
_RNG_RE = re.compile(r"^random_states_\d+\.pkl$")


def check_checkpoint_files(checkpoint: str | os.PathLike, registered_objects: int = 0) -> None:
    """Read every file of a checkpoint through the checked readers before Accelerate loads it: weights
    (``*.safetensors``: whole, finite), optimizer / scheduler / sampler states (``*.bin``) and RNG states
    (``random_states_*.pkl``) only by ``torch.load(weights_only=True)``. Accelerate unpickles a
    ``custom_checkpoint_*.pkl`` without that restriction, so one the run did not register is refused unread. Every
    refusal is one `BadInputFile` line naming the file; nothing in the checkpoint runs."""
    root = Path(checkpoint)
    customs = sorted(p for p in root.iterdir() if _CUSTOM_RE.match(p.name))
    if len(customs) > registered_objects:
        raise BadInputFile(f"{quoted(customs[registered_objects])} is not part of this run's checkpoints (the run "
                           f"registers {registered_objects} custom object(s)); a pickle there is never loaded")
    for path in sorted(root.iterdir()):
        if path.suffix == ".safetensors":
            read_weights(path)
        elif path.suffix == ".bin" or _CUSTOM_RE.match(path.name):
            read_torch_file(path)
        elif _RNG_RE.match(path.name):
            with torch.serialization.safe_globals(TORCH_SAFE_GLOBALS):
                read_torch_file(path)


def load_checkpoint_state(accelerator, checkpoint: str | os.PathLike) -> None:
    """``accelerator.load_state(checkpoint)`` after `check_checkpoint_files`; a state that does not fit this run's
    optimizer or scheduler is one `BadInputFile` line naming the checkpoint."""
    check_checkpoint_files(checkpoint, len(getattr(accelerator, "_custom_objects", ())))
    try:
        accelerator.load_state(str(checkpoint))
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise BadInputFile(f"checkpoint {quoted(checkpoint)} does not fit this run: {one_line(exc, 200)}") from None


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
            save_tensors(tmp / f"{name}.safetensors", tensors)
    payload = json.dumps({"step": step, **state}, indent=2, sort_keys=True)
    write_text(tmp / STATE_FILE, payload)  # flushed before the rename publishes it
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
        state = read_weights(path)  # whole and finite, or one line naming the file
        try:
            model.load_state_dict({k: v.to(device) for k, v in state.items()})
        except (RuntimeError, ValueError) as exc:
            raise BadInputFile(f"{quoted(path)} does not fit this run's {name}: {one_line(exc, 200)}") from None


__all__ = [
    "agreed_resume_checkpoint",
    "check_checkpoint_files",
    "load_checkpoint_state",
    "load_checkpoint_models",
    "STATE_FILE",
    "check_compatible",
    "list_checkpoints",
    "read_training_state",
    "resolve_resume_checkpoint",
    "save_checkpoint",
]
