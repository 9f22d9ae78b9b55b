"""Command-line values shared by ``qiren-gen`` and the training scripts, parsed without importing torch."""
from __future__ import annotations


def parse_encoding_scale(text: str) -> float | list[list[float]] | str:
    """``--encoding-scale``: ``3`` -> 3.0, ``2,6`` -> ``[[2.0], [6.0]]`` (one per re-upload), ``ternary[:BASE]``
    kept."""
    text = text.strip()
    if text.startswith("ternary"):
        return text  # the circuit checks the preset (and its base)
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--encoding-scale: expected a number, numbers per re-upload such as 2,6, or "
                         f"ternary[:BASE], got {text!r}") from None
    if not all(0 < v < float("inf") for v in values):
        raise ValueError(f"--encoding-scale must be finite and > 0, got {', '.join(str(v) for v in values)}")
    return values[0] if len(values) == 1 else [[v] for v in values]


MAX_SEED = 2**63 - 1
"""Largest seed a command takes: ``torch.Generator.manual_seed`` holds 64 bits (2**70 failed with "Overflow when
unpacking long long")."""

MAX_THREADS = 1024
"""Largest ``--threads``: above any machine's core count (torch would make that many threads)."""


def check_seed(seed: int, flag: str = "--seed", span: int = 0) -> int:
    """``seed`` when it is an int in ``[0, MAX_SEED - span]`` (``span``: seeds ``seed + k`` used for ``k < span``);
    ``ValueError`` naming ``flag`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED - span:
        raise ValueError(f"{flag} must be a whole number between 0 and {MAX_SEED - span}, got {seed}")
    return seed


def check_int_range(value: int | None, flag: str, low: int, high: int, why: str = "") -> None:
    """``ValueError`` (one line naming ``flag``) unless ``value`` is ``None`` or an int in ``[low, high]``."""
    if value is not None and not low <= value <= high:
        raise ValueError(f"{flag} must be between {low} and {high}{f' ({why})' if why else ''}, got {value}")


def check_threads(threads: int) -> None:
    """``--threads``: ``ValueError`` (one line) unless an int in ``[1, MAX_THREADS]``; every command checks it here."""
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    check_int_range(threads, "--threads", 1, MAX_THREADS)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """``ValueError`` (one line naming ``name`` and the choices) unless ``value`` is one of ``choices``: the one check
    behind the models' enumerated options (modulation, normalization, encoding, ...). ``quantum.gates.check_entangler``
    and ``quantum.simulator.check_engine`` raise the same message themselves: quantum sits beside runtime in the
    layering and imports nothing from it."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
