"""Held-out quality of the row-wise latent update against the dense one it replaced, on the bundled recipe (LFW
faces 0-89 + mirrors, the bundled stage-1 settings of ``research.bundled.build``), side by side in one run.

The dense update lives only in older revisions, so the baseline trains from a detached ``git worktree`` of
``baseline_rev`` (PYTHONPATH pointed at it), the candidate from this checkout; both train ``steps`` stage-1 steps in
their own subprocess, alternately, then this checkout's ``reconstruction_psnr`` scores both: faces 90-99 encoded
with 300 Adam steps (decoder frozen) and decoded, and the training faces at their learned latents (the table).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from qiren_gen.data.datasets import IMAGE_COLUMN, ImageCollator, load_image_dataset
from qiren_gen.data.lfw import export_lfw_faces
from qiren_gen.pipelines.loading import load_stage1
from qiren_gen.training.pipeline_run import reconstruction_psnr

REPO = Path(__file__).resolve().parents[2]

TRAIN = """
import json, sys, time
import torch
sys.path.insert(0, {scripts!r})
torch.set_num_threads(1)
from research.bundled.build import BundleConfig, stage1_config
from qiren_gen.data.lfw import export_lfw_faces
from qiren_gen.training.functa_trainer import train_functa
cfg = BundleConfig(workdir={workdir!r}, stage1_steps={steps}{overrides})
data = export_lfw_faces({lfw!r})
began = time.perf_counter()
summary = train_functa(stage1_config(cfg, data / "train"))
print(json.dumps({{"seconds": time.perf_counter() - began, "train_psnr_all": summary.get("train_psnr_all"),
                  "median_step_seconds": summary["median_step_seconds"], "last_loss": summary["last_loss"]}}))
"""


def _train(code_root: Path, workdir: Path, lfw: Path, steps: int, latent_learning_rate: float | None = None) -> dict:
    overrides = "" if latent_learning_rate is None else f", latent_learning_rate={latent_learning_rate!r}"
    script = TRAIN.format(scripts=str(code_root / "scripts"), workdir=str(workdir), steps=steps, lfw=str(lfw),
                          overrides=overrides)
    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=code_root, capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def heldout_psnr(stage1_dir: Path, lfw: Path, encode_steps: int = 300) -> float:
    """Faces 90-99 encoded (``encode_steps`` Adam steps) and decoded by the stage-1 models in ``stage1_dir``."""
    decoder, modulator = load_stage1(stage1_dir)
    test = load_image_dataset(None, str(lfw), "test", None)
    images = ImageCollator(IMAGE_COLUMN, 25, 1)([row for row in test])
    return reconstruction_psnr(decoder, modulator, images, steps=encode_steps)


def latent_update_quality(work_dir: str, steps: int = 400, baseline_rev: str = "main",
                          rowwise_learning_rates: tuple[float, ...] = ()) -> dict:
    """Train the bundled stage 1 for ``steps`` steps with ``baseline_rev``'s dense update and with this checkout's
    row-wise one (the recipe's latent learning rate, then each of ``rowwise_learning_rates``); print and return
    the held-out PSNRs and their differences from the dense run."""
    torch.set_num_threads(1)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    lfw = export_lfw_faces(work / "lfw")
    baseline_root = work / "baseline-code"
    if not baseline_root.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline_root), baseline_rev],
                       check=True, capture_output=True)
    rev = subprocess.run(["git", "-C", str(baseline_root), "rev-parse", "--short", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    runs = {"dense": (baseline_root, None), "rowwise": (REPO, None)}
    runs.update({f"rowwise_lr{lr:g}": (REPO, lr) for lr in rowwise_learning_rates})
    report: dict = {"steps": steps, "baseline_rev": rev, "load_average_before": os.getloadavg()}
    for name, (root, lr) in runs.items():
        if (work / name / "result.json").is_file():  # finished in an earlier invocation
            report[name] = json.loads((work / name / "result.json").read_text())
            continue
        report[name] = _train(root, work / name, lfw, steps, lr)
        report[name]["heldout_psnr"] = heldout_psnr(work / name / "stage1", lfw)
        (work / name / "result.json").write_text(json.dumps(report[name]))
    for name in runs:
        if name != "dense":
            report[name]["heldout_difference_db"] = report[name]["heldout_psnr"] - report["dense"]["heldout_psnr"]
    report["load_average_after"] = os.getloadavg()
    (work / "latent_update_quality.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    for name in runs:
        r = report[name]
        print(f"bundled stage 1, {steps} steps, {name}: held-out PSNR {r['heldout_psnr']:.2f} dB"
              f" ({r.get('heldout_difference_db', 0.0):+.2f} dB against dense),"
              f" table PSNR {r['train_psnr_all']:.2f} dB,"
              f" median step {r['median_step_seconds'] * 1e3:.0f} ms")
    return report


__all__ = ["heldout_psnr", "latent_update_quality"]
