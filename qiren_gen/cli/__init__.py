"""The ``qiren-gen`` command. Each subcommand lives in its own module with ``register(subparsers)``.

Every error a user can cause ends as one line on stderr and exit code 2; an unexpected failure ends as one line and
exit code 1 (set ``QIREN_GEN_DEBUG=1`` to see the traceback). No traceback reaches a user by default.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..runtime import run_reporting_errors
from ..runtime.suggestions import option_strings, with_suggestions

__all__ = ["build_parser", "main", "run_reporting_errors"]

# Subcommand modules in this package, in help order. Each defines ``register(subparsers)``.
SUBCOMMANDS = ("sample", "fit", "superres", "evaluate", "demo", "params")


class _Parser(argparse.ArgumentParser):
    _command: str | None = None

    def parse_known_args(self, args=None, namespace=None):  # remembers the subcommand, for the suggestions
        namespace, extras = super().parse_known_args(args, namespace)
        self._command = getattr(namespace, "command", None)
        return namespace, extras

    def error(self, message: str) -> None:  # argparse's own errors: one line with a "did you mean", exit 2
        subcommands = next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), {})
        parser = subcommands.get(self._command, self) if message.startswith("unrecognized arguments") else self
        self.exit(2, f"{parser.prog}: error: {with_suggestions(message, option_strings(parser))}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qiren-gen", description="Quantum implicit neural representations for generative modelling.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qiren-gen`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    code, result = run_reporting_errors(f"qiren-gen {args.command}", lambda: args.func(args))
    return code or int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
