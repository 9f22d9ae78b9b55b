"""Writing a study's page: hand-written notes survive a rewrite, and a rewrite from a cache never drops a line the
page had (it refuses instead, so a fresh clone without the study's runs cannot shrink a committed page)."""
from __future__ import annotations

from pathlib import Path

NOTES_START, NOTES_END = "<!-- notes -->", "<!-- /notes -->"
"""Markers of the hand-written part of a generated page, carried over verbatim when the page is rewritten."""


def kept_notes(page: str | Path) -> list[str]:
    """The marked hand-written block of an existing page (markers included), or ``[]`` when there is none."""
    path = Path(page)
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    if NOTES_START not in lines or NOTES_END not in lines:
        return []
    return lines[lines.index(NOTES_START): lines.index(NOTES_END) + 1]


def refuse_to_shrink(page: str | Path, new_text: str, volatile: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` (one line) if ``new_text`` lacks a non-blank line of the existing ``page``.

    ``volatile``: line prefixes that may change between rewrites (the command or date a page was made with).
    """
    path = Path(page)
    if not path.is_file():
        return
    new = set(new_text.splitlines())
    dropped = [line for line in path.read_text().splitlines()
               if line.strip() and line not in new and not line.strip().startswith(volatile)]
    if dropped:
        raise ValueError(f"refusing to rewrite {path} with less than it has: the new page would drop {len(dropped)} "
                         f"of its lines (the first: {dropped[0].strip()[:70]!r}), whose runs are not in the cache; "
                         "run the study for them, or write the page elsewhere.")


__all__ = ["NOTES_END", "NOTES_START", "kept_notes", "refuse_to_shrink"]
