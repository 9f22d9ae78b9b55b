"""Reading the JSON files of a pipeline folder (``model_index.json``, ``config.json``, ``scheduler_config.json``,
weight-shard indexes) with a size cap and a nesting cap checked before the text is parsed.

Python's ``json`` recurses once per nesting level (100,000 levels: ``RecursionError``) and keeps every byte of a
string (a 100 MB value would reach a diffusers warning whole), so both are refused first, in one line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

MAX_CONFIG_BYTES = 1 << 20
"""Largest JSON file a folder may hold: 1 MiB. A model config is under 2 KB; the largest legitimate file is a
scheduler config with ``trained_betas`` (1,000 betas at full precision take 22 KB; about 45,000 fit)."""

MAX_JSON_DEPTH = 8
"""Deepest nesting a config can have: an object holding a list of lists (``encoding_scale`` per layer and
re-upload) is depth 3; 8 leaves room and keeps parsing far from Python's recursion limit."""

_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _nesting_depth(data: bytes) -> int:
    """Deepest ``[`` / ``{`` nesting of JSON text (strings skipped), counted without parsing it."""
    brackets = np.frombuffer(_STRING.sub(b"", data).translate(None, delete=_NOT_BRACKETS), dtype=np.uint8)
    if brackets.size == 0:
        return 0
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def read_json_file(path: str | Path, what: str | None = None, max_bytes: int = MAX_CONFIG_BYTES,
                   max_depth: int = MAX_JSON_DEPTH) -> dict:
    """The JSON object in ``path``; ``OSError`` / ``ValueError`` (one line, naming the file) when it is missing,
    over ``max_bytes``, nested deeper than ``max_depth``, not UTF-8 JSON, or not a JSON object."""
    path = Path(path)
    what = what or f"'{path}'"
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise OSError(f"cannot read {what}: {exc.strerror or type(exc).__name__}") from None
    if size > max_bytes:
        raise ValueError(f"{what} is {size} bytes, over the cap of {max_bytes} bytes for a config file "
                         "(a damaged or hostile folder)")
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after stat
        raise ValueError(f"{what} is over the cap of {max_bytes} bytes for a config file")
    depth = _nesting_depth(data)
    if depth > max_depth:
        raise ValueError(f"{what} is nested {depth} levels deep, deeper than a config can be ({max_depth})")
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer over Python's 4300-digit limit
        raise ValueError(f"{what} is not valid JSON ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must hold a JSON object ({{...}}), but it holds a JSON {_json_kind(value)}")
    return value


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


__all__ = ["MAX_CONFIG_BYTES", "MAX_JSON_DEPTH", "read_json_file"]
