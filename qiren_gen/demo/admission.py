"""Who may join a tab's queue: each kind of work waits in its own line, of bounded length, with a few places per client.

Gradio runs each ``concurrency_id`` group one request at a time but counts one ``max_size`` over all groups, so a
flood of one tab (65 fits) would fill the whole queue and every tab would answer "queue full". A Gradio ``validator``
runs when a request asks to join the queue, before it is stored: ``admit`` refuses it there (HTTP 422, the line shown
at the tab's first field), when its group already has ``waiting`` requests or its client (Gradio's session) already
has ``per_client`` of them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr


@dataclass(frozen=True)
class QueueCaps:
    """One group's line: at most ``waiting`` requests wait, at most ``per_client`` of them from one client."""

    waiting: int
    per_client: int


def waiting_sessions(blocks: gr.Blocks, group: str) -> list[str]:
    """The session of every request waiting (not yet running) in ``group``'s line of ``blocks``' queue."""
    queue = getattr(blocks, "_queue", None)
    lines = getattr(queue, "event_queue_per_concurrency_id", {}) or {}
    line = lines.get(group)
    return [event.session_hash for event in getattr(line, "queue", [])]


def admission_check(blocks: gr.Blocks, group: str, caps: QueueCaps, tab: str,
                    on_refusal: Callable[[str, str], None]) -> Callable:
    """A Gradio ``validator`` for the events of ``group``: one ``gr.validate`` per input, the first one failing with
    one line when the line or the client's share of it is full; ``on_refusal(tab, message)`` logs it on the server."""
    def admit(request: gr.Request, *inputs):
        sessions = waiting_sessions(blocks, group)
        message = None
        if len(sessions) >= caps.waiting:
            message = (f"{len(sessions)} requests are already waiting for this tab (its cap); "
                       "try again when they are done")
        elif request is not None and sessions.count(request.session_hash) >= caps.per_client:
            message = (f"you already have {caps.per_client} request(s) waiting for this tab; "
                       "wait for them to finish")
        if message is None:
            return [gr.validate(True, "") for _ in inputs]
        on_refusal(tab, message)
        return [gr.validate(False, message)] + [gr.validate(True, "") for _ in inputs[1:]]
    return admit


__all__ = ["QueueCaps", "admission_check", "waiting_sessions"]
