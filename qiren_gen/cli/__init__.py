"""The ``qiren-gen`` command. Each subcommand lives in its own module with ``register(subparsers)``.

Every error a user can cause ends as one line on stderr and exit code 2; an unexpected failure ends as one line and
exit code 1 (set ``QIREN_GEN_DEBUG=1`` to see the traceback). No traceback reaches a user by default.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Subcommand modules in this package, in help order. Each defines ``register(subparsers)``.
SUBCOMMANDS = ("sample", "fit", "superres", "evaluate", "params")


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qiren-gen`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, OSError) as exc:
        if os.environ.get("QIREN_GEN_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"qiren-gen {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qiren-gen {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, never a traceback
        if os.environ.get("QIREN_GEN_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"qiren-gen {args.command}: internal error: {type(exc).__name__}: {first} "
            "(set QIREN_GEN_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
