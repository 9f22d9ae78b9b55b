"""How long this process has run: start-up (interpreter + imports) told apart from a command's own work."""
from __future__ import annotations

import os
import time

_FIRST_SEEN = time.perf_counter()  # fallback origin: when the runtime package was first imported


def process_age() -> float:
    """Seconds since the process started (from ``/proc`` on Linux, 10 ms ticks), else since the runtime package
    was imported (which misses the interpreter's own start)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22: start time in clock ticks
            return max(0.0, float(uptime.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _FIRST_SEEN


__all__ = ["process_age"]
