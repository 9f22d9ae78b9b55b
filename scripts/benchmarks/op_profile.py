"""Where a piece of work's CPU time goes, op by op: the thread's CPU clock around every aten op.

``torch.profiler`` times ops by the wall clock, so on a shared machine a preempted op reads as slow. Here a
``TorchDispatchMode`` reads ``time.thread_time_ns`` before and after every aten op the work dispatches (forward,
backward and in-place ops alike; a composite op such as ``linear`` or ``matmul`` is seen as the ops it runs), and
counts the FLOPs of the GEMM kinds, so that a benchmark can say what its ratio to the floor is made of: GEMM time at
and above the floor, each non-GEMM op, and the rest (Python, autograd bookkeeping, dispatch: the work's time outside
any op, from an unprofiled run).
"""
from __future__ import annotations

import collections
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

GEMM_OPS = ("mm", "addmm", "addmm_", "bmm", "baddbmm", "baddbmm_", "addbmm", "addbmm_", "addmv", "addmv_", "mv",
            "matmul", "linear")
"""Aten ops counted as GEMMs (their FLOPs from the operand shapes)."""


def gemm_flops(name: str, args: tuple) -> float:
    """FLOPs of one GEMM-kind op from its operands: ``2 M N K`` (times the batch of the first operand), four times
    that for complex."""
    mats = [a for a in args if isinstance(a, torch.Tensor) and a.ndim >= 1]
    if name in ("addmm", "addmm_", "baddbmm", "baddbmm_", "addbmm", "addbmm_", "addmv", "addmv_"):
        mats = mats[1:]  # the accumulated term
    if len(mats) < 2:
        return 0.0
    a, b = mats[0], mats[1]
    if name == "linear":  # x @ weight.T
        return 2.0 * math.prod(a.shape) * b.shape[0] * (4 if a.is_complex() else 1)
    flops = 2.0 * math.prod(a.shape) * (b.shape[-1] if b.ndim >= 2 else 1)
    return flops * (4 if a.is_complex() else 1)


class OpTimer(TorchDispatchMode):
    """Accumulates CPU seconds and calls per aten op, and GEMM FLOPs, while active."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter = collections.Counter()
        self.gemm_flops = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.thread_time_ns()
        result = func(*args, **(kwargs or {}))
        elapsed = (time.thread_time_ns() - start) / 1e9
        name = func.overloadpacket.__name__
        self.seconds[name] += elapsed
        self.calls[name] += 1
        if name in GEMM_OPS:
            self.gemm_flops += gemm_flops(name, args)
        return result


def profile_ops(work: Callable[[], object], repeats: int = 3) -> dict:
    """Per repeat of ``work`` (medians over ``repeats``, each op on its own): ``{"ops": {name: seconds}, "calls":
    {name: count}, "gemm_seconds", "gemm_gflop"}``."""
    timers = []
    for _ in range(repeats):
        timer = OpTimer()
        with timer:
            work()
        timers.append(timer)
    names = set().union(*(t.seconds for t in timers))
    ops = {name: statistics.median(t.seconds.get(name, 0.0) for t in timers) for name in names}
    return {"ops": ops, "calls": {name: statistics.median(t.calls.get(name, 0) for t in timers) for name in names},
            "gemm_seconds": sum(s for name, s in ops.items() if name in GEMM_OPS),
            "gemm_gflop": statistics.median(t.gemm_flops for t in timers) / 1e9}


def breakdown(seconds: float, floor_seconds: float | None, profile: dict, top: int = 6) -> list[tuple[str, float]]:
    """``[(item, seconds)]`` that add up to ``seconds``: the floor, the GEMMs' time above it, the ``top`` largest
    non-GEMM ops, the other ops, and the time outside any op (``seconds`` minus every op's time)."""
    ops = profile["ops"]
    gemm = profile["gemm_seconds"]
    items = []
    if floor_seconds is not None:
        items += [("floor", floor_seconds), ("GEMMs above the floor", gemm - floor_seconds)]
    else:
        items.append(("GEMMs", gemm))
    rest = sorted(((s, name) for name, s in ops.items() if name not in GEMM_OPS), reverse=True)
    items += [(name, s) for s, name in rest[:top]]
    items.append(("other ops", sum(s for s, _ in rest[top:])))
    items.append(("outside any op", seconds - sum(ops.values())))
    return items


__all__ = ["GEMM_OPS", "OpTimer", "breakdown", "gemm_flops", "profile_ops"]
