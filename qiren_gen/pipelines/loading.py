"""Safe ``from_pretrained`` for the single-model pipelines: safetensors only, no code or foreign classes from a folder.

The same checks as ``QirenGenerationPipeline.from_pretrained`` (see ``generation.validate_pipeline_folder``), shared so
that no qiren-gen pipeline falls back to diffusers' defaults, which would unpickle ``*.bin`` weights.
"""
from __future__ import annotations

import os

from diffusers import DiffusionPipeline

from .generation import resolve_pipeline_folder, validate_pipeline_folder


def safe_from_pretrained(cls: type[DiffusionPipeline], name_or_path: str | os.PathLike, components: tuple[str, ...],
                         optional: tuple[str, ...] = (), **kwargs) -> DiffusionPipeline:
    """Load ``cls`` from a folder or Hub id after validating it; ``OSError`` / ``ValueError`` with one clear line.

    ``optional`` components may be saved as absent (``[null, null]``); every present one is validated.
    """
    for bad in ("custom_pipeline", "trust_remote_code", "custom_revision"):
        if kwargs.pop(bad, None):
            raise ValueError(f"{bad} is not supported: qiren-gen pipelines never run code from a folder")
    if kwargs.pop("use_safetensors", True) is False:
        raise ValueError("qiren-gen pipelines load weights only as safetensors")
    folder = resolve_pipeline_folder(name_or_path, **kwargs)
    validate_pipeline_folder(folder, cls.__name__, components, optional)
    for hub_only in ("revision", "token", "cache_dir", "local_files_only", "force_download"):
        kwargs.pop(hub_only, None)
    try:
        return super(cls, cls).from_pretrained(str(folder), use_safetensors=True, **kwargs)
    except (ValueError, OSError, KeyError, RuntimeError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.split(". If you want")[0].replace("Cannot load  because ", "")
        where = _failing_component(folder, components)
        where = f" (component '{where}': its config does not match its weights?)" if where else ""
        raise ValueError(f"cannot load the pipeline in '{folder}'{where}: {first}") from None


def _failing_component(folder, components: tuple[str, ...]) -> str | None:
    """Name of the first model component that fails to load on its own (for a clear error), or None."""
    import importlib
    import json

    index = json.loads((folder / "model_index.json").read_text())
    for comp in components:
        spec = index.get(comp)
        if comp == "scheduler" or not isinstance(spec, list) or None in spec:
            continue
        try:
            model_cls = getattr(importlib.import_module(spec[0]), spec[1])
            model_cls.from_pretrained(str(folder / comp), use_safetensors=True)
        except Exception:  # noqa: BLE001 - any failure identifies the culprit
            return comp
    return None


__all__ = ["safe_from_pretrained"]
