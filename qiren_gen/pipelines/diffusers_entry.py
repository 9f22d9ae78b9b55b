"""The small module every saved pipeline folder carries so that plain diffusers can load it.

``DiffusionPipeline.from_pretrained(folder_or_hub_id, trust_remote_code=True)`` only finds a pipeline class outside
diffusers when ``model_index.json`` names ``["<module>", "<Class>"]`` and ``<module>.py`` sits in the folder. Ours is
one import from the installed qiren-gen package, nothing else. qiren-gen's own loader never runs it: it checks the
file is exactly such an import (parsed, not executed) and resolves the class from the installed package itself.
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from ..io.atomic import is_staging, save_pipeline_with, write_json, write_text
from .component_classes import MODEL_CLASSES, SCHEDULER_NAMES

ENTRY_MODULE = "qiren_pipeline"
"""File stem of the module (``qiren_pipeline.py``) and first element of ``_class_name`` in ``model_index.json``."""

_PACKAGE = "qiren_gen"


def entry_module_text(class_name: str) -> str:
    """Source of ``qiren_pipeline.py`` for the pipeline class ``class_name`` (an import from qiren_gen.pipelines)."""
    return (
        '"""diffusers entry point: DiffusionPipeline.from_pretrained(<this folder or Hub id>, trust_remote_code=True)\n'
        "imports the pipeline class from the installed qiren-gen package (pip install qiren-gen). Weights and configs\n"
        'beside this file are safetensors and JSON; qiren-gen\'s own from_pretrained never executes this file."""\n'
        f"from qiren_gen.pipelines import {class_name}\n"
        "\n"
        f'__all__ = ["{class_name}"]\n'
    )


def write_diffusers_entry(folder: str | os.PathLike, class_name: str) -> None:
    """Write ``qiren_pipeline.py`` into a saved pipeline folder and point ``_class_name`` at it."""
    folder = Path(folder)
    index_file = folder / "model_index.json"
    index = json.loads(index_file.read_text())
    index["_class_name"] = [ENTRY_MODULE, class_name]
    write_text(folder / f"{ENTRY_MODULE}.py", entry_module_text(class_name))
    write_json(index_file, index, sort_keys=True)


def pipeline_class_name(index: dict) -> str | None:
    """The pipeline class a ``model_index.json`` names: old form ``"Cls"`` or new ``["qiren_pipeline", "Cls"]``."""
    spec = index.get("_class_name")
    if isinstance(spec, str):
        return spec
    if isinstance(spec, list) and len(spec) == 2 and spec[0] == ENTRY_MODULE and isinstance(spec[1], str):
        return spec[1]
    return None


def _is_the_import(node: ast.stmt, class_name: str) -> bool:
    """``from qiren_gen.pipelines import <class_name>``: the one import line the entry module may hold."""
    return (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == f"{_PACKAGE}.pipelines"
            and len(node.names) == 1 and node.names[0].name == class_name and node.names[0].asname is None)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _is_all(node: ast.stmt, class_name: str) -> bool:
    """``__all__ = ["<class_name>"]`` (a list or tuple of that one name)."""
    return (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
            and isinstance(node.value, (ast.List, ast.Tuple)) and len(node.value.elts) == 1
            and isinstance(node.value.elts[0], ast.Constant) and node.value.elts[0].value == class_name)


def is_plain_entry_module(source: str, class_name: str) -> bool:
    """Whether ``source`` is exactly what ``entry_module_text`` writes, up to formatting: an optional docstring, the
    one line ``from qiren_gen.pipelines import <class_name>``, and optionally ``__all__ = ["<class_name>"]``."""
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    if body and _is_docstring(body[0]):
        body = body[1:]
    if body and _is_all(body[-1], class_name):
        body = body[:-1]
    return len(body) == 1 and _is_the_import(body[0], class_name)


def check_entry_module(folder: Path, class_name: str) -> None:
    """Refuse any Python file in ``folder`` except a ``qiren_pipeline.py`` that is the one plain import line of
    ``class_name`` (checked by parsing, never by running it); ``ValueError`` with one line otherwise."""
    py_files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.py")
                      if not is_staging(p.relative_to(folder).parts[0]))  # what a killed save left: never loaded
    unknown = [f for f in py_files if f != f"{ENTRY_MODULE}.py"]
    if unknown:
        raise ValueError(f"refusing to load '{folder}': it contains Python code ({unknown[0]}); "
                         "pipelines load weights and configs only")
    if not py_files:
        return
    entry = folder / f"{ENTRY_MODULE}.py"
    try:
        size = entry.stat().st_size
        source = entry.read_text(encoding="utf-8") if size <= 64 * 1024 else ""
    except (OSError, UnicodeDecodeError):
        source = ""
    if not is_plain_entry_module(source, class_name):
        raise ValueError(f"refusing to load '{folder}': {ENTRY_MODULE}.py is not the plain qiren-gen import of "
                         f"{class_name} (from qiren_gen.pipelines import {class_name}; it contains other Python code)")


SAVEABLE_LIBRARIES = ("diffusers", "qiren_gen")
"""Packages whose classes a saved folder may name: the only ones qiren-gen's loader imports."""


def check_saveable_components(components: dict) -> None:
    """``ValueError`` (one line) for a component whose class a saved folder may not name (outside diffusers /
    qiren_gen, or outside the loader's table in ``component_classes``): the safe loader would refuse the folder, so
    it is refused before anything is written."""
    for name, part in components.items():
        if part is None:
            continue
        cls = type(part)
        if not any(cls.__module__ == lib or cls.__module__.startswith(lib + ".") for lib in SAVEABLE_LIBRARIES):
            raise ValueError(f"cannot save component '{name}': {cls.__module__}.{cls.__name__} is not a diffusers or "
                             "qiren_gen class, and saved folders load only those")
        if MODEL_CLASSES.get(cls.__name__) is not cls and cls.__name__ not in SCHEDULER_NAMES:
            raise ValueError(f"cannot save component '{name}': {cls.__name__} is not one of the classes a saved "
                             "folder may name (qiren_gen.pipelines.component_classes), so it could not be loaded back")


class DiffusersEntryMixin:
    """``save_pretrained`` for qiren-gen pipelines: safetensors only, plus the diffusers entry module."""

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True, **kwargs) -> None:
        """Save components (safetensors), ``model_index.json`` and ``qiren_pipeline.py`` (for plain diffusers), and
        the files of `write_extra_files`; atomically: the folder is written complete beside, then published with
        ``model_index.json`` last, so a kill or a full disk leaves the previous pipeline (or none), never a mix."""
        if not safe_serialization:
            raise ValueError("safe_serialization=False is refused: qiren-gen pipelines save weights only as "
                             "safetensors (a pickled .bin file can run code when it is loaded)")
        check_saveable_components(self.components)
        if kwargs.pop("push_to_hub", False):
            raise ValueError("use pipeline.push_to_hub(repo_id) to upload")
        save_pipeline_with(save_directory, lambda staging: (
            super(DiffusersEntryMixin, self).save_pretrained(staging, safe_serialization=True, **kwargs),
            self.write_extra_files(staging)))

    def write_extra_files(self, folder: str | os.PathLike) -> None:
        """The files a saved folder holds beside diffusers' own: the entry module (subclasses add a model card)."""
        write_diffusers_entry(folder, type(self).__name__)


__all__ = ["DiffusersEntryMixin", "ENTRY_MODULE", "SAVEABLE_LIBRARIES", "check_entry_module",
           "check_saveable_components", "entry_module_text", "is_plain_entry_module", "pipeline_class_name",
           "write_diffusers_entry"]
