"""The demo's pipelines: the default one, plus a few others a visitor named (a folder or a Hub id), loaded safely.

One lock guards them: a pipeline's scheduler holds per-call state, so one request uses the model at a time (Gradio's
queue orders the rest). Every pipeline is switched to DDIM, which the interpolation tab needs (deterministic, eta 0).
"""
from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator


def prepare_for_demo(pipe, device: str = "cpu"):
    """Move ``pipe`` to ``device``, give it a DDIM scheduler and quiet, transient progress bars."""
    from diffusers import DDIMScheduler

    pipe.to(device)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(leave=False)
    return pipe


class PipelineStore:
    """The default pipeline and up to ``capacity`` others, least recently used evicted first."""

    def __init__(self, default, device: str = "cpu", allow_others: bool = True, capacity: int = 2) -> None:
        self.default = prepare_for_demo(default, device)
        self.device = device
        self.allow_others = allow_others
        self.capacity = capacity
        self._others: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def _load(self, source: str):
        from ..pipelines import QirenGenerationPipeline

        if source in self._others:
            self._others.move_to_end(source)
            return self._others[source]
        pipe = prepare_for_demo(QirenGenerationPipeline.from_pretrained(source), self.device)
        self._others[source] = pipe
        while len(self._others) > self.capacity:
            self._others.popitem(last=False)
        return pipe

    @contextlib.contextmanager
    def use(self, source: str | None = None) -> Iterator[object]:
        """Hold the model lock and yield the pipeline for ``source`` (empty or ``None``: the default one)."""
        source = (source or "").strip()
        if source and not self.allow_others:
            raise ValueError("pipeline: this page serves only its own pipeline")
        with self._lock:
            yield self._load(source) if source else self.default


__all__ = ["PipelineStore", "prepare_for_demo"]
