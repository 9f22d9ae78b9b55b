""""Did you mean ...?" for a mistyped flag or choice (difflib; argparse's own ``suggest_on_error`` needs Python
3.14), and an argparse parser whose errors are one line with that suggestion."""
from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable

SIMILARITY_CUTOFF = 0.6
"""difflib ratio a known name needs to be suggested for a mistyped one."""


def _plain(name: str) -> str:
    """A name without its style: case, hyphens and underscores dropped, ``+`` read as ``p`` (``dpm++`` = ``dpmpp``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("+", "p"))


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name ``word`` most likely meant: the same name in another style (``--num-images`` for
    ``--num_images``, ``dpm++`` for ``dpmpp``), else the closest one by difflib; None if none is close."""
    flag = word.partition("=")[0] if word.startswith("--") else word
    by_plain = {_plain(k): k for k in dict.fromkeys(known)}
    if _plain(flag) in by_plain:
        return by_plain[_plain(flag)]
    found = difflib.get_close_matches(_plain(flag), list(by_plain), n=1, cutoff=SIMILARITY_CUTOFF)
    return by_plain[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for ``word``, or an empty string when no known name is close."""
    match = closest(word, known)
    return f" (did you mean {match}?)" if match else ""


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option of ``parser`` (not of its subcommands)."""
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


def with_suggestions(message: str, options: Iterable[str]) -> str:
    """argparse's error ``message`` with a "did you mean" for each unrecognised flag and for an invalid choice."""
    options = list(options)
    unrecognized = re.match(r"unrecognized arguments: (.*)", message)
    if unrecognized:
        words = [w for w in unrecognized.group(1).split() if w.startswith("--") and closest(w, options)]
        if len(words) == 1:
            return message + did_you_mean(words[0], options)
        hints = ", ".join(f"{closest(w, options)} for {w.partition('=')[0]}" for w in words)
        return message + (f" (did you mean {hints}?)" if hints else "")
    choice = re.match(r"argument [^:]+: invalid choice: '?([^' ]+)'? \(choose from (.*)\)", message)
    if choice:
        choices = [c.strip(" '\"") for c in choice.group(2).split(",")]
        return message + did_you_mean(choice.group(1), choices)
    return message


class SuggestingArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``PROG: error: ...``, exit 2) with a "did you mean"."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {with_suggestions(message, option_strings(self))}\n")


__all__ = ["SuggestingArgumentParser", "closest", "did_you_mean", "option_strings", "with_suggestions"]
