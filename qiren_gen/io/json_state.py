"""The one checked reader for JSON state files (a checkpoint's ``training_state.json``, a run's summary): typed and
bounded fields, checked before any value is used.

The file itself is read by `read_json_file` (size and nesting caps before
parsing); each field named in the schema must then have its type (a boolean is not an int, ``2.0`` is not an int)
and lie in its range. A ``step`` of ``-100`` or ``"x"`` is one `BadInputFile` line naming the file
and the key, never a run that trains the wrong number of steps.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..runtime.json_files import MAX_JSON_DEPTH, read_json_file
from .errors import BadInputFile, quoted, shown

MAX_STATE_BYTES = 1 << 20
"""Largest JSON state file: 1 MiB (a training state is under 4 KB)."""


@dataclass(frozen=True)
class Int:
    """An integer field in ``[low, high]`` (booleans and floats are not integers)."""

    low: int
    high: int
    required: bool = True

    def check(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number, got {_kind(value)}"
        if not self.low <= value <= self.high:
            return f"must be between {self.low} and {self.high}, got {value}"
        return None


@dataclass(frozen=True)
class Float:
    """A finite number field in ``[low, high]`` (an int is accepted as a number; a boolean is not)."""

    low: float = -math.inf
    high: float = math.inf
    required: bool = True

    def check(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {_kind(value)}"
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return f"must be a finite number between {self.low} and {self.high}, got {value}"
        return None


@dataclass(frozen=True)
class Str:
    """A string field of at most ``max_chars`` characters (optionally one of ``choices``)."""

    max_chars: int = 256
    choices: tuple[str, ...] | None = None
    required: bool = True

    def check(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, got {_kind(value)}"
        if len(value) > self.max_chars:
            return f"must be at most {self.max_chars} characters, got {len(value)}"
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {quoted(value)}"
        return None


@dataclass(frozen=True)
class Bool:
    """A ``true`` / ``false`` field."""

    required: bool = True

    def check(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, got {_kind(value)}"


Field = Int | Float | Str | Bool


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    shown_value = shown(repr(value))
    return f"{names.get(type(value), type(value).__name__)} {shown_value[:40]}"


def read_json_state(path: str | os.PathLike, schema: Mapping[str, Field], what: str | None = None,
                    max_bytes: int = MAX_STATE_BYTES) -> dict:
    """The JSON object in ``path`` with every field of ``schema`` checked (type and range); other keys are kept as
    they are. One `BadInputFile` line naming the file and the key for a missing, mistyped or
    out-of-range field, or a file that is not a bounded JSON object."""
    what = what or quoted(path)
    try:
        state = read_json_file(path, what, max_bytes=max_bytes, max_depth=MAX_JSON_DEPTH)
    except (OSError, ValueError) as exc:
        raise BadInputFile(" ".join(str(exc).split())) from None
    for key, field in schema.items():
        if key not in state:
            if field.required:
                raise BadInputFile(f"{what} has no {quoted(key)} (a damaged or foreign state file)")
            continue
        problem = field.check(state[key])
        if problem:
            raise BadInputFile(f"{what}: {quoted(key)} {problem}")
    return state


__all__ = ["Bool", "Field", "Float", "Int", "MAX_STATE_BYTES", "Str", "read_json_state"]
