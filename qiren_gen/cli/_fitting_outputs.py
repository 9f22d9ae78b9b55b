"""Outputs shared by ``qiren-gen fit`` and ``qiren-gen superres``: the result folder, published with its
``metrics.json`` last, and the report printed after it."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..io.atomic import save_entries_with, write_text


def publish_with_metrics(out: Path, write_files: Callable[[Path], dict], metrics_for: Callable[[dict], dict],
                         what: str) -> dict:
    """Write a command's files and its ``metrics.json`` into a staging folder, then publish them into ``out`` with
    ``metrics.json`` last, so a failed or killed run never leaves metrics that name files it did not write.

    Args:
        out: The output folder.
        write_files: Writes every file but the metrics into the folder it is given; returns their paths by role.
        metrics_for: The ``metrics.json`` record, given those paths as they will be in ``out``.
        what: What is written, for the one-line error of a failed write (e.g. ``"the fit to 'out'"``).

    Returns:
        The record written to ``metrics.json``.
    """
    metrics: dict = {}

    def save(staging: Path) -> None:
        files = {role: str(out / Path(path).name) for role, path in write_files(staging).items()}
        metrics.update(metrics_for(files))
        write_text(staging / "metrics.json", json.dumps(metrics, indent=2) + "\n")

    save_entries_with(out, save, "metrics.json", what)
    return metrics


def print_report(as_json: bool, metrics: dict, lines: list[str]) -> None:
    """``metrics`` as one JSON object with ``--json``, else the lines written for a person."""
    print(json.dumps(metrics) if as_json else "\n".join(lines))
