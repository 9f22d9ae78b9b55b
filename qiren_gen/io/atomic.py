"""The one atomic writer: every file and folder the package writes goes through here.

A file is written complete beside its destination (``.<name>.<random>.tmp`` in the same folder), flushed to disk
(``fsync``), then renamed over the destination in one step, and the folder's entry is flushed too. A kill at any
moment leaves the previous file or the new one, never a truncated mix; a failed write (a full disk, no permission)
removes the temporary file, leaves the previous output untouched and raises `WriteFailed`, one line.

Folders (a pipeline, a model) are saved the same way: complete beside, then moved into place
(`save_folder_atomically`, `save_pipeline_atomically`). Appending a line to a log
(`append_text`) cannot be a rename; a failed append is cut back to the log's previous length.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from safetensors import SafetensorError

from .errors import WriteFailed, quoted

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def _write_errors() -> tuple[type[BaseException], ...]:
    """What a failed write raises: ``OSError``, torch's ``RuntimeError``, safetensors' ``SafetensorError``."""
    return OSError, RuntimeError, SafetensorError


def is_write_error(exc: BaseException) -> bool:
    """Whether ``exc`` is what a failed write raises (see `write_failure`)."""
    return isinstance(exc, _write_errors())


def write_failure(exc: BaseException, what: str) -> WriteFailed:
    """One line for a failed write of ``what`` (``No space left on device``, ``File too large``, ...)."""
    if isinstance(exc, WriteFailed):
        return exc
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc).strip().splitlines() or [""])[0]
    reason = reason.split("I/O error: ")[-1]  # safetensors: "Error while serializing: I/O error: <the OS reason>"
    code = exc.errno if isinstance(exc, OSError) else None
    hint = (" (no permission to write there?)" if code in _DENIED
            else " (is the disk full?)" if code is None or code in _FULL else "")
    return WriteFailed(f"cannot write {what}: {reason or type(exc).__name__}{hint}; nothing half-written was kept")


def _fsync_path(path: Path, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk; a folder that cannot be opened is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:  # some file systems cannot flush a folder; a file must be flushed
            raise
    finally:
        os.close(fd)


def write_file_with(path: str | os.PathLike, save: Callable[[str], Any], what: str | None = None) -> Path:
    """Write ``path`` atomically with ``save(temporary_path)``: any writer that takes a path (``safetensors``'
    ``save_file``, PIL's ``Image.save``, ``scipy.io.wavfile.write``). Returns ``path``."""
    path = Path(path)
    what = what or quoted(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        save(str(tmp))
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, _write_errors()):
            raise write_failure(exc, what) from None
        raise
    _fsync_path(path.parent, directory=True)
    return path


def write_with(path: str | os.PathLike, fill: Callable[[Any], Any], what: str | None = None) -> Path:
    """Write ``path`` atomically with ``fill(binary_handle)``: any writer that takes an open file."""

    def save(tmp: str) -> None:
        with open(tmp, "xb") as handle:
            fill(handle)

    return write_file_with(path, save, what)


def write_bytes(path: str | os.PathLike, data: bytes, what: str | None = None) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_with(path, lambda handle: handle.write(data), what)


def write_text(path: str | os.PathLike, text: str, what: str | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), what)


def write_json(path: str | os.PathLike, value: Any, what: str | None = None, indent: int | None = 2,
               sort_keys: bool = False) -> Path:
    """Write ``value`` as JSON (and a final line break) to ``path`` atomically; NaN / inf are refused (JSON has
    none) before anything is written."""
    text = json.dumps(value, indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"
    return write_text(path, text, what)


def save_image(path: str | os.PathLike, image: Any, format: str | None = None, what: str | None = None,
               **options: Any) -> Path:
    """Save a PIL image (or an ``(H, W[, C])`` uint8 array) to ``path`` atomically, its format from the suffix."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    path = Path(path)
    if format is None:
        format = Image.registered_extensions().get(path.suffix.lower())
        if format is None:
            raise WriteFailed(f"cannot write {what or quoted(path)}: unknown image suffix "
                              f"{quoted(path.suffix or '(none)')} (use .png)")
    return write_with(path, lambda handle: image.save(handle, format=format, **options), what)


def save_figure(path: str | os.PathLike, figure: Any, what: str | None = None, **savefig_options: Any) -> Path:
    """Save a matplotlib figure to ``path`` atomically, its format from the suffix (``.png``, ``.svg``, ``.pdf``)."""
    path = Path(path)
    format = path.suffix.lstrip(".").lower() or "png"
    return write_with(path, lambda handle: figure.savefig(handle, format=format, **savefig_options), what)


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None,
                 what: str | None = None) -> Path:
    """Save a ``{name: tensor}`` dict as safetensors (never a pickle) to ``path`` atomically."""
    from safetensors.torch import save_file  # noqa: PLC0415 (torch: qiren_gen.io stays torch-free)

    return write_file_with(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), what)


def append_text(path: str | os.PathLike, text: str, what: str | None = None) -> Path:
    """Append ``text`` (UTF-8) to ``path`` (a log) in one write; a failed append cuts the file back to its
    previous length, so the lines before it stay whole."""
    path = Path(path)
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_failure(exc, what or quoted(path)) from None
    try:
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise write_failure(exc, what or quoted(path)) from None
    finally:
        os.close(fd)
    return path


# Folders --------------------------------------------------------------------------------------------------------



def _save_beside(saveable: Any, saving: Path, replaced: Path, what: str) -> None:
    """``saveable.save_pretrained(saving)`` after removing what a run killed mid-save left (``saving``,
    ``replaced``: never part of a result); a failed write removes ``saving`` and raises one line."""
    for stale in (saving, replaced):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        saveable.save_pretrained(saving)
    except _write_errors() as exc:
        shutil.rmtree(saving, ignore_errors=True)
        raise write_failure(exc, what) from None


STAGING_PREFIXES = (".saving-", ".replaced-")
"""Names of the folders where a result is written before it is published, and where the old one waits while it is
replaced: what a killed save leaves there is never part of a result (the next save removes it)."""


def is_staging(name: str) -> bool:
    """Whether ``name`` (a file or folder name) is one of the writer's staging folders (`STAGING_PREFIXES`)."""
    return name.startswith(STAGING_PREFIXES)


def _staging_names(out: Path, marker: str) -> tuple[Path, Path]:
    """The folders inside ``out`` where a new result is written and where the old one waits while it is replaced."""
    kind = "pipeline" if marker == "model_index.json" else "output"
    return out / f".saving-{kind}", out / f".replaced-{kind}"


def publish_entries(staging: str | os.PathLike, out: str | os.PathLike, marker: str) -> None:
    """Move every entry of the complete folder ``staging`` into ``out`` so that ``out`` never holds old and new
    entries together: ``out/marker`` (what makes ``out`` a result) is removed first, then the old entries that the
    new set replaces are moved aside, the new ones moved in, and ``marker`` renamed in last (the commit). A kill at any
    moment leaves the previous result, the new one, or a folder without ``marker`` holding only old or only new
    (each entry whole). Other files in ``out`` are kept; ``staging`` is removed."""
    staging, out = Path(staging), Path(out)
    replaced = _staging_names(out, marker)[1]
    shutil.rmtree(replaced, ignore_errors=True)
    entries = sorted(p.name for p in staging.iterdir() if p.name != marker)
    if (out / marker).exists():
        os.unlink(out / marker)  # from here until the last rename, out is no result at all
    replaced.mkdir()
    for name in entries:
        if (out / name).exists() or (out / name).is_symlink():
            os.replace(out / name, replaced / name)
    for name in entries:
        os.replace(staging / name, out / name)
    os.replace(staging / marker, out / marker)  # the commit: one rename makes the new result visible
    _fsync_path(out, directory=True)
    shutil.rmtree(replaced, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def save_entries_with(out: str | os.PathLike, save: Callable[[Path], Any], marker: str,
                      what: str | None = None) -> None:
    """Write a result folder's entries with ``save(staging)`` (``staging``: an empty folder inside ``out``), then
    `publish_entries` them into ``out`` with ``marker`` last. A failed write (a full disk) removes ``staging``, leaves
    ``out``'s previous result untouched and raises `WriteFailed`, one line; a kill leaves it or the new one."""
    out = Path(out)
    what = what or quoted(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failure(exc, what) from None
    if any(is_staging(part) for part in out.parts):  # inside a result being staged: the enclosing save publishes
        save(out)
        return
    staging, replaced = _staging_names(out, marker)
    for stale in (staging, replaced):  # what a run killed mid-save left: never part of a result
        shutil.rmtree(stale, ignore_errors=True)
    try:
        staging.mkdir()
        save(staging)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, WriteFailed):  # one file's line: named as it will be in out, not in staging
            raise WriteFailed(str(exc).replace(str(staging), str(out))) from None
        if is_write_error(exc):
            raise write_failure(exc, what) from None
        raise
    if not (staging / marker).is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise WriteFailed(f"cannot write {what}: the saved result has no {marker}; nothing was published")
    try:
        publish_entries(staging, out, marker)
    except OSError as exc:
        raise write_failure(exc, what) from None


def save_pipeline_with(out: str | os.PathLike, save: Callable[[Path], Any], what: str | None = None) -> None:
    """A pipeline folder written by ``save(staging)`` (diffusers' ``save_pretrained`` and the files beside it),
    published into ``out`` with ``model_index.json`` last: a kill at any moment leaves ``out``'s previous pipeline
    or none, never a mix; a failed write is one `WriteFailed` line and the previous pipeline stays whole."""
    save_entries_with(out, save, "model_index.json", what or f"the pipeline to {quoted(out)}")


def save_pipeline_atomically(pipe: Any, out: str | os.PathLike) -> None:
    """``pipe.save_pretrained(out)`` so that a kill at any moment leaves ``out``'s previous pipeline or none
    (`save_pipeline_with`). Other files in ``out`` (checkpoints, logs, samples) are kept."""
    save_pipeline_with(out, pipe.save_pretrained)


def save_folder_atomically(saveable: Any, folder: str | os.PathLike) -> None:
    """``saveable.save_pretrained(folder)`` (a model or a scheduler) so that a kill at any moment leaves
    ``folder``'s previous contents or no ``folder`` (the previous one then waits as ``.replaced-<name>`` beside
    it), never a mix. A failed write raises one line and the previous folder is untouched."""
    folder = Path(folder)
    saving, replaced = folder.parent / f".saving-{folder.name}", folder.parent / f".replaced-{folder.name}"
    _save_beside(saveable, saving, replaced, f"{quoted(folder.name)} to {quoted(folder.parent)}")
    if folder.exists():
        os.replace(folder, replaced)
    os.replace(saving, folder)  # the commit
    _fsync_path(folder.parent, directory=True)
    shutil.rmtree(replaced, ignore_errors=True)


__all__ = ["STAGING_PREFIXES", "append_text", "is_staging", "is_write_error", "publish_entries", "save_entries_with",
           "save_figure", "save_folder_atomically", "save_image", "save_pipeline_atomically", "save_pipeline_with",
           "save_tensors", "write_bytes", "write_failure", "write_file_with", "write_json", "write_text", "write_with"]
