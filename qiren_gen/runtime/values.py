"""Command-line values shared by ``qiren-gen`` and the training scripts, parsed without importing torch."""
from __future__ import annotations


def parse_encoding_scale(text: str) -> float | list[list[float]] | str:
    """``--encoding-scale``: ``3`` -> 3.0, ``2,6`` -> ``[[2.0], [6.0]]`` (one per re-upload), ``ternary[:BASE]`` kept."""
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
