"""Kill and resume: SIGKILL a real training subprocess after a checkpoint, resume with ``latest``, and end with the
same parameters (bitwise, CPU) as an uninterrupted run of the same seed. Stage 1 (functa) and stage 2 (prior)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from qiren_gen.training.checkpointing import STATE_FILE, list_checkpoints, resolve_resume_checkpoint
from testing_utils import tiny_pipeline

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Eight smooth 8x8 grayscale images as an imagefolder dataset."""
    root = tmp_path_factory.mktemp("kill-data")
    (root / "train").mkdir()
    y, x = np.mgrid[0:8, 0:8]
    for i in range(8):
        img = (127 + 100 * np.sin(x * (0.3 + 0.1 * i) + y * 0.2 * i)).astype(np.uint8)
        Image.fromarray(img).save(root / "train" / f"{i}.png")
    return root


def _start(script: str, args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:  # files, not pipes: tqdm's output must never block the child
        return subprocess.Popen([sys.executable, str(REPO / "scripts" / script), *args], env=ENV, cwd=REPO,
                                stdout=handle, stderr=subprocess.STDOUT)


def _kill_after_first_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 240) -> int:
    """SIGKILL ``proc`` as soon as a complete checkpoint exists; returns the newest complete checkpoint's step."""
    deadline = time.monotonic() + timeout
    while not list_checkpoints(out):
        assert proc.poll() is None, f"training exited ({proc.returncode}) before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    return int(list_checkpoints(out)[-1].name.split("-")[1])


def _plant_partial_checkpoints(out: Path, step: int) -> None:
    """What a kill during a checkpoint write can leave: a temp folder and a final-named folder without the marker."""
    shutil.copytree(out / f"checkpoint-{step}", out / f".tmp-checkpoint-{step + 1000}")
    (out / f".tmp-checkpoint-{step + 1000}" / STATE_FILE).write_text('{"step": ')  # truncated JSON
    half = out / f"checkpoint-{step + 2000}"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\0" * 10)
    assert resolve_resume_checkpoint(out, "latest") == out / f"checkpoint-{step}"


def _assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after kill + resume"


@pytest.mark.slow
def test_functa_sigkill_and_resume_matches_uninterrupted(image_folder, tmp_path):
    steps = 80
    common = ["--train_data_dir", str(image_folder), "--resolution", "8", "--n_qubits", "3", "--hidden_layers", "1",
              "--latent_dim", "4", "--train_batch_size", "2", "--learning_rate", "0.03", "--inner_steps", "2",
              "--max_train_steps", str(steps), "--checkpointing_steps", "5", "--checkpoints_total_limit", "3",
              "--logging_steps", "1", "--seed", "3"]
    full, part = tmp_path / "full", tmp_path / "part"
    reference = _start("train_functa.py", [*common, "--output_dir", str(full)], tmp_path / "full.log")
    victim = _start("train_functa.py", [*common, "--output_dir", str(part)], tmp_path / "part.log")
    killed_at = _kill_after_first_checkpoint(victim, part)
    assert killed_at < steps and not (part / "train_summary.json").exists()  # really interrupted mid-run
    names = {p.name for p in (part / f"checkpoint-{killed_at}").iterdir()}
    assert {"decoder.safetensors", "modulator.safetensors"} <= names  # model weights: safetensors, not pickles
    assert not any(n.startswith("custom_checkpoint") for n in names)
    _plant_partial_checkpoints(part, killed_at)

    resumed = _start("train_functa.py", [*common, "--output_dir", str(part), "--resume_from_checkpoint", "latest"],
                     tmp_path / "resume.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resume.log").read_text()[-2000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "full.log").read_text()[-2000:]
    assert f"at step {killed_at}" in (tmp_path / "resume.log").read_text()
    logged = [json.loads(line)["step"] for line in (part / "train_log.jsonl").read_text().splitlines()]
    assert logged[-(steps - killed_at):] == list(range(killed_at + 1, steps + 1))  # continued from the checkpoint
    assert json.loads((part / "train_summary.json").read_text())["steps"] == steps
    for sub in ("decoder", "modulator"):
        _assert_same_tensors(load_file(part / sub / "diffusion_pytorch_model.safetensors"),
                             load_file(full / sub / "diffusion_pytorch_model.safetensors"))


@pytest.mark.slow
def test_prior_sigkill_and_resume_matches_uninterrupted(image_folder, tmp_path):
    from qiren_gen.models import LatentModulator, ModulatedQIREN

    torch.manual_seed(0)
    stage1 = tmp_path / "stage1"
    decoder = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    decoder.save_pretrained(stage1 / "decoder")
    LatentModulator.for_decoder(decoder, latent_dim=4, inner_steps=1).save_pretrained(stage1 / "modulator")
    steps = 1500
    common = ["--stage1_model", str(stage1), "--train_data_dir", str(image_folder), "--resolution", "8",
              "--max_train_steps", str(steps), "--checkpointing_steps", "50", "--checkpoints_total_limit", "3",
              "--train_batch_size", "8", "--hidden_dim", "32", "--num_blocks", "1", "--time_embed_dim", "8",
              "--lr_warmup_steps", "10", "--seed", "5"]
    full, part = tmp_path / "full", tmp_path / "part"
    reference = _start("train_prior.py", [*common, "--output_dir", str(full)], tmp_path / "full.log")
    victim = _start("train_prior.py", [*common, "--output_dir", str(part)], tmp_path / "part.log")
    killed_at = _kill_after_first_checkpoint(victim, part)
    assert killed_at < steps and not (part / "prior").exists()
    _plant_partial_checkpoints(part, killed_at)

    resumed = _start("train_prior.py", [*common, "--output_dir", str(part), "--resume_from_checkpoint", "latest"],
                     tmp_path / "resume.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resume.log").read_text()[-2000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "full.log").read_text()[-2000:]
    log = (tmp_path / "resume.log").read_text()
    assert f"at step {killed_at}" in log and json.loads(log.strip().splitlines()[-1])["global_step"] == steps
    _assert_same_tensors(load_file(part / "prior" / "diffusion_pytorch_model.safetensors"),
                         load_file(full / "prior" / "diffusion_pytorch_model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("stage2_folder", ["stage2", "prior_training"])
def test_train_pipeline_sigkill_in_the_prior_stage_and_resume_matches_uninterrupted(image_folder, tmp_path,
                                                                                    stage2_folder):
    """The one entry point (scripts/train_pipeline.py): killed during stage 2, resumed with ``latest``, stage 1 is
    not redone and the saved pipeline equals an uninterrupted run's, bitwise. ``prior_training``: the killed run's
    stage 2 laid out as earlier versions named its folder, which the resumed run keeps using."""
    tiny_pipeline().save_pretrained(tmp_path / "pretrained")
    steps = 1500
    common = ["--pretrained_model_name_or_path", str(tmp_path / "pretrained"), "--train_data_dir", str(image_folder),
              "--max_train_steps", "3", "--train_batch_size", "4", "--checkpointing_steps", "3",
              "--prior_max_train_steps", str(steps), "--prior_checkpointing_steps", "50", "--prior_train_batch_size",
              "8", "--validation_steps", "100000", "--validation_images", "0", "--seed", "2"]
    full, part = tmp_path / "full", tmp_path / "part"
    reference = _start("train_pipeline.py", [*common, "--output_dir", str(full)], tmp_path / "full.log")
    victim = _start("train_pipeline.py", [*common, "--output_dir", str(part)], tmp_path / "part.log")
    killed_at = _kill_after_first_checkpoint(victim, part / "stage2")
    assert killed_at < steps and not (part / "model_index.json").exists()
    (part / "stage2").rename(part / stage2_folder)
    _plant_partial_checkpoints(part / stage2_folder, killed_at)

    resumed = _start("train_pipeline.py", [*common, "--output_dir", str(part), "--resume_from_checkpoint", "latest"],
                     tmp_path / "resume.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resume.log").read_text()[-2000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "full.log").read_text()[-2000:]
    log = (tmp_path / "resume.log").read_text()
    assert "at step 3" in log and f"at step {killed_at}" in log  # stage 1 done already; stage 2 from its checkpoint
    assert f"stage 2: resumed from {part / stage2_folder / f'checkpoint-{killed_at}'}" in log
    if stage2_folder != "stage2":
        assert not (part / "stage2").exists()  # the former folder is used in place, not copied
    for sub in ("decoder", "modulator", "prior"):
        _assert_same_tensors(load_file(part / sub / "diffusion_pytorch_model.safetensors"),
                             load_file(full / sub / "diffusion_pytorch_model.safetensors"))


SCRATCH = ["--resolution", "8", "--n_qubits", "3", "--hidden_layers", "1", "--latent_dim", "4",
           "--encoding", "auto_decode", "--train_batch_size", "2", "--checkpointing_steps", "4",
           "--prior_train_batch_size", "8", "--prior_hidden_dim", "16", "--prior_num_blocks", "1",
           "--prior_dropout", "0.1", "--prior_lr_warmup_steps", "5", "--validation_steps", "100000",
           "--validation_images", "0", "--psnr_images", "2", "--seed", "4"]
"""A pipeline trained from scratch with auto-decoded latents and a prior with dropout: every draw of both stages."""

SAVED = ("decoder/diffusion_pytorch_model.safetensors", "modulator/diffusion_pytorch_model.safetensors",
         "prior/diffusion_pytorch_model.safetensors", "stage1/latents.safetensors")


def _kill_in_stage1_resume_and_compare(image_folder: Path, tmp_path: Path, extra: list[str]) -> None:
    """A from-scratch train_pipeline run (``SCRATCH`` + ``extra``) SIGKILLed after its first stage-1 checkpoint and
    resumed with ``latest`` ends with every file of ``SAVED`` bitwise an uninterrupted run's."""
    common = ["--train_data_dir", str(image_folder), *SCRATCH, "--max_train_steps", "40", *extra]
    full, part = tmp_path / "full", tmp_path / "part"
    reference = _start("train_pipeline.py", [*common, "--output_dir", str(full)], tmp_path / "full.log")
    victim = _start("train_pipeline.py", [*common, "--output_dir", str(part)], tmp_path / "part.log")
    killed_at = _kill_after_first_checkpoint(victim, part / "stage1")
    assert killed_at < 40 and not (part / "stage2").exists()

    resumed = _start("train_pipeline.py", [*common, "--output_dir", str(part), "--resume_from_checkpoint", "latest"],
                     tmp_path / "resume.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resume.log").read_text()[-2000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "full.log").read_text()[-2000:]
    assert f"at step {killed_at}" in (tmp_path / "resume.log").read_text()
    for name in SAVED:
        _assert_same_tensors(load_file(part / name), load_file(full / name))


@pytest.mark.slow
def test_train_pipeline_from_scratch_sigkill_in_stage1_and_resume_matches_uninterrupted(image_folder, tmp_path):
    """Killed during stage 1: the resumed run's stage-1 models, latent table and the prior built and trained after
    it are bitwise those of an uninterrupted run (the new prior's init and its noise do not depend on what the
    global generator went through)."""
    _kill_in_stage1_resume_and_compare(image_folder, tmp_path,
                                       ["--prior_max_train_steps", "30", "--prior_checkpointing_steps", "10"])


@pytest.mark.slow
def test_train_pipeline_under_train_shots_sigkill_in_stage1_and_resume_matches_uninterrupted(image_folder, tmp_path):
    """Stage 1 under 64 measurement shots per circuit (``--train_shots``): each step's samples are drawn from that
    step's seed, so the steps after the resume draw what the uninterrupted run drew, and the files are bitwise
    equal."""
    _kill_in_stage1_resume_and_compare(image_folder, tmp_path, ["--train_shots", "64", "--prior_max_train_steps",
                                                                "2", "--prior_checkpointing_steps", "2"])
