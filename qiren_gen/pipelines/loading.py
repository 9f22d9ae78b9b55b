"""Safe ``from_pretrained`` for every qiren-gen pipeline: safetensors only, no code or foreign classes from a folder.

The folder is checked first (``folders.validate_pipeline_folder``); then each component class is resolved from the
installed diffusers / qiren_gen packages and loaded from its sub-folder, and the pipeline is built from them. Nothing
in the folder is imported or unpickled: diffusers' own loader is not used, because for a folder carrying the diffusers
entry module (``qiren_pipeline.py``) it would import that file.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from diffusers import DiffusionPipeline
from diffusers.models.modeling_utils import ModelMixin
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from .folders import resolve_pipeline_folder, validate_pipeline_folder

_HUB_ONLY = ("revision", "token", "cache_dir", "local_files_only", "force_download")
_LOAD_ERRORS = (ValueError, OSError, KeyError, RuntimeError, AttributeError, TypeError)


def _first_line(exc: BaseException) -> str:
    """The useful part of a loading error: its first line, without diffusers' boilerplate."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first.split(". If you want")[0].replace("Cannot load  because ", "")


def _component_class(spec: list[str], name: str) -> type:
    """The class ``[library, class]`` names, from the installed package; only models and schedulers."""
    try:
        klass = getattr(importlib.import_module(spec[0]), spec[1], None)
    except ImportError:
        klass = None
    if not (isinstance(klass, type) and issubclass(klass, (ModelMixin, SchedulerMixin))):
        raise ValueError(f"component '{name}' names {spec[0]}.{spec[1]}, which is not a model or scheduler class "
                         "of the installed diffusers / qiren_gen")
    return klass


def _load_component(folder: Path, name: str, spec: list[str], torch_dtype) -> object:
    klass = _component_class(spec, name)
    if issubclass(klass, SchedulerMixin):
        return klass.from_pretrained(folder, subfolder=name)
    extra = {} if torch_dtype is None else {"torch_dtype": torch_dtype}
    return klass.from_pretrained(folder / name, use_safetensors=True, **extra)


def safe_from_pretrained(cls: type[DiffusionPipeline], name_or_path: str | os.PathLike, components: tuple[str, ...],
                         optional: tuple[str, ...] = (), **kwargs) -> DiffusionPipeline:
    """Load ``cls`` from a folder or Hub id after validating it; ``OSError`` / ``ValueError`` with one clear line.

    ``optional`` components may be saved as absent (``[null, null]``); every present one is validated. Components
    given as keyword arguments are used instead of the saved ones; ``torch_dtype`` casts the loaded models.
    """
    for bad in ("custom_pipeline", "trust_remote_code", "custom_revision"):
        if kwargs.pop(bad, None):
            raise ValueError(f"{bad} is not supported: qiren-gen pipelines never run code from a folder")
    if kwargs.pop("use_safetensors", True) is False:
        raise ValueError("qiren-gen pipelines load weights only as safetensors")
    folder = resolve_pipeline_folder(name_or_path, **kwargs)
    index = validate_pipeline_folder(folder, cls.__name__, components, optional)
    for hub_only in _HUB_ONLY:
        kwargs.pop(hub_only, None)
    torch_dtype = kwargs.pop("torch_dtype", None)
    given = {name: kwargs.pop(name) for name in components if name in kwargs}
    if kwargs:
        raise ValueError(f"unsupported argument(s) for {cls.__name__}.from_pretrained: {', '.join(sorted(kwargs))}")
    parts = {}
    for name in components:
        spec = index.get(name)
        if name in given:
            parts[name] = given[name]
        elif spec in (None, [None, None]):
            parts[name] = None
        else:
            try:
                parts[name] = _load_component(folder, name, spec, torch_dtype)
            except _LOAD_ERRORS as exc:
                raise ValueError(f"cannot load the pipeline in '{folder}' (component '{name}'): {_first_line(exc)}"
                                 ) from None
    try:
        pipe = cls(**parts)
    except _LOAD_ERRORS as exc:  # components that do not fit together (latent sizes, NaN weights, ...)
        raise ValueError(f"cannot load the pipeline in '{folder}': {_first_line(exc)}") from None
    pipe.register_to_config(_name_or_path=str(folder))
    return pipe


__all__ = ["safe_from_pretrained"]
