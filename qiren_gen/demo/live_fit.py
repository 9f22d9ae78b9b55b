"""Fit QIREN and a classical baseline to one image side by side, yielding frames while they train.

Each model trains in its own thread through ``QirenSignalFittingPipeline`` (its step callback reports the loss and
the current fit); the generator turns those reports into frames. Closing the generator stops both fits.
"""
from __future__ import annotations

import io
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..pipelines import QirenSignalFittingPipeline


@dataclass(frozen=True)
class FitBaseline:
    """A classical model the page fits beside QIREN: the model's name, its constructor arguments, its learning rate
    (``None``: the model's default) and a label for the page."""

    model: str
    kwargs: dict = field(default_factory=dict)
    learning_rate: float | None = None
    label: str = ""


FIT_BASELINES = {
    "siren_paper": FitBaseline("siren", {"first_omega_0": 1.0, "hidden_omega_0": 1.0}, 0.03,
                               "SIREN at the paper's settings (omega_0 1, lr 0.03, as the authors' code runs it)"),
    "siren": FitBaseline("siren", {}, None, "SIREN tuned (omega_0 30, lr 3e-3)"),
    "relu_rff": FitBaseline("relu_rff", label="ReLU + random Fourier features"),
    "ffn": FitBaseline("ffn", label="Fourier feature network"),
    "relu": FitBaseline("relu", label="ReLU MLP"),
    "tanh": FitBaseline("tanh", label="Tanh MLP"),
}
"""Classical models the page offers beside QIREN (the paper's baselines); the first is the paper's comparison."""
BASELINE_ALIASES = {name.replace("_", "-"): name for name in FIT_BASELINES if "_" in name}
"""Former spellings of the baseline choice (``siren-paper``, ``relu-rff``), still read as the current name, so that
old API calls and scripts work."""


def canonical_baseline(name: str) -> str:
    """The current name of the baseline choice ``name`` (``relu-rff`` -> ``relu_rff``); any other value comes back
    as given, for the caller's check to refuse."""
    return BASELINE_ALIASES.get(name, name) if isinstance(name, str) else name


PAPER_BASELINE = "siren_paper"
TUNED_BASELINE = "siren"


class _Stopped(Exception):
    """Raised inside a fit's callback when the viewer went away or the server stops."""


_RUNNING: dict[threading.Event, list[threading.Thread]] = {}
_RUNNING_LOCK = threading.Lock()


def stop_all_fits(timeout_s: float = 30.0) -> None:
    """Stop every running fit and wait for its threads (the server is closing: torch threads killed at interpreter
    exit abort the process instead of letting it exit cleanly)."""
    with _RUNNING_LOCK:
        running = list(_RUNNING.items())
    deadline = time.monotonic() + timeout_s
    for stop, _ in running:
        stop.set()
    for _, threads in running:
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


@dataclass
class FitTrack:
    """One model's progress: its name, parameter count, loss per step and latest fit (``(H, W)`` in [-1, 1])."""

    name: str
    parameters: int
    losses: list[float] = field(default_factory=list)
    fit: np.ndarray | None = None
    psnr: float | None = None
    done: bool = False


@dataclass
class FitFrame:
    """What the page shows at one moment of the two fits."""

    total_steps: int
    tracks: tuple[FitTrack, FitTrack]

    @property
    def done(self) -> bool:
        return all(t.done for t in self.tracks)


def live_fit(signal: np.ndarray, baseline: str, steps: int, every: int = 10, seed: int = 0,
             min_interval_s: float = 0.5) -> Iterator[FitFrame]:
    """Fit ``qiren`` and ``baseline`` to ``signal`` (``(H, W)`` in [-1, 1]) for ``steps`` steps each, in parallel;
    yields a frame when either model has a new fit (every ``every`` steps) and ``min_interval_s`` has passed since
    the last one, and a frame as each model finishes (the last with both PSNRs). ``baseline``: a key of
    ``FIT_BASELINES`` or a former spelling (``BASELINE_ALIASES``)."""
    baseline = canonical_baseline(baseline)
    if baseline not in FIT_BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(FIT_BASELINES)}, got {baseline!r}")
    chosen = FIT_BASELINES[baseline]
    pipes = [QirenSignalFittingPipeline.from_model_name("qiren", 2, 1, seed=seed),
             QirenSignalFittingPipeline.from_model_name(chosen.model, 2, 1, seed=seed, **chosen.kwargs)]
    rates = [None, chosen.learning_rate]
    tracks = tuple(FitTrack(name, sum(p.numel() for p in pipe.model.parameters()))
                   for name, pipe in zip(("qiren", baseline), pipes, strict=True))
    reports: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run(index: int) -> None:
        def report(pipe, step: int, timestep: int, kwargs: dict) -> None:
            if stop.is_set():
                raise _Stopped
            fit = kwargs["prediction"].numpy() if (step + 1) % every == 0 or step + 1 == steps else None
            reports.put(("step", index, kwargs["loss"], fit))

        try:
            pipes[index].set_progress_bar_config(disable=True)
            out = pipes[index](signal, num_steps=steps, learning_rate=rates[index], callback_on_step_end=report)
            reports.put(("done", index, out.psnr, out.signal))
        except _Stopped:
            reports.put(("done", index, None, None))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it in the request
            reports.put(("error", index, exc, None))

    threads = [threading.Thread(target=run, args=(i,), daemon=True, name=f"live-fit-{i}") for i in range(2)]
    with _RUNNING_LOCK:
        _RUNNING[stop] = threads
    for thread in threads:
        thread.start()
    try:
        finished, last = 0, -math.inf
        while finished < 2:
            kind, index, value, fit = reports.get()
            track = tracks[index]
            if kind == "error":
                raise value
            if kind == "done":
                finished += 1
                track.done = True
                track.psnr, track.fit = value, fit if fit is not None else track.fit
                yield FitFrame(steps, tracks)
                continue
            track.losses.append(value)
            if fit is not None:
                track.fit = fit
                if time.monotonic() - last >= min_interval_s:
                    last = time.monotonic()
                    yield FitFrame(steps, tracks)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        with _RUNNING_LOCK:
            _RUNNING.pop(stop, None)


def loss_figure(frame: FitFrame):
    """Both loss curves (log scale) as a PIL image."""
    import matplotlib  # deferred: matplotlib, needed only when a fit is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    for track in frame.tracks:
        if track.losses:
            ax.plot(np.arange(1, len(track.losses) + 1), track.losses,
                    label=f"{track.name} ({track.parameters:,} params)")
    ax.set_yscale("log")
    ax.set_xlim(1, max(frame.total_steps, 2))
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.legend(loc="upper right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def frame_summary(frame: FitFrame) -> str:
    """One Markdown line per model: step, MSE, and PSNR once it is done."""
    lines = []
    for track in frame.tracks:
        mse = f"{track.losses[-1]:.2e}" if track.losses else "-"
        psnr = f", PSNR {track.psnr:.1f} dB" if track.psnr is not None else ""
        lines.append(f"- **{track.name}** ({track.parameters:,} parameters): step {len(track.losses)}/"
                     f"{frame.total_steps}, MSE {mse}{psnr}")
    return "\n".join(lines)


__all__ = ["BASELINE_ALIASES", "FIT_BASELINES", "PAPER_BASELINE", "TUNED_BASELINE", "FitBaseline", "FitFrame",
           "FitTrack", "canonical_baseline", "frame_summary", "live_fit", "loss_figure", "stop_all_fits"]
