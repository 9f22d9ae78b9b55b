"""The demo's pipelines: the default one, plus a few others a visitor named (a folder or a Hub id), loaded safely.

One lock guards them: a pipeline's scheduler holds per-call state, so one request uses the model at a time (Gradio's
queue orders the rest). Every pipeline is switched to DDIM, which the interpolation tab needs (deterministic, eta 0).

A visitor's free text names a local folder only: a Hub id is loaded only when the operator listed it
(``allowed``), so no visitor makes the server download a repository. Whatever fails for a visitor's name (missing,
a file, not a pipeline, unsafe) is one answer in the page, so the page cannot be used to probe the server's files;
the reason goes to the server's log, control characters escaped.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator

from ..io.errors import shown
from ..runtime.errors import one_line


def prepare_for_demo(pipe, device: str = "cpu"):
    """Move ``pipe`` to ``device``, give it a DDIM scheduler and quiet, transient progress bars."""
    # deferred: diffusers writes torch caches on import, so only after start_demo has pointed them to its temp folder
    from diffusers import DDIMScheduler  # noqa: PLC0415

    pipe.to(device)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(leave=False)
    return pipe


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_public_bind(host: str, share: bool = False) -> bool:
    """Whether visitors from other machines reach the page: a non-loopback ``host``, a ``--share`` link, or a
    Hugging Face Space (``SPACE_ID`` set)."""
    return bool(share) or host not in LOOPBACK_HOSTS or bool(os.environ.get("SPACE_ID"))


def pipeline_allow_list(public: bool, allowed: list[str] | tuple[str, ...] | None, started: str | None
                        ) -> tuple[str, ...] | None:
    """The pipeline ids / folders a visitor may name (``None``: any). On a public bind free text would let anyone
    make the server download any repository, so it is the given list plus the started pipeline; on loopback it is
    the given list when there is one, else anything."""
    if allowed:
        names = [str(a).strip() for a in allowed if str(a).strip()]
        return tuple(dict.fromkeys([*names, *([str(started)] if started else [])]))
    if public:
        return (str(started),) if started else ()
    return None


class PipelineRefused(ValueError):
    """A visitor's pipeline name refused: the page gets ``str(self)`` (the same for every reason), the server's log
    ``detail`` (the reason)."""

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"pipeline: '{shown(source[:80])}' is not a pipeline folder this page can load")
        self.detail = f"{self}: {shown(detail)}"


class PipelineStore:
    """The default pipeline and up to ``capacity`` others, least recently used evicted first.

    ``allowed`` (``None``: any) lists the other sources a visitor may name; ``default_name`` is the started
    pipeline's id or folder, which means the default one.
    """

    def __init__(self, default, device: str = "cpu", allow_others: bool = True, capacity: int = 2,
                 allowed: tuple[str, ...] | None = None, default_name: str | None = None) -> None:
        self.default = prepare_for_demo(default, device)
        self.device = device
        self.allow_others = allow_others
        self.allowed = allowed
        self.default_name = default_name
        self.capacity = capacity
        self._others: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def others_allowed(self) -> bool:
        """Whether a visitor may name any pipeline besides the default one."""
        return self.allow_others and (self.allowed is None or any(a != self.default_name for a in self.allowed))

    def _load(self, source: str):
        from ..pipelines import QirenGenerationPipeline  # noqa: PLC0415 - diffusers, deferred as above

        if source in self._others:
            self._others.move_to_end(source)
            return self._others[source]
        listed = self.allowed is not None and source in self.allowed
        if not listed and not os.path.isdir(source):  # free text: local folders only, never a download
            raise PipelineRefused(source, "not a local folder (a Hub id only when --allow-pipeline lists it)")
        try:
            loaded = QirenGenerationPipeline.from_pretrained(source)
        except (OSError, ValueError) as exc:
            if listed:  # the operator's own entry: its reason is no secret
                raise
            raise PipelineRefused(source, one_line(exc)) from None
        pipe = prepare_for_demo(loaded, self.device)
        self._others[source] = pipe
        while len(self._others) > self.capacity:
            self._others.popitem(last=False)
        return pipe

    @contextlib.contextmanager
    def use(self, source: str | None = None) -> Iterator[object]:
        """Hold the model lock and yield the pipeline for ``source`` (empty or ``None``: the default one)."""
        source = (source or "").strip()
        if source and source == self.default_name:
            source = ""
        if source and not self.others_allowed:
            raise ValueError("pipeline: this page serves only its own pipeline")
        if source and self.allowed is not None and source not in self.allowed:
            raise ValueError(f"pipeline: this page serves only {', '.join(self.allowed)} (not '{shown(source[:80])}')")
        with self._lock:
            yield self._load(source) if source else self.default


__all__ = ["LOOPBACK_HOSTS", "PipelineRefused", "PipelineStore", "is_public_bind", "pipeline_allow_list",
           "prepare_for_demo"]
