"""The ``qiren-gen`` command. Each subcommand lives in its own module with ``register(subparsers)``.

Every error a user can cause ends as one line on stderr and exit code 2; an unexpected failure ends as one line and
exit code 1 (set ``QIREN_GEN_DEBUG=1`` to see the traceback). No traceback reaches a user by default.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Subcommand modules in this package, in help order. Each defines ``register(subparsers)``.
SUBCOMMANDS = ("sample", "fit", "superres", "evaluate", "demo", "params")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qiren-gen", description="Quantum implicit neural representations for generative modelling.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name.replace('-', '_')}").register(sub)
    return parser


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
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2, None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130, None
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, never a traceback
        if os.environ.get("QIREN_GEN_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{prog}: internal error: {type(exc).__name__}: {first} (set QIREN_GEN_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1, None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qiren-gen`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    code, result = run_reporting_errors(f"qiren-gen {args.command}", lambda: args.func(args))
    return code or int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
