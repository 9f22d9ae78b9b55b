"""``CLIError`` and ``run_reporting_errors``: every error a user can cause ends as one line and exit code 2, an
unexpected failure as one line and exit code 1 (``QIREN_GEN_DEBUG=1`` shows the traceback)."""
from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


MAX_MESSAGE_CHARS = 600
"""Longest message ``one_line`` passes on whole; a longer one keeps its whole sentences up to this length."""


def one_line(exc: BaseException, limit: int = MAX_MESSAGE_CHARS) -> str:
    """An exception's whole message on one line for a user (or its type's name when it has none).

    Line breaks and runs of spaces become one space, so a message is never cut at its first line: the offline Hub
    error "... To enable repo look-ups and downloads online, set 'HF_HUB_OFFLINE=0' ..." reads to its end. A message
    longer than ``limit`` (a state-dict listing every key) keeps its whole sentences up to ``limit`` and says so.
    """
    text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    if len(text) <= limit:
        return text
    end = max(text.rfind(". ", 0, limit), text.rfind("; ", 0, limit))
    kept = text[: end + 1] if end > 0 else text[: text.rfind(" ", 0, limit)].rstrip(",:;") + " ..."
    return f"{kept} ({len(text) - len(kept)} more characters: QIREN_GEN_DEBUG=1 shows the whole error)"


_HUB_MISSING = ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError", "EntryNotFoundError")
_NO_NETWORK = ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "ProxyError", "SSLError")


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants  # noqa: PLC0415 (only on a Hub error; `qiren-gen --help` loads this module)
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return bool(os.environ.get("HF_HUB_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first (at most 10)."""
    found: list[BaseException] = []
    while exc is not None and len(found) < 10:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def hub_error_reason(exc: BaseException) -> str:
    """Why a Hugging Face Hub call failed, in a few words for a one-line error (the Hub's own messages run to
    several sentences and name options of its API): offline, not in the local cache, no such repo, no network."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = " ".join(str(exc).split())
    chain = {cls.__name__ for cause in _causes(exc) for cls in type(cause).__mro__}
    if _hub_offline() or "OfflineModeIsEnabled" in names or "HF_HUB_OFFLINE=0" in text:
        return "offline: HF_HUB_OFFLINE=1 is set"
    if "LocalEntryNotFoundError" in names or "local_files_only=False" in text:
        if chain & {*_NO_NETWORK, "ConnectError", "NetworkError", "gaierror"} or "internet connection" in text:
            return "no network connection to the Hub, and it is not in the local cache"
        return "it is not in the local cache, and the Hub was not asked (local_files_only=True)"
    if names & set(_HUB_MISSING[:2]) or " 404 " in f" {text} " or " 401 " in f" {text} ":
        return "it has no such repo, or the repo is private or gated"
    if "RevisionNotFoundError" in names:
        return "it has no such revision"
    if names & set(_NO_NETWORK):
        return "no network connection"
    return f"{type(exc).__name__}: {one_line(exc, limit=200)}"


_NAME_SHOWN = 80  # characters of a file name shown in an error line; a longer one is cut in its middle


def _short_name(name: object) -> str:
    text = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    if len(text) > _NAME_SHOWN:
        text = f"{text[:50]}...{text[-25:]} ({len(text)} characters)"
    return f"'{text}'"


def _in_hub_cache(name: object) -> bool:
    """Whether a path lies in the Hugging Face cache (``HF_HOME``, by default ``~/.cache/huggingface``) or is a
    folder on the way to it (``~/.cache``)."""
    try:
        from huggingface_hub import constants  # noqa: PLC0415 - only when an error is being described

        home = os.path.realpath(constants.HF_HOME)
        path = os.path.realpath(os.fsdecode(name))
    except (ImportError, TypeError, ValueError):
        return False
    return (path == home or path.startswith(home + os.sep)  # in the cache, or a folder on the way to it
            or home.startswith(path.rstrip(os.sep) + os.sep) or f"{os.sep}huggingface{os.sep}" in path)


def describe_os_error(exc: OSError) -> str:
    """An ``OSError`` for a user, on one line: the reason and the file (a long name cut in its middle, control
    characters escaped), with a hint for a name too long and for an unwritable Hugging Face cache; never the raw
    ``[Errno N] ...`` text."""
    if exc.errno is None or not exc.strerror:
        return one_line(exc)
    names = [_short_name(n) for n in (exc.filename, exc.filename2) if n is not None]
    line = exc.strerror + (f": {' -> '.join(names)}" if names else "")
    if exc.errno == errno.ENAMETOOLONG:
        line += " (a file name may have at most 255 bytes and a path 4096: choose a shorter one)"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and exc.filename is not None and _in_hub_cache(
            exc.filename):
        line += (" (the Hugging Face cache must be writable: pass --cache_dir DIR, or set HF_HOME to a writable "
                 "folder)")
    return line


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
        text = describe_os_error(exc) if isinstance(exc, OSError) else one_line(exc)
        print(f"{prog}: error: {text}", file=sys.stderr)
        return 2, None
    except KeyboardInterrupt as exc:  # a training run's stop names the checkpoint it saved and the resume flag
        detail = one_line(exc) if str(exc) else ""
        print(f"{prog}: interrupted{': ' + detail if detail else ''}", file=sys.stderr)
        return 130, None
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, never a traceback
        if os.environ.get("QIREN_GEN_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)} "
              "(set QIREN_GEN_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1, None
