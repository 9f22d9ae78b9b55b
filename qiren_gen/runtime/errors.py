"""``CLIError`` and ``run_reporting_errors``: every error a user can cause ends as one line and exit code 2, an
unexpected failure as one line and exit code 1 (``QIREN_GEN_DEBUG=1`` shows the traceback)."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def one_line(exc: BaseException) -> str:
    """An exception's message as one line for a user: its first line, or the exception's type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_reporting_errors(prog: str, func: Callable[[], T]) -> tuple[int, T | None]:
    """Run ``func`` for a command-line program; returns ``(exit code, result)``, never lets a traceback through.

    User errors (``CLIError``, ``ValueError``, ``OSError``) print one line and give code 2; Ctrl-C gives 130; anything
    else prints one line and gives 1. ``QIREN_GEN_DEBUG=1`` re-raises, for the traceback.
    """
    try:
        return 0, func()
    except (CLIError, ValueError, OSError) as exc:
        if os.environ.get("QIREN_GEN_DEBUG"):
            raise
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2, None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130, None
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, never a traceback
        if os.environ.get("QIREN_GEN_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)} (set QIREN_GEN_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1, None
