"""Pipeline folders: find one (the bundled one, a local path or a Hub snapshot) and check it is safe and complete
before loading.

Shared by every pipeline's ``from_pretrained`` through ``loading.safe_from_pretrained``.
"""
from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.utils import HFValidationError, validate_repo_id

from ..runtime.errors import hub_error_reason
from ..runtime.json_files import read_json_file
from .component_classes import component_class
from .diffusers_entry import check_entry_module, pipeline_class_name

BUNDLED_PIPELINE = "qiren-lfw-faces"
"""Name of the pretrained pipeline shipped in the repository's top-level ``pipelines/`` folder."""


def bundled_pipeline_dir() -> Path:
    """Folder of the bundled pretrained pipeline (LFW faces), loadable offline.

    It is ``qiren_gen/bundled/`` in an installed wheel (the build copies it there), else the checkout's top-level
    ``pipelines/`` (checkout, editable install).

    Returns:
        The folder holding ``model_index.json`` and the components.

    Raises:
        OSError: Neither location holds the pipeline.

    Examples:
        >>> from qiren_gen.pipelines import bundled_pipeline_dir
        >>> (bundled_pipeline_dir() / "model_index.json").is_file()
        True
    """
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "bundled" / BUNDLED_PIPELINE, package.parent / "pipelines" / BUNDLED_PIPELINE)
    for folder in candidates:
        if (folder / "model_index.json").is_file():
            return folder
    raise OSError(
        f"the bundled pipeline is in neither '{candidates[0]}' (installed wheel) nor '{candidates[1]}' (checkout); "
        "pass --pipeline DIR_OR_HUB_ID"
    )


def _check_inside(folder: Path, path: Path) -> None:
    """``ValueError`` unless ``path`` (a file the loader reads) resolves inside ``folder``; in a Hugging Face cache
    entry (``models--<owner>--<name>/snapshots/<rev>``, beside its ``blobs``), a snapshot's links into that entry's
    own ``blobs`` count as inside. A folder merely named ``snapshots`` elsewhere gets no such allowance."""
    root = folder.resolve()
    target = path.resolve()
    entry = root.parent.parent
    if (root.parent.name == "snapshots" and entry.name.startswith(("models--", "datasets--"))
            and (entry / "blobs").is_dir() and (entry / "blobs") in target.parents):
        return
    if target != root and root not in target.parents:
        raise ValueError(f"refusing to load '{folder}': {path.relative_to(folder)} links outside the folder")


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

    Safe means: every component names a class of the fixed table in ``component_classes`` (nothing is imported
    because the folder names it), no Python file in the folder but the diffusers entry module
    (``qiren_pipeline.py``, checked to be the one plain qiren-gen import line and never executed), config files
    within the size and nesting caps, no file linking outside the folder, model weights as safetensors only.
    ``_class_name`` may be ``"Cls"`` or ``["qiren_pipeline", "Cls"]``.
    """
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise OSError(f"'{folder}' is not a pipeline folder (no model_index.json)")
    _check_inside(folder, index_file)
    index = read_json_file(index_file, f"'{index_file}'")
    found = pipeline_class_name(index)
    if found != class_name:
        held = found or index.get("_class_name") or "?"
        raise ValueError(f"'{folder}' holds a {str(held)[:80]}, not a {class_name}")
    check_entry_module(folder, class_name)
    missing = [c for c in components if c not in index and c not in optional]
    if missing:
        raise ValueError(f"pipeline '{folder}' is missing component(s): {', '.join(missing)}")
    for comp in components:
        spec = index.get(comp)
        if comp in optional and spec in (None, [None, None]):  # an optional component saved as absent
            continue
        component_class(spec, comp, f"pipeline '{folder}'")
        sub = folder / comp
        if comp == "scheduler":
            if not (sub / "scheduler_config.json").is_file():
                raise ValueError(f"pipeline '{folder}' is missing scheduler/scheduler_config.json")
        elif not (sub / "config.json").is_file() or not any(sub.glob("*.safetensors")):
            raise ValueError(f"pipeline '{folder}' is missing {comp}/config.json or its safetensors weights")
        for path in sub.rglob("*"):
            if path.suffix in (".json", ".safetensors"):
                _check_inside(folder, path)
    return index
