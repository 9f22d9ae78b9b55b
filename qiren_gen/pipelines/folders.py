"""Pipeline folders: find one (a local path or a Hub snapshot) and check it is safe and complete before loading.

Shared by every pipeline's ``from_pretrained`` through ``loading.safe_from_pretrained``.
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from ..runtime.errors import hub_error_reason
from .diffusers_entry import check_entry_module, pipeline_class_name

_ALLOWED_LIBRARIES = ("diffusers", "qiren_gen")


def _is_allowed_library(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in _ALLOWED_LIBRARIES)


def _names_a_class(library: str, name: str) -> bool:
    """Whether ``library`` (an allowed diffusers / qiren_gen module) defines a class ``name``."""
    try:
        module = importlib.import_module(library)
    except ImportError:
        return False
    return isinstance(getattr(module, name, None), type)


def resolve_pipeline_folder(name_or_path: str | os.PathLike, **hub_kwargs) -> Path:
    """A local pipeline folder for a folder path or a Hub id (downloading JSON/safetensors/README only).

    Raises ``OSError`` with one clear line when the folder is missing or the Hub cannot be reached (``HF_HUB_OFFLINE``
    is honoured by ``huggingface_hub``: offline, only an already cached snapshot is used).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise OSError(f"'{name_or_path}' is a file, not a pipeline folder")
    name = str(name_or_path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise OSError(f"no pipeline folder at '{name}' (and it is not a valid Hub id)") from None
    allowed = {k: v for k, v in hub_kwargs.items() if k in ("revision", "token", "cache_dir", "local_files_only")}
    try:
        folder = snapshot_download(
            name, allow_patterns=["*.json", "*.safetensors", "*.md"], **allowed
        )
    except Exception as exc:  # noqa: BLE001 - requests / huggingface_hub raise many types; one line for all
        raise OSError(
            f"cannot reach the Hugging Face Hub for '{name}' ({hub_error_reason(exc)}) and there is no local folder "
            f"'{name}'; pass a local folder, or go online with a Hub id that exists."
        ) from None
    return Path(folder)


def validate_pipeline_folder(folder: Path, class_name: str, components: tuple[str, ...],
                             optional: tuple[str, ...] = ()) -> dict:
    """Check ``folder`` is a safe, complete qiren-gen pipeline folder; returns its ``model_index.json``.

    Safe means: every component is a class of diffusers or qiren_gen (nothing imported from elsewhere), no Python
    file in the folder but the diffusers entry module (``qiren_pipeline.py``, checked to be a plain qiren-gen import
    and never executed), model weights as safetensors only. ``_class_name`` may be ``"Cls"`` or
    ``["qiren_pipeline", "Cls"]``.
    """
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise OSError(f"'{folder}' is not a pipeline folder (no model_index.json)")
    try:
        index = json.loads(index_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OSError(f"'{index_file}' is not valid JSON ({exc})") from None
    found = pipeline_class_name(index) if isinstance(index, dict) else None
    if found != class_name:
        held = found or (index.get("_class_name") if isinstance(index, dict) else None) or "?"
        raise ValueError(f"'{folder}' holds a {held}, not a {class_name}")
    check_entry_module(folder, class_name)
    missing = [c for c in components if c not in index and c not in optional]
    if missing:
        raise ValueError(f"pipeline '{folder}' is missing component(s): {', '.join(missing)}")
    for comp in components:
        spec = index.get(comp)
        if comp in optional and spec in (None, [None, None]):  # an optional component saved as absent
            continue
        if not (isinstance(spec, list) and len(spec) == 2 and all(isinstance(s, str) for s in spec)):
            raise ValueError(f"pipeline '{folder}': component '{comp}' is not a [library, class] pair: {spec!r}")
        if not _is_allowed_library(spec[0]):
            raise ValueError(f"pipeline '{folder}': component '{comp}' comes from '{spec[0]}'; only diffusers and "
                             "qiren_gen classes are loaded")
        if not _names_a_class(*spec):
            raise ValueError(f"pipeline '{folder}': component '{comp}' names an unknown class {spec[0]}.{spec[1]} "
                             "(made by a newer qiren-gen, or a damaged model_index.json)")
        sub = folder / comp
        if comp == "scheduler":
            if not (sub / "scheduler_config.json").is_file():
                raise ValueError(f"pipeline '{folder}' is missing scheduler/scheduler_config.json")
        elif not (sub / "config.json").is_file() or not any(sub.glob("*.safetensors")):
            raise ValueError(f"pipeline '{folder}' is missing {comp}/config.json or its safetensors weights")
    return index
