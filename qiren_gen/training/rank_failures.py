"""Failures every rank learns of: a write that fails on one process (a full disk, a missing permission, a file where
a folder must go) must not leave the other processes waiting in the next barrier until the collective timeout.

`failure_shared_by_ranks` wraps one rank-local part of a multi-process operation (a checkpoint's files, the
final models). Every rank enters the block, also ranks with nothing to do in it; on leaving, the ranks exchange one
status each (an all-gather of ``None`` or a one-line reason), before any barrier. If any rank failed, all of them
run ``cleanup`` and raise the same one-line ``OSError`` naming the rank that failed, so every process exits with
code 2 (``runtime.run_reporting_errors``) instead of hanging.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch.distributed as dist

from .outputs import is_write_error, write_failure


class RankFailure(RuntimeError):
    """Raised on the other ranks when one rank's block failed with something other than a write error (a bug): its
    own rank re-raises the original exception, so its traceback stays available (``QIREN_GEN_DEBUG=1``)."""


def _exchange(accelerator, status: tuple[str, str] | None) -> list[tuple[str, str] | None]:
    """Every rank's ``status``, indexed by rank (one all-gather of small objects; itself with one process)."""
    if accelerator.num_processes == 1:
        return [status]
    statuses: list = [None] * accelerator.num_processes
    dist.all_gather_object(statuses, status)
    return statuses


def _status(failure: Exception, what: str, kept: str | None, accelerator) -> tuple[str, str]:
    """``("write", line)`` for a failed write (the line every rank raises), else ``("internal", type: message)``."""
    rank = accelerator.process_index if accelerator.num_processes > 1 else None
    after = "" if kept is None else f"; {kept}"
    if isinstance(failure, OSError) and failure.errno is None:  # already one line of ours (save_pipeline_atomically)
        return "write", str(failure) + ("" if rank is None else f" (on rank {rank})") + after
    if is_write_error(failure):
        return "write", str(write_failure(failure, what + ("" if rank is None else f" on rank {rank}"))) + after
    return "internal", f"{type(failure).__name__}: {failure}"


@contextlib.contextmanager
def failure_shared_by_ranks(accelerator, what: str, cleanup: Callable[[], None] | None = None,
                            kept: str | None = None) -> Iterator[None]:
    """Run the block on this rank, then learn whether it failed on any rank; if so, ``cleanup()`` and raise on every
    rank: ``OSError("cannot write <what> on rank R: <reason> ...; <kept>")`` for a failed write (``kept``: what is
    still safe, e.g. the earlier checkpoints), else `RankFailure` (and the original exception on the rank it
    happened on).

    Every rank must enter the block at the same point of the run (it ends with a collective).
    """
    failure: Exception | None = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - every failure must reach the other ranks before anyone waits on them
        failure = exc
    status = None if failure is None else _status(failure, what, kept, accelerator)
    failed = [(rank, found) for rank, found in enumerate(_exchange(accelerator, status)) if found is not None]
    if not failed:
        return
    if cleanup is not None:
        cleanup()
    if failure is not None and not is_write_error(failure):
        raise failure
    rank, (kind, reason) = failed[0]
    if kind == "write":
        raise OSError(reason) from None
    raise RankFailure(f"rank {rank} failed while writing {what}: {reason}") from None


__all__ = ["RankFailure", "failure_shared_by_ranks"]
