"""A training run's output folder: one run at a time, a final pipeline that is old or new but never a mix, and
write failures (a full disk) as one line that leaves no temporary folder behind.

* ``output_dir_lock``: an advisory ``flock`` on ``OUTPUT_DIR/.run.lock``, taken before anything else is written;
  a second run into the same folder is refused at once, naming the process that holds it. The kernel drops the lock
  when its process dies, so a killed run never leaves the folder locked.
* ``save_pipeline_atomically``, ``save_folder_atomically``, ``write_failure``: the package's one atomic writer
  (`qiren_gen.io.atomic`), re-exported here for the training scripts.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..io.atomic import is_write_error, save_folder_atomically, save_pipeline_atomically, write_failure

LOCK_FILE = ".run.lock"
"""Name of the lock file inside an output folder (never counted as content of the folder)."""


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
    import fcntl  # noqa: PLC0415 - POSIX-only: imported where the lock is taken, so the module imports everywhere

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


__all__ = ["LOCK_FILE", "is_write_error", "output_dir_lock", "save_folder_atomically", "save_pipeline_atomically",
           "write_failure"]
