"""The command line a report says it was made by, written so that it means something on any machine."""
from __future__ import annotations

import shlex
from pathlib import Path


def portable_command(script: str, argv: list[str]) -> str:
    """``python SCRIPT ARGS`` with every absolute path argument cut to its file name (``/data/x/gt_bach.wav`` ->
    ``gt_bach.wav``): a report should not name a folder of the machine that built it."""
    args = [Path(a).name if Path(a).is_absolute() else a for a in argv]
    return f"python {script} " + shlex.join(args)
