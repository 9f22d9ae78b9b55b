"""glibc's allocator told to keep large tensors on its heap, so training and rendering do not page-fault every step.

glibc serves blocks above its mmap threshold (which grows to at most 32 MiB) with a fresh ``mmap`` and returns them
with ``munmap`` on free. A (16, 4096, 128) float32 activation is exactly 32 MiB, so without this every such tensor is
mapped and faulted in page by page on every step. `configure_allocator` raises the mmap threshold and the trim
threshold to 1 GiB through ``mallopt`` (blocks up to 1 GiB are reused from the heap; larger ones still go back to the
system). Only on Linux with glibc; elsewhere it does nothing. ``QIREN_GEN_MALLOC=default`` leaves glibc's own
settings (see ``docs/performance.md``).
"""
from __future__ import annotations

import ctypes
import os
import sys

ENV_VAR = "QIREN_GEN_MALLOC"
"""Environment variable choosing the allocator setting: ``tuned`` (the default) or ``default`` (glibc's own)."""

MODES = ("tuned", "default")

HEAP_BLOCK_LIMIT = 1 << 30
"""Largest block kept on the heap (mmap threshold) and largest free heap top kept (trim threshold): 1 GiB."""

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3

_applied: str | None = None


def allocator_mode(environ: dict | None = None) -> str:
    """The requested mode from ``QIREN_GEN_MALLOC`` (unset: ``tuned``); ``ValueError`` for any other value."""
    value = (environ if environ is not None else os.environ).get(ENV_VAR, "tuned").strip().lower() or "tuned"
    if value not in MODES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(MODES)} (or unset), got {value!r}")
    return value


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # musl and others do not name themselves here
        return False


def configure_allocator(environ: dict | None = None) -> str:
    """Apply the allocator setting once per process; returns what is in force: ``"tuned"``, ``"default"`` (asked
    for, or the first call chose it) or ``"unsupported"`` (not glibc on Linux). Cheap and idempotent."""
    global _applied
    mode = allocator_mode(environ)
    if _applied is not None:
        return _applied
    if mode == "default":
        _applied = "default"
        return _applied
    if not sys.platform.startswith("linux") or not _glibc():
        _applied = "unsupported"
        return _applied
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter already runs on
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        _applied = "unsupported"
        return _applied
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT) == 1 and mallopt(_M_TRIM_THRESHOLD, HEAP_BLOCK_LIMIT) == 1
    _applied = "tuned" if ok else "unsupported"
    return _applied


__all__ = ["ENV_VAR", "HEAP_BLOCK_LIMIT", "MODES", "allocator_mode", "configure_allocator"]
