"""Functa training with Accelerate: two-process data parallel, checkpoints and resume, bad input."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.functa import decode_latents, encode_images
from qiren_gen.models import LatentModulator, ModulatedQIREN
from qiren_gen.training.checkpointing import STATE_FILE, list_checkpoints, resolve_resume_checkpoint

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_functa.py"
TINY = ["--resolution", "8", "--n_qubits", "3", "--hidden_layers", "1", "--latent_dim", "4",
        "--train_batch_size", "2", "--learning_rate", "0.03", "--inner_steps", "2"]


@pytest.fixture()
def tiny_folder(tmp_path):
    """Eight smooth 8x8 grayscale images (plus mixed sizes/modes) as an imagefolder."""
    folder = tmp_path / "data" / "train"
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:8, 0:8]
    for i in range(8):
        img = (127 + 100 * np.sin(x * (0.3 + 0.1 * i) + y * 0.2 * i)).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i}.png")
    Image.fromarray(np.full((10, 14, 3), 90, np.uint8)).save(folder / "rgb.png")
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def _main(argv):
    spec = importlib.util.spec_from_file_location("train_functa_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def _params(folder: Path) -> torch.Tensor:
    decoder = ModulatedQIREN.from_pretrained(folder / "decoder")
    modulator = LatentModulator.from_pretrained(folder / "modulator")
    return torch.cat([p.detach().reshape(-1) for p in [*decoder.parameters(), *modulator.parameters()]])


@pytest.mark.slow
def test_two_process_data_parallel(tiny_folder, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT),
           "--train_data_dir", str(tiny_folder), "--output_dir", str(out), "--max_train_steps", "8",
           "--checkpointing_steps", "4", *TINY]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert summary["max_rank_parameter_difference"] == 0.0  # all ranks gathered: bitwise identical parameters
    assert summary["last_loss"] < summary["first_loss"]
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-4", "checkpoint-8"]
    assert (out / "checkpoint-8" / "random_states_1.pkl").is_file()  # both ranks' RNG states were saved
    decoder = ModulatedQIREN.from_pretrained(out / "decoder")
    modulator = LatentModulator.from_pretrained(out / "modulator")
    images = torch.rand(2, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        assert decode_latents(decoder, modulator, encode_images(decoder, modulator, images), 16, 16).shape == (
            2, 1, 16, 16)


def test_resume_matches_uninterrupted_run(tiny_folder, tmp_path):
    common = ["--train_data_dir", str(tiny_folder), "--checkpointing_steps", "3", *TINY]
    assert _main([*common, "--output_dir", str(tmp_path / "full"), "--max_train_steps", "6"]) == 0
    part = tmp_path / "part"
    assert _main([*common, "--output_dir", str(part), "--max_train_steps", "3"]) == 0
    assert resolve_resume_checkpoint(part, "latest").name == "checkpoint-3"
    assert _main([*common, "--output_dir", str(part), "--max_train_steps", "6", "--resume_from_checkpoint",
                  "latest"]) == 0
    torch.testing.assert_close(_params(part), _params(tmp_path / "full"), rtol=0, atol=0)


def test_a_run_folder_of_the_hyphenated_decoder_names_resumes(tiny_folder, tmp_path):
    """A stage-1 folder whose checkpoint records ``decoder: "modulated-qiren"`` (the spelling before snake_case)
    resumes under the current name and under the old one, and ends as an uninterrupted run does."""
    common = ["--train_data_dir", str(tiny_folder), "--checkpointing_steps", "3", *TINY]
    assert _main([*common, "--output_dir", str(tmp_path / "full"), "--max_train_steps", "6",
                  "--decoder", "modulated_qiren"]) == 0
    for resumed_as in ("modulated_qiren", "modulated-qiren"):
        part = tmp_path / resumed_as
        assert _main([*common, "--output_dir", str(part), "--max_train_steps", "3",
                      "--decoder", "modulated-qiren"]) == 0
        state_file = part / "checkpoint-3" / STATE_FILE
        state = json.loads(state_file.read_text())
        assert state["config"]["decoder"] == "modulated_qiren"  # saved under the current name
        state["config"]["decoder"] = "modulated-qiren"  # as earlier versions wrote it
        state_file.write_text(json.dumps(state))
        assert _main([*common, "--output_dir", str(part), "--max_train_steps", "6", "--decoder", resumed_as,
                      "--resume_from_checkpoint", "latest"]) == 0
        torch.testing.assert_close(_params(part), _params(tmp_path / "full"), rtol=0, atol=0)


def test_bad_input_gives_one_line_errors_and_keeps_checkpoints(tiny_folder, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--train_data_dir", str(tiny_folder), "--output_dir", str(out), *TINY]
    assert _main([*common, "--max_train_steps", "2", "--checkpointing_steps", "2"]) == 0
    capsys.readouterr()
    # a checkpoint made with another config: refused before anything is touched
    assert _main([*common, "--max_train_steps", "4", "--latent_dim", "5", "--resume_from_checkpoint", "latest"]) == 2
    err = capsys.readouterr().err.strip()
    assert "different configuration" in err and "latent_dim" in err and len(err.splitlines()) == 1
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-2"]
    assert _main([*common, "--resume_from_checkpoint", str(tmp_path / "nope")]) == 2
    assert "not a complete checkpoint" in capsys.readouterr().err
    assert _main([*common[:-len(TINY)], *TINY, "--resolution", "1"]) == 2
    assert "resolution must be an int >= 2" in capsys.readouterr().err
    assert _main([*common, "--image_column", "pixels"]) == 2
    assert "image column 'pixels' not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _main(["--train_data_dir", str(empty), "--output_dir", str(out), *TINY]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_corrupt_image_is_skipped_and_training_finishes(tiny_folder, tmp_path):
    (tiny_folder / "train" / "zz_broken.png").write_bytes(b"not an image at all")
    out = tmp_path / "run"
    assert _main(["--train_data_dir", str(tiny_folder), "--output_dir", str(out), "--max_train_steps", "10",
                  "--checkpointing_steps", "10", "--train_batch_size", "5", *TINY[:-6], "--inner_steps", "1"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 10 and summary["skipped_images"] >= 1


@pytest.mark.parametrize("modulation", ["shift", "angles"])
def test_bf16_mixed_precision_trains(tiny_folder, tmp_path, modulation):
    out = tmp_path / "run"
    assert _main(["--train_data_dir", str(tiny_folder), "--output_dir", str(out), "--max_train_steps", "3",
                  "--mixed_precision", "bf16", "--modulation", modulation, *TINY]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 3 and np.isfinite(summary["last_loss"])


def test_streaming_dataset_trains_across_epochs(tiny_folder, tmp_path):
    out = tmp_path / "run"
    assert _main(["--train_data_dir", str(tiny_folder), "--output_dir", str(out), "--streaming",
                  "--max_train_steps", "7", "--checkpointing_steps", "7", *TINY]) == 0  # 9 images / 2 per step
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 7
