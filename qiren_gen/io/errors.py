"""The two errors of the boundary, both one line naming the file and both exit code 2 on the command line.

They subclass `CLIError` (what ``run_reporting_errors`` prints as one line) and the
built-in type callers already catch: a bad input file is a ``ValueError``, a failed write an ``OSError``.
"""
from __future__ import annotations

import os

from ..runtime.errors import CLIError


class BadInputFile(CLIError, ValueError):
    """A file that was read and refused: missing a digest, over a cap, damaged, a pickle, a wrong type."""


class WriteFailed(CLIError, OSError):
    """A write that failed (a full disk, no permission); the previous output, if any, is intact."""


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def shown(value: str | bytes | os.PathLike) -> str:
    """``value`` safe to echo on one line: control characters (ESC, NUL, line breaks) as ``\\xNN``, bytes that are
    not UTF-8 (a file name read from disk) as ``\\udcNN`` / ``\\xNN``, never raw."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates from surrogateescape
    return text.translate(_CONTROL)


def quoted(path: str | bytes | os.PathLike) -> str:
    """A file name for a message: `shown`, in single quotes."""
    return f"'{shown(path)}'"


__all__ = ["BadInputFile", "WriteFailed", "quoted", "shown"]
