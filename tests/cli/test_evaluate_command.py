"""``qiren-gen evaluate`` and ``scripts/evaluate.py`` end to end on a tiny saved pipeline and real LFW faces.

The weight-free ``qiren-pixel-pool`` extractor stands in for Inception (no download here); the default Inception
path is exercised up to its offline failure, which must be one line naming ``--fid-weights``.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import lfw_subset

from qiren_gen.cli import main

ROOT = Path(__file__).resolve().parents[2]
FD = "frechet_distance[qiren-pixel-pool]"


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory) -> str:
    """A tiny untrained QirenGenerationPipeline saved with save_pretrained (3 qubits, latent 6, 8x8 default)."""
    from diffusers import DDIMScheduler

    from qiren_gen.models import LatentDenoiser, LatentModulator, ModulatedQIREN
    from qiren_gen.pipelines import QirenGenerationPipeline
    from qiren_gen.training.prior import make_training_scheduler

    torch.manual_seed(0)
    decoder = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    modulator = LatentModulator.for_decoder(decoder, latent_dim=6)
    prior = LatentDenoiser(latent_dim=6, hidden_dim=16, num_blocks=1, time_embed_dim=8, sample_size=8)
    scheduler = DDIMScheduler.from_config(make_training_scheduler(100).config)
    folder = tmp_path_factory.mktemp("pipe")
    QirenGenerationPipeline(decoder, modulator, prior, scheduler).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory) -> str:
    """LFW's held-out faces 90-99 as 25x25 PNGs (another size than the samples: resized by the protocol)."""
    folder = tmp_path_factory.mktemp("ref")
    for i, im in enumerate((lfw_subset()[90:100] * 255).round().astype(np.uint8)):
        Image.fromarray(im).save(folder / f"face_{i}.png")
    return str(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "qiren_gen.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_evaluate_end_to_end(pipeline_dir, reference_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["evaluate", "--pipeline", pipeline_dir, "--reference", reference_dir, "--num-samples", "12",
               "--resolution", "16", "--num-inference-steps", "2", "--batch-size", "5",
               "--feature-extractor", "qiren-pixel-pool", "--output", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads((out / "metrics.json").read_text())
    assert report["num_samples"] == 12 and report["resolution"] == [16, 16] and report["num_reference"] == 10
    assert report["standard_fid"] is False and FD in report["metrics"] and np.isfinite(report["metrics"][FD])
    assert "kernel_distance[qiren-pixel-pool]_mean" in report["metrics"]  # KID too: N is small
    assert json.loads(captured.out.strip().splitlines()[-1]) == report["metrics"]
    assert "not FID" in captured.err and "sampling" in captured.err  # honest label, progress bar
    assert "Inception" not in captured.out + captured.err  # torch-fidelity's own FID/KID lines stay silent here
    assert Image.open(out / "samples.png").size[0] >= 512
    card = (Path(pipeline_dir) / "README.md").read_text()  # the saved pipeline's model card names the command
    assert "qiren-gen evaluate --pipeline path/to/this/folder --reference" in card and "--fid-weights PATH" in card
    # the saved reference statistics replace the folder; resolution comes from them
    rc = main(["evaluate", "--pipeline", pipeline_dir, "--reference", str(out / "reference_stats.pt"),
               "--num-samples", "12", "--num-inference-steps", "2", "--batch-size", "5",
               "--feature-extractor", "qiren-pixel-pool", "--output", str(tmp_path / "again")])
    assert rc == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["metrics"] == pytest.approx(report["metrics"], rel=1e-9)


def test_offline_inception_is_one_line_naming_fid_weights(pipeline_dir, reference_dir, tmp_path, monkeypatch,
                                                          capsys):
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    monkeypatch.setattr(fe, "URL_INCEPTION_V3", "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    rc = main(["evaluate", "--pipeline", pipeline_dir, "--reference", reference_dir, "--num-samples", "4",
               "--num-inference-steps", "2", "--no-progress", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "--fid-weights PATH" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # failed before sampling: nothing generated, nothing half-written


@pytest.mark.parametrize("case", ["empty_reference", "no_image_column", "missing_weights", "missing_pipeline",
                                  "bad_stats_file"])
def test_bad_input_is_one_line_exit_2(case, pipeline_dir, reference_dir, tmp_path, capsys):
    import datasets

    ref, extra, pipe = str(tmp_path / "ref"), [], pipeline_dir
    if case == "empty_reference":
        os.mkdir(ref)
        expected = "is empty"
    elif case == "no_image_column":
        datasets.Dataset.from_dict({"caption": ["a face", "another"]}).save_to_disk(ref)
        expected = "has no image column"
    elif case == "missing_weights":
        os.mkdir(ref)
        extra = ["--fid-weights", str(tmp_path / "nope.pth")]
        expected = "--fid-weights"
    elif case == "missing_pipeline":
        ref = reference_dir
        pipe = str(tmp_path / "no_pipeline")
        expected = "no_pipeline"
    else:
        ref = str(tmp_path / "stats.pt")
        Path(ref).write_text("hello")
        expected = "not a readable reference statistics file"
    capsys.readouterr()  # drop the set-up's own output (datasets' saving bar)
    rc = main(["evaluate", "--pipeline", pipe, "--reference", ref, "--num-samples", "4", "--num-inference-steps",
               "2", "--no-progress", "--feature-extractor", "qiren-pixel-pool", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and expected in err, err


@pytest.mark.slow
def test_cli_process_exit_code_without_traceback(pipeline_dir):
    rc, _, err = run_cli("evaluate", "--pipeline", "x", "--reference", "y", "--num-samples", "1")
    assert rc == 2 and err.strip() == "qiren-gen evaluate: error: --num-samples must be >= 2 for FID, got 1"
    # a Hub dataset id that cannot be reached (HF_HUB_OFFLINE makes it fail at once instead of retrying)
    os.environ["HF_HUB_OFFLINE"], previous = "1", os.environ.get("HF_HUB_OFFLINE")
    try:
        rc, _, err = run_cli("evaluate", "--pipeline", pipeline_dir, "--reference", "nobody/no-such-faces",
                             "--num-samples", "4", "--feature-extractor", "qiren-pixel-pool")
    finally:
        os.environ.pop("HF_HUB_OFFLINE") if previous is None else os.environ.update(HF_HUB_OFFLINE=previous)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "cannot load dataset 'nobody/no-such-faces'" in err, err


def launch_two_processes(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), str(ROOT / "scripts" / "evaluate.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)


@pytest.mark.slow
def test_two_process_accelerate_launch(pipeline_dir, reference_dir, tmp_path):
    """scripts/evaluate.py under accelerate launch: two CPU processes sample 5 + 4 images, rank 0 scores all 9."""
    proc = launch_two_processes("--pipeline", pipeline_dir, "--reference", reference_dir, "--num_samples", "9",
                                "--num_inference_steps", "2", "--batch_size", "3", "--no_progress",  # scripts' style
                                "--feature-extractor", "qiren-pixel-pool", "--output", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["num_processes"] == 2 and report["samples_per_process"] == [5, 4]
    assert report["num_samples"] == 9 and np.isfinite(report["metrics"][FD])
    assert proc.stdout.count("frechet_distance") == 1  # only the main process reports


@pytest.mark.slow
def test_two_process_bad_reference_fails_on_every_process_without_hanging(pipeline_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = launch_two_processes("--pipeline", pipeline_dir, "--reference", str(tmp_path / "empty"),
                                "--num-samples", "4", "--no-progress", "--feature-extractor", "qiren-pixel-pool")
    assert proc.returncode != 0
    assert proc.stderr.count("qiren-gen evaluate: error: reference folder") == 2  # both ranks, one line each


def test_bundled_pipeline_evaluates_and_its_card_names_the_command(tmp_path, capsys):
    """The repository's pretrained pipeline, scored against LFW's held-out faces (export_lfw_faces's test split);
    without --pipeline, evaluate (like sample) scores the bundled pipeline."""
    from qiren_gen.data.lfw import export_lfw_faces

    bundled = ROOT / "pipelines" / "qiren-lfw-faces"
    assert "qiren-gen evaluate --pipeline pipelines/qiren-lfw-faces" in (bundled / "README.md").read_text()
    lfw = export_lfw_faces(tmp_path / "lfw")
    rc = main(["evaluate", "--reference", str(lfw), "--reference-split", "test",
               "--num-samples", "4", "--num-inference-steps", "2", "--no-progress",
               "--feature-extractor", "qiren-pixel-pool", "--output", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["resolution"] == [25, 25] and report["num_reference"] == 10 and np.isfinite(report["metrics"][FD])
