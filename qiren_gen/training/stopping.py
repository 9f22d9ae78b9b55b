"""Stopping a run cleanly: SIGTERM or SIGINT asks every rank to stop after the current step, the run saves a
checkpoint, and every process exits (code 130), resumable with ``--resume_from_checkpoint latest``.

``accelerate launch`` (torchrun underneath) forwards a SIGTERM / SIGINT it receives to every worker's process group
and SIGKILLs them 30 s later; a worker only sets a flag in its handler. The ranks agree at the next step through a
collective they run anyway (`StopRequest.flag` is summed with the step's loss), so all of them stop at the
same step even when the signal reaches them at different moments.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(KeyboardInterrupt):
    """Raised on every rank after the checkpoint of a stop request was written (exit code 130, like Ctrl-C)."""


class StopRequest:
    """Whether this process got SIGTERM / SIGINT since `stop_on_signals` began."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.signum = signum

    @property
    def flag(self) -> float:
        """1.0 once a stop signal arrived, else 0.0 (summed across ranks with the step's statistics)."""
        return 0.0 if self.signum is None else 1.0


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, SIGTERM and SIGINT set `StopRequest` instead of killing the process; the previous
    handlers come back afterwards. Outside the main thread (no signal handlers there) nothing is installed."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request._handle) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["STOP_SIGNALS", "StopRequest", "TrainingStopped", "stop_on_signals"]
