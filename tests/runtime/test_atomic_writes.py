"""The atomic writer: a new file is whole or absent, an existing output is never damaged by a failed write (a full
disk, a bad target), and every failure is one line."""
from __future__ import annotations

import errno
import json
import os
import resource
import signal

import numpy as np
import pytest
from PIL import Image

from qiren_gen.io import (
    WriteFailed,
    append_text,
    save_figure,
    save_image,
    write_bytes,
    write_json,
    write_text,
    write_with,
)
from qiren_gen.runtime.errors import run_reporting_errors


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_file_is_replaced_whole(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"psnr": 1.0})
    write_json(path, {"psnr": 2.0})
    assert json.loads(path.read_text()) == {"psnr": 2.0} and leftovers(tmp_path) == []
    save_image(tmp_path / "s.png", np.full((4, 4), 7, np.uint8))
    assert Image.open(tmp_path / "s.png").getpixel((0, 0)) == 7


def test_a_failed_write_keeps_the_previous_file_and_is_one_line(tmp_path, capsys):
    path = tmp_path / "s.png"
    write_bytes(path, b"good")

    def fill(handle):
        handle.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteFailed) as info:
        write_with(path, fill)
    assert path.read_bytes() == b"good" and leftovers(tmp_path) == []
    message = str(info.value)
    assert "No space left on device (is the disk full?)" in message and "'" + str(path) + "'" in message
    code, _ = run_reporting_errors("qiren-gen", lambda: write_with(path, fill))
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_full_disk_keeps_the_previous_file(tmp_path):
    """The disk fills in a forked child: ``RLIMIT_FSIZE`` makes writes past 4 KiB fail (EFBIG), as ENOSPC would."""
    path = tmp_path / "grid.png"
    write_bytes(path, b"previous")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
            try:
                write_bytes(path, b"x" * 100_000)
                message = "written"
            except Exception as exc:  # noqa: BLE001 - reported to the parent as observed
                message = f"{type(exc).__name__}: {exc}"
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as handle:
        message = handle.read()
    assert message.startswith("WriteFailed: cannot write") and "File too large" in message, message
    assert path.read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_bad_targets_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteFailed, match="cannot write .*Not a directory"):
        write_text(tmp_path / "file" / "out.txt", "y")
    with pytest.raises(WriteFailed, match="unknown image suffix"):
        save_image(tmp_path / "s.weird", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json(tmp_path / "m.json", {"psnr": float("nan")})
    assert not (tmp_path / "m.json").exists()


def test_a_failed_append_is_cut_back_to_the_lines_before(tmp_path):
    log = tmp_path / "train_log.jsonl"
    append_text(log, '{"step": 1}\n')
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
            try:
                append_text(log, '{"step": 2, "pad": "' + "x" * 200 + '"}\n')
                message = "written"
            except Exception as exc:  # noqa: BLE001
                message = f"{type(exc).__name__}: {exc}"
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as handle:
        assert handle.read().startswith("WriteFailed")
    assert log.read_text() == '{"step": 1}\n'


def test_a_figure_is_saved_atomically_by_its_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(tmp_path / "f.svg", fig)
    plt.close(fig)
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml") and leftovers(tmp_path) == []


def test_a_figure_titled_with_a_non_utf8_file_name_is_saved(tmp_path):
    """``fit --image`` titles its figure with the file name; one that is not UTF-8 used to fail the save after the
    whole fit."""
    from qiren_gen.figures import plot_fit

    name = os.fsdecode(b"face\xff\x1b.png")
    plot_fit(np.zeros((8, 8)), np.ones((8, 8)), tmp_path / "fit.png", title=f"fit of {name}")
    assert Image.open(tmp_path / "fit.png").size[0] > 0 and leftovers(tmp_path) == []
