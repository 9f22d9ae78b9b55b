"""Errors that name their cause in the user's terms: the unreadable file and why, sizes in the command's own flags,
the checkpoint and the resume flag after a stop, "did you mean" for a mistyped flag or choice, and the Hub's failure
in a few words (one line, no traceback; exit 2 for a refused input)."""
from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants, snapshot_download
from PIL import Image

from qiren_gen.cli import main as qiren_gen
from qiren_gen.data.datasets import ImageCollator
from qiren_gen.runtime import hub_error_reason, run_reporting_errors
from qiren_gen.runtime.suggestions import closest
from qiren_gen.training.stopping import TrainingStopped

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines" / "qiren-lfw-faces")


def _train_pipeline():
    spec = importlib.util.spec_from_file_location("train_pipeline_under_test", REPO / "scripts" / "train_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_line(err: str) -> str:
    """The one line a failure printed (the datasets library's "Generating train split" progress bar aside)."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("Generating train split")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("kind", ["text", "too_many_pixels"])
def test_unreadable_data_names_the_file_and_the_reason_counted_once(tmp_path, kind, capsys):
    data = tmp_path / "data"
    data.mkdir()
    if kind == "text":
        (data / "a.png").write_text("not an image")
        reason = "cannot identify image file"
    else:
        Image.new("L", (8000, 8000)).save(data / "a.png")
        reason = "8000x8000 pixels, over the cap"
    code = _train_pipeline().main(["--pretrained_model_name_or_path", PIPELINE, "--train_data_dir", str(data),
                                   "--output_dir", str(tmp_path / "out")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "all 1 image(s) read, none readable" in line, line
    assert str(data / "a.png") in line and reason in line, line
    assert not (tmp_path / "out" / "model_index.json").exists()


def test_an_unreadable_file_is_warned_once_however_often_it_is_met(tmp_path, caplog):
    (tmp_path / "a.png").write_text("not an image")
    collate = ImageCollator("image", 8)
    with caplog.at_level(logging.WARNING, logger="qiren_gen.data.datasets"):
        for _ in range(3):  # three epochs
            collate([{"image": {"path": str(tmp_path / "a.png"), "bytes": None}}])
    warnings = [r.getMessage() for r in caplog.records if "a.png" in r.getMessage()]
    assert collate.skipped == 3 and len(warnings) == 1 and "1 unreadable file(s)" in warnings[0], warnings


def test_a_size_over_the_bounds_is_refused_in_samples_own_flags(tmp_path, capsys):
    code = qiren_gen(["sample", "--resolution", "3000", "--output", str(tmp_path / "x.png")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "--num-images 16 at 3000x3000" in line and "--num-images 7 or fewer" in line, line
    assert "2048x2048" in line and "batch_size" not in line, line
    code = qiren_gen(["sample", "--resolution", "5000", "--num-images", "1", "--output", str(tmp_path / "x.png")])
    assert code == 2 and "4096x4096" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "x.png").exists()


def test_a_stopped_training_run_names_its_checkpoint_and_the_resume_flag(capsys):
    def stopped():
        raise TrainingStopped("stopped at step 3, checkpoint saved in out/stage1/checkpoint-3; continue with "
                              "--resume_from_checkpoint latest")

    code, _ = run_reporting_errors("train_pipeline", stopped)
    line = _one_line(capsys.readouterr().err)
    assert code == 130 and "checkpoint-3" in line and "--resume_from_checkpoint latest" in line, line
    code, _ = run_reporting_errors("train_pipeline", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert code == 130 and _one_line(capsys.readouterr().err) == "train_pipeline: interrupted"


@pytest.mark.parametrize(("argv", "suggestion"), [
    (["sample", "--num_images", "4"], "did you mean --num-images?"),
    (["sample", "--scheduler", "dpmpp"], "did you mean dpm++?"),
    (["fit", "--image", "camera", "--model", "sirn"], "did you mean siren?"),
    (["superres", "--image", "camera", "--outptu", "x"], "did you mean --output?"),
])
def test_a_mistyped_flag_or_choice_gets_did_you_mean(argv, suggestion, tmp_path, capsys):
    if argv[0] == "sample":
        argv = [*argv, "--output", str(tmp_path / "x.png")]
    try:
        code = qiren_gen(argv)
    except SystemExit as exc:
        code = exc.code
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and suggestion in line, line


def test_a_scripts_flag_in_the_other_style_gets_did_you_mean(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        _train_pipeline().parse_args(["--output-dir", str(tmp_path), "--train_data_dir", str(tmp_path)])
    line = _one_line(capsys.readouterr().err)
    assert info.value.code == 2 and "did you mean --output_dir?" in line, line


def test_closest_prefers_the_same_name_in_another_style_and_suggests_nothing_far():
    assert closest("--output-dir", ["--output_dir", "--output"]) == "--output_dir"
    assert closest("--num_images=4", ["--num-images", "--num-samples"]) == "--num-images"
    assert closest("dpmpp", ["ddpm", "dpm++", "ddim"]) == "dpm++"
    assert closest("--zzzz", ["--output", "--seed"]) is None


def test_an_unreachable_hub_says_no_network_not_local_files_only(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(Exception) as info:  # a closed local port: refused at once, no retries
        snapshot_download("qiren-gen-tests/none", endpoint="http://127.0.0.1:9")
    reason = hub_error_reason(info.value)
    assert reason == "no network connection to the Hub, and it is not in the local cache", reason


@pytest.mark.slow
def test_an_offline_hub_id_under_accelerate_launch_is_one_line_without_retries(tmp_path):
    """``accelerate launch --quiet`` (accelerate's flag that drops its own traceback of a failed run) shows the
    script's one line; accelerate ends a failed run with its own exit code 1."""
    (tmp_path / "data").mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--num_processes", "1", "--num_machines",
            "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "scripts" / "train_pipeline.py"),
            "--pretrained_model_name_or_path", "someone/no-such-pipeline", "--train_data_dir", str(tmp_path / "data"),
            "--output_dir", str(tmp_path / "out")]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    line = _one_line(result.stderr)
    assert result.returncode == 1 and "HF_HUB_OFFLINE=1 is set" in line, result.stderr
    assert "local_files_only" not in line and "Retrying" not in result.stderr + result.stdout
