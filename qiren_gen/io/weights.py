"""The one checked reader for weights files: a full sha256 digest where one is known, and never a pickle that runs.

safetensors files are read by ``safetensors``; PyTorch files (``.pt``, ``.pth``, ``.bin``) only by
``torch.load(weights_only=True)``, whose unpickler builds tensors and plain containers and refuses every other
class, so nothing in the file runs. Every refusal is one `BadInputFile` line naming the file; torch's
advice to retry with the unrestricted unpickler is never passed on.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

from safetensors import SafetensorError

from .errors import BadInputFile, quoted

SAFETENSORS_SUFFIXES = (".safetensors",)
_ZIP_MAGIC = b"PK\x03\x04"


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """The full sha256 hex digest of a file, read in blocks (memory stays at ``block`` bytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(path: str | os.PathLike, sha256: str, size: int | None = None, what: str | None = None) -> None:
    """``BadInputFile`` unless the file is ``size`` bytes (when given: checked first, for free) and its whole
    sha256 digest is ``sha256``: every one of the 64 hex digits, not a prefix."""
    what = what or quoted(path)
    if len(sha256) != 64:
        raise ValueError(f"a full sha256 digest has 64 hex digits, got {len(sha256)}")
    try:
        actual_size = os.stat(path).st_size
        if size is not None and actual_size != size:
            raise BadInputFile(f"{what} is {actual_size} bytes, not the {size} bytes of the expected file")
        actual = file_sha256(path)
    except OSError as exc:
        raise BadInputFile(f"cannot read {what}: {exc.strerror or type(exc).__name__}") from None
    if actual != sha256.lower():
        raise BadInputFile(f"{what} is not the expected file: its sha256 is {actual}, expected {sha256.lower()}")


def _is_safetensors(path: Path) -> bool:
    return path.suffix.lower() in SAFETENSORS_SUFFIXES


def _load_safetensors(path: Path, what: str) -> dict:
    from safetensors.torch import load_file  # noqa: PLC0415 (torch: qiren_gen.io stays torch-free)

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise BadInputFile(f"{what} is not a readable safetensors file ({reason[:200]})") from None


def _load_torch(path: Path, what: str) -> object:
    import torch  # noqa: PLC0415 (torch: qiren_gen.io stays torch-free)

    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise BadInputFile(f"cannot read {what}: {exc.strerror or type(exc).__name__}") from None
    if not magic:
        raise BadInputFile(f"{what} is empty (0 bytes): not a weights file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=magic == _ZIP_MAGIC)
    except pickle.UnpicklingError as exc:
        # torch's message names the refused global and suggests the unrestricted unpickler: only the first is passed on
        first = " ".join(str(exc).split("Check the documentation")[0].split())
        refused = first.split("WeightsUnpickler error:")[-1].strip() if "WeightsUnpickler" in first else ""
        raise BadInputFile(f"{what} holds a pickle that is not plain tensors ({refused[:160] or 'refused'}); "
                           "weights are loaded without running pickled code, so it is refused") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError, IndexError) as exc:
        reason = " ".join(str(exc).split("Check the documentation")[0].split()) or type(exc).__name__
        raise BadInputFile(f"{what} is not a readable PyTorch weights file ({type(exc).__name__}: "
                           f"{reason[:160]})") from None


def read_torch_file(path: str | os.PathLike, what: str | None = None) -> object:
    """Whatever plain value a PyTorch file holds (tensors in dicts, lists, numbers: an optimizer's state, a custom
    checkpoint object saved as plain data), loaded by ``torch.load(weights_only=True)``; one
    `BadInputFile` line naming the file when it is missing, empty, damaged or a pickle of anything
    else (which is never run)."""
    path = Path(path)
    what = what or quoted(path)
    if not path.is_file():
        raise BadInputFile(f"{what}: no such file" if not path.exists() else f"{what} is not a file")
    return _load_torch(path, what)


def read_weights(path: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
                 what: str | None = None, require_finite: bool = True) -> dict:
    """The ``{name: tensor}`` state dict in a weights file, checked.

    ``sha256`` (and ``size``): the file's full digest (and length) when it is known, checked before anything is
    parsed. ``*.safetensors`` is read by safetensors, anything else by ``torch.load(weights_only=True)``; the result
    must be a mapping of names to tensors, every value finite when ``require_finite``. One
    `BadInputFile` line naming the file for every refusal.
    """
    import torch  # noqa: PLC0415 (torch: qiren_gen.io stays torch-free)

    path = Path(path)
    what = what or quoted(path)
    if not path.is_file():
        raise BadInputFile(f"{what}: no such file" if not path.exists() else f"{what} is not a file")
    if sha256 is not None:
        check_digest(path, sha256, size, what)
    state = _load_safetensors(path, what) if _is_safetensors(path) else _load_torch(path, what)
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise BadInputFile(f"{what} does not hold a state dict (names mapped to tensors) but a "
                           f"{type(state).__name__}")
    if require_finite:
        for name, tensor in state.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise BadInputFile(f"{what}: tensor {quoted(name)} holds NaN or infinite values (a damaged or "
                                   "diverged file)")
    return dict(state)


__all__ = ["check_digest", "file_sha256", "read_torch_file", "read_weights"]
