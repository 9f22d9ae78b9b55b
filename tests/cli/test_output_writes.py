"""``qiren-gen fit`` / ``superres`` / ``sample`` write their outputs so that a kill at any write, or a full disk,
leaves the previous output or none, never a mix, and a full disk is exit 2 with one line.

The kill is real: the command runs in a child process that sends itself SIGKILL at its k-th ``os.replace`` (every
atomic write ends in one) or at its k-th safetensors ``save_file`` (inside ``save_pretrained``), for every k the
command reaches. The full disk is ``RLIMIT_FSIZE`` in the child (writes past the limit fail with ``EFBIG``, as
``ENOSPC`` would on a full disk; Python ignores ``SIGXFSZ``).
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qiren_gen.io.atomic import is_staging

REPO = Path(__file__).resolve().parents[2]

KILLED_AT = r"""
import os, signal, sys
target, where, count_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
calls = 0
if where == "os.replace":
    module, name = os, "replace"
else:
    import safetensors.torch as module
    name = "save_file"
real = getattr(module, name)


def killing(*args, **kwargs):
    global calls
    calls += 1
    if calls == target:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)


setattr(module, name, killing)
from qiren_gen.cli import main
code = main(sys.argv[4:])
open(count_file, "w").write(str(calls))
sys.exit(code)
"""

FIT = ["fit", "--image", "camera", "--size", "8", "--steps", "2", "--qubits", "2", "--output", "out"]


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("QIREN_GEN_DEBUG", None)
    return env


def _qiren_gen(cwd: Path, argv: list[str], fsize: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))

    return subprocess.run([sys.executable, "-m", "qiren_gen.cli", *argv], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=600, preexec_fn=limit)


def _killed_at(cwd: Path, call: int, where: str, argv: list[str]) -> tuple[int, int | None]:
    """``(return code, calls made)`` of ``argv`` run to its ``call``-th ``where`` (0: never killed)."""
    count = cwd / f".calls-{where}-{call}"
    proc = subprocess.run([sys.executable, "-c", KILLED_AT, str(call), where, str(count), *argv], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr[-2000:]
    return proc.returncode, int(count.read_text()) if count.exists() else None


def _files(folder: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file of a result, the writer's staging folders left out."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(is_staging(part) for part in relative.parts):
            found[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _result(folder: Path) -> dict[str, str]:
    """A fit's files, ``metrics.json`` as its seed (it also holds the time the fit took)."""
    files = _files(folder)
    if "metrics.json" in files:
        files["metrics.json"] = str(json.loads((folder / "metrics.json").read_text())["seed"])
    return files


def _classify(found: dict[str, str], runs: dict[str, dict[str, str]]) -> str:
    """Which run's output ``found`` is ("old", "new"), "none" (no metrics.json, every file from one run), or fails."""
    matches = {path: {name for name, files in runs.items() if files.get(path) == digest}
               for path, digest in found.items()}
    strangers = [path for path, names in matches.items() if not names]
    assert not strangers, f"files from neither run: {strangers}"
    owners = {name for names in matches.values() if len(names) == 1 for name in names}  # files equal in both: either
    assert len(owners) <= 1, f"a mix of the old and the new output: {found}"
    if "metrics.json" in found:
        (owner,) = owners
        assert found == runs[owner], f"metrics.json of the {owner} run beside other files: {found}"
        return owner
    return "none"


@pytest.mark.slow
def test_fit_killed_at_every_write_leaves_the_previous_output_or_none(tmp_path):
    old, new = [*FIT, "--seed", "1"], [*FIT, "--seed", "2"]
    runs = {}
    for name, argv in (("old", old), ("new", new)):
        (tmp_path / name).mkdir()
        assert _qiren_gen(tmp_path / name, argv).returncode == 0
        runs[name] = _result(tmp_path / name / "out")
    assert runs["old"]["pipeline/model/diffusion_pytorch_model.safetensors"] != runs["new"][
        "pipeline/model/diffusion_pytorch_model.safetensors"]
    counts = {}
    for where in ("os.replace", "save_file"):
        base = tmp_path / f"count-{where}"
        shutil.copytree(tmp_path / "old", base)
        code, counts[where] = _killed_at(base, 0, where, new)
        assert code == 0 and counts[where] >= 1 and _result(base / "out") == runs["new"]
    kills = [(where, k) for where, n in counts.items() for k in range(1, n + 1)]

    def killed(job: tuple[str, int]) -> str:
        where, k = job
        folder = tmp_path / f"kill-{where}-{k}"
        shutil.copytree(tmp_path / "old", folder)
        code, _ = _killed_at(folder, k, where, new)
        assert code == -signal.SIGKILL, f"not killed at {where} call {k}"
        return _classify(_result(folder / "out"), runs)

    with ThreadPoolExecutor(max_workers=2) as pool:
        seen = dict(zip(kills, pool.map(killed, kills), strict=True))
    assert {"old", "none"} <= set(seen.values()), seen  # kills landed before and inside the publication
    last = tmp_path / f"kill-os.replace-{counts['os.replace']}"
    assert _qiren_gen(last, new).returncode == 0  # the next run clears what a killed one left
    assert _result(last / "out") == runs["new"]
    assert not [p for p in (last / "out").iterdir() if is_staging(p.name)]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["fit", "superres", "sample"])
def test_a_full_disk_is_one_line_exit_2_and_keeps_the_previous_output(tmp_path, command):
    argv = {"fit": FIT, "superres": ["superres", "--image", "camera", "--size", "8", "--scale", "2", "--steps", "2",
                                     "--model", "siren", "--output", "out"],
            "sample": ["sample", "--num-images", "1", "--steps", "2", "--output", "out.png"]}[command]
    assert _qiren_gen(tmp_path, argv).returncode == 0
    target = tmp_path / ("out.png" if command == "sample" else "out")
    before = _files(target) if target.is_dir() else target.read_bytes()
    proc = _qiren_gen(tmp_path, [*argv, "--seed", "5"], fsize=512)  # every file past 512 bytes fails
    lines = [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "File too large" in lines[0] and "nothing half-written was kept" in lines[0], lines
    assert "Traceback" not in proc.stderr
    after = _files(target) if target.is_dir() else target.read_bytes()
    assert after == before  # the previous output, whole
    leftovers = [p.name for p in target.parent.rglob("*") if is_staging(p.name) or p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.slow
def test_fit_names_an_image_whose_file_name_is_not_utf8(tmp_path):
    """The fit, its figure (whose title names the file) and its metrics are written; the name is shown escaped."""
    name = b"\xff\xfe-face.png"
    y, x = np.mgrid[0:16, 0:16]
    Image.fromarray((127 + 100 * np.sin(x * 0.4 + y * 0.3)).astype(np.uint8)).save(
        os.fsdecode(os.path.join(os.fsencode(tmp_path), name)))
    argv = [os.fsencode(sys.executable), b"-m", b"qiren_gen.cli", b"fit", b"--image", name, b"--size", b"8",
            b"--steps", b"1", b"--model", b"siren", b"--output", b"out"]
    proc = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["steps"] == 1 and (tmp_path / "out" / "figure.png").stat().st_size > 0
    assert (tmp_path / "out" / "pipeline" / "model_index.json").is_file()

