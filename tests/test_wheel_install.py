"""Installed like a user installs it: a built wheel ships the bundled pipeline and ``qiren-gen sample`` runs from it,
outside the checkout (no repository on the path, another working directory)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from qiren_gen.pipelines.generation import BUNDLED_PIPELINE

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "qiren_gen",
           f"pipelines/{BUNDLED_PIPELINE}")


@pytest.mark.slow
def test_wheel_ships_the_bundled_pipeline_and_samples_outside_the_checkout(tmp_path):
    src = tmp_path / "src"  # a copy: the in-tree build writes build/ and *.egg-info, never into the checkout
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "bundled"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, env=env, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("qiren_gen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.split(f"qiren_gen/bundled/{BUNDLED_PIPELINE}/", 1)[1] for n in names
               if n.startswith(f"qiren_gen/bundled/{BUNDLED_PIPELINE}/")}
    expected = {str(p.relative_to(REPO / "pipelines" / BUNDLED_PIPELINE))
                for p in (REPO / "pipelines" / BUNDLED_PIPELINE).rglob("*") if p.is_file()}
    assert shipped == expected and "model_index.json" in shipped
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)  # the SPDX license-files

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True, env=env,
                   capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_env = {**env, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    probe = subprocess.run([sys.executable, "-c", "import qiren_gen; print(qiren_gen.__file__)"], cwd=elsewhere,
                           env=run_env, capture_output=True, text=True, timeout=60)
    assert Path(probe.stdout.strip()).is_relative_to(site)  # the installed copy, not the checkout's editable install
    sample = subprocess.run([str(site / "bin" / "qiren-gen"), "sample", "--num-images", "2", "--steps", "2",
                             "--resolution", "16", "--output", "faces.png"],
                            cwd=elsewhere, env=run_env, capture_output=True, text=True, timeout=120)
    assert sample.returncode == 0, sample.stderr[-2000:]
    assert (elsewhere / "faces.png").is_file() and "2 images, 16x16" in sample.stdout  # found in site/, not pipelines/
