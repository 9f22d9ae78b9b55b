"""What one demo request may ask for, and the one-line refusals when it asks for more.

The caps keep one request's work small (the Fit tab's caps are sized to ``FIT_BUDGET_S`` of work on a 2-core CPU,
measured by ``scripts/benchmarks/benchmark_demo_fit.py``), bound what is stored (uploads, the cache) and how many
requests wait per tab, so a public page cannot be used to exhaust the machine. Every check raises ``ValueError``
naming the field, before any work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..quantum.shots import MAX_SHOTS
from ..runtime.values import MAX_SEED

FIT_BUDGET_S = 15
"""CPU-seconds of work one Fit request may take at the tab's caps (both models, fitted side by side on 2 cores)."""


# Not a copy of the trainers' configs that share its shape (``name: int = value`` fields): these caps are the demo's
# own, sized to one request; the bounds shared with the command line (seeds, shots) are imported from their owners.
@dataclass(frozen=True)
class DemoLimits:
    """Caps of one request; raise ``max_pixels`` on a GPU machine."""

    max_pixels: int = 16 * 128 * 128
    """Decoded pixels per request (faces x height x width): 16 faces at 128x128."""
    max_faces: int = 16
    max_side: int = 512
    max_steps: int = 100
    max_upload_bytes: int = 10 * 2**20
    """Refused by Gradio while the upload streams in, before it is stored (``launch(max_file_size=...)``)."""
    max_upload_pixels: int = 4096 * 4096
    max_fit_size: int = 32
    max_fit_steps: int = 200
    """The Fit tab's caps: 32 px and 200 steps take about ``FIT_BUDGET_S`` CPU-seconds (both models together)."""
    cache_every_s: int = 300
    cache_max_age_s: int = 900
    """Gradio's cache (uploads, rendered images): every 5 minutes, files older than 15 minutes are deleted."""
    model_waiting: int = 32
    fit_waiting: int = 4
    waiting_per_client: int = 2
    """Requests that may wait per line (the model tabs share one, Fit has its own), and per client in each line."""

    def pixel_cost_note(self) -> str:
        side = int(math.sqrt(self.max_pixels / self.max_faces))
        return f"at most {self.max_pixels:,} decoded pixels per request ({self.max_faces} faces at {side}x{side})"

    def fit_cost_note(self) -> str:
        return (f"at most {self.max_fit_size}x{self.max_fit_size} pixels and {self.max_fit_steps} steps per fit, "
                f"about {FIT_BUDGET_S} CPU-seconds of work")


def as_int(value, field: str, low: int, high: int, why: str = "") -> int:
    """``value`` as an int in ``[low, high]`` (floats must be whole numbers); ``ValueError`` naming ``field``."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{field} must be a whole number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{field} must be a whole number, got {value!r}")
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{field} must be a whole number, got {value!r}") from None
    if not isinstance(value, int):
        raise ValueError(f"{field} must be a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{field} must be between {low} and {high}, got {value}" + (f" ({why})" if why else ""))
    return value


def check_pixels(limits: DemoLimits, pixels: int, what: str) -> None:
    """Refuse a request that decodes more than ``limits.max_pixels`` pixels, saying why."""
    if pixels > limits.max_pixels:
        raise ValueError(f"{what} is {pixels:,} decoded pixels, over the cap: {limits.pixel_cost_note()}")


def check_seed(value, field: str = "seed") -> int:
    """A seed box's value as an int in ``[0, MAX_SEED]``, the commands' own seed bound (a ``torch.Generator`` seed)."""
    return as_int(value, field, 0, MAX_SEED)


def check_demo_shots(value) -> int | None:
    """The Sample tab's shots box: 0 or empty is exact (``None``), else an int in ``1..MAX_SHOTS`` (sampling costs
    the same for any count, so the cap is the pipeline's own)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    shots = as_int(value, "shots", 0, MAX_SHOTS, "0 means exact expectations")
    return shots or None


def check_steps(value, limits: DemoLimits, train_timesteps: int) -> int:
    high = min(limits.max_steps, train_timesteps)
    return as_int(value, "steps", 1, high, "more steps take longer and change little")


__all__ = ["FIT_BUDGET_S", "MAX_SEED", "DemoLimits", "as_int", "check_demo_shots", "check_pixels", "check_seed",
           "check_steps"]
