"""A training run's output folder: one run at a time, a final pipeline that is old or new but never a mix, and
write failures (a full disk) as one line that leaves no temporary folder behind.

* ``output_dir_lock``: an advisory ``flock`` on ``OUTPUT_DIR/.run.lock``, taken before anything else is written;
  a second run into the same folder is refused at once, naming the process that holds it. The kernel drops the lock
  when its process dies, so a killed run never leaves the folder locked.
* ``save_pipeline_atomically``: the pipeline is written complete into a temporary folder inside ``OUTPUT_DIR``,
  then moved into place with ``model_index.json`` (what makes a folder a pipeline) removed first and put back last;
  a kill at any moment leaves the previous pipeline, or no ``model_index.json`` (no pipeline), never a mix.
* ``write_failure``: an ``OSError`` (or torch's ``RuntimeError`` for a failed write) as one ``OSError`` line.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from safetensors import SafetensorError

LOCK_FILE = ".run.lock"
"""Name of the lock file inside an output folder (never counted as content of the folder)."""

_SAVING = ".saving-pipeline"
_REPLACED = ".replaced-pipeline"


def _is_main_process() -> bool:
    """The process that owns the output folder: rank 0 of a launched run, or a plain single process."""
    return int(os.environ.get("RANK", "0")) == 0 and int(os.environ.get("LOCAL_RANK", "0")) == 0


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"


@contextlib.contextmanager
def output_dir_lock(out: str | os.PathLike, program: str) -> Iterator[Path]:
    """Hold ``out`` for this run: create it if needed and lock it; ``OSError`` (one line naming the holder) when
    another run holds it. A folder this call created is removed again when the run fails before writing into it."""
    out = Path(out)
    if not _is_main_process():  # the launched run's main process holds the lock for all of them
        yield out
        return
    import fcntl  # POSIX-only: imported where the lock is taken, so the module imports everywhere

    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise OSError(f"--output_dir {out}: '{parent}' is a file, not a folder")
    created = not out.exists() or [p.name for p in out.iterdir()] == [LOCK_FILE]  # (a killed run's lock file)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise OSError(f"--output_dir {out} is in use by another run ({_holder(path)}); wait for it to finish or "
                      "choose another folder") from None
    try:
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # the file was removed or replaced between open and lock: a race lost
            raise OSError(f"--output_dir {out} is in use by another run ({_holder(path)}); wait for it to finish or "
                          "choose another folder")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "program": program,
                "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        try:
            yield out
        finally:
            if created and [p.name for p in out.iterdir()] == [LOCK_FILE]:  # a failed run leaves no empty folder
                os.unlink(path)
                with contextlib.suppress(OSError):
                    out.rmdir()
    finally:
        os.close(fd)


def _write_errors() -> tuple[type[BaseException], ...]:
    """What a failed write raises: ``OSError``, torch's ``RuntimeError``, safetensors' ``SafetensorError``."""
    return OSError, RuntimeError, SafetensorError


def is_write_error(exc: BaseException) -> bool:
    """Whether ``exc`` is what a failed write raises (see ``write_failure``)."""
    return isinstance(exc, _write_errors())


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def write_failure(exc: BaseException, what: str) -> OSError:
    """One ``OSError`` line for a failed write of ``what`` (``No space left on device``, ``File too large``, ...)."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc).strip().splitlines() or [""])[0]
    reason = reason.split("I/O error: ")[-1]  # safetensors: "Error while serializing: I/O error: <the OS reason>"
    code = exc.errno if isinstance(exc, OSError) else None
    hint = (" (no permission to write there?)" if code in _DENIED
            else " (is the disk full?)" if code is None or code in _FULL else "")
    return OSError(f"cannot write {what}: {reason or type(exc).__name__}{hint}; nothing half-written was kept")


def _pipeline_entries(folder: Path) -> list[str]:
    """Names a saved pipeline consists of (components, entry module, model card), ``model_index.json`` excluded."""
    return sorted(p.name for p in folder.iterdir() if p.name != "model_index.json")


def _save_beside(saveable, saving: Path, replaced: Path, what: str) -> None:
    """``saveable.save_pretrained(saving)`` after removing what a run killed mid-save left (``saving``,
    ``replaced``: never part of a result); a failed write removes ``saving`` and raises one ``OSError`` line."""
    for stale in (saving, replaced):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        saveable.save_pretrained(saving)
    except _write_errors() as exc:
        shutil.rmtree(saving, ignore_errors=True)
        raise write_failure(exc, what) from None


def save_pipeline_atomically(pipe, out: str | os.PathLike) -> None:
    """``pipe.save_pretrained(out)`` so that a kill at any moment leaves ``out``'s previous pipeline or none.

    Other files in ``out`` (checkpoints, logs, samples) are kept. A failed write (a full disk) raises one
    ``OSError`` line and removes the temporary folder; the previous pipeline is then still complete.
    """
    out = Path(out)
    saving, replaced = out / _SAVING, out / _REPLACED
    _save_beside(pipe, saving, replaced, f"the pipeline to {out}")
    entries = _pipeline_entries(saving)
    index = out / "model_index.json"
    if index.exists():
        os.unlink(index)  # from here until the last rename, out is no pipeline at all (never a mix)
    replaced.mkdir()
    for name in entries:
        if (out / name).exists():
            os.replace(out / name, replaced / name)
        os.replace(saving / name, out / name)
    os.replace(saving / "model_index.json", index)  # the commit: one rename makes the new pipeline visible
    shutil.rmtree(replaced, ignore_errors=True)
    shutil.rmtree(saving, ignore_errors=True)


def save_folder_atomically(model, folder: str | os.PathLike) -> None:
    """``model.save_pretrained(folder)`` (a model or a scheduler) so that a kill at any moment leaves ``folder``'s
    previous contents or no ``folder`` (the previous one then waits as ``.replaced-<name>`` beside it), never a mix.

    A failed write (a full disk) raises one ``OSError`` line and the previous folder is untouched.
    """
    folder = Path(folder)
    saving, replaced = folder.parent / f".saving-{folder.name}", folder.parent / f".replaced-{folder.name}"
    _save_beside(model, saving, replaced, f"{folder.name} to {folder.parent}")
    if folder.exists():
        os.replace(folder, replaced)
    os.replace(saving, folder)  # the commit
    shutil.rmtree(replaced, ignore_errors=True)


__all__ = ["LOCK_FILE", "is_write_error", "output_dir_lock", "save_folder_atomically", "save_pipeline_atomically",
           "write_failure"]
