"""``qiren-gen sample``: writes a PNG grid (and single images); bad input is one line and exit code 2."""
import subprocess
import sys

import pytest
from PIL import Image

from qiren_gen.cli import main
from testing_utils import tiny_pipeline


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-pipe")
    tiny_pipeline().save_pretrained(folder)
    return folder


def test_sample_writes_grid_and_singles(pipe_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    rc = main(["sample", "--pipeline", str(pipe_dir), "--num-images", "4", "--height", "9", "--width", "13",
               "--steps", "3", "--seed", "1", "--output", str(out), "--save-individual", str(tmp_path / "single")])
    assert rc == 0
    assert Image.open(out).size == (2 * 13, 2 * 9)
    singles = sorted((tmp_path / "single").glob("*.png"))
    assert len(singles) == 4 and Image.open(singles[0]).size == (13, 9)
    assert "wrote" in capsys.readouterr().out
    again = tmp_path / "again.png"
    assert main(["sample", "--pipeline", str(pipe_dir), "--num-images", "4", "--height", "9", "--width", "13",
                 "--steps", "3", "--seed", "1", "--output", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()  # same seed, same file
    ddpm = tmp_path / "ddpm.png"
    assert main(["sample", "--pipeline", str(pipe_dir), "--num-images", "3", "--resolution", "6", "--steps", "2",
                 "--scheduler", "ddpm", "--output", str(ddpm)]) == 0
    assert Image.open(ddpm).size == (18, 6)  # 3 images: one row of three
    default = tmp_path / "default.png"
    assert main(["sample", "--pipeline", str(pipe_dir), "--num-images", "1", "--steps", "1",
                 "--output", str(default)]) == 0
    assert Image.open(default).size == (128, 128)  # no size flag: 128x128, whatever the training size (8 here)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--resolution", "0"], "height must be >= 1"),
        (["--height", "5"], "give --height and --width together"),
        (["--resolution", "5000"], "documented bound"),
        (["--num-images", "0"], "--num-images must be >= 1"),
        (["--threads", "0"], "--threads must be >= 1"),
    ],
)
def test_bad_arguments_exit_2_one_line(pipe_dir, tmp_path, capsys, extra, message):
    rc = main(["sample", "--pipeline", str(pipe_dir), "--output", str(tmp_path / "x.png"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_bad_sources_and_outputs_exit_2(pipe_dir, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cases = [
        (["--pipeline", str(tmp_path), "--output", str(tmp_path / "a.png")], "not a pipeline folder"),
        (["--pipeline", "qiren-gen-tests/missing", "--output", str(tmp_path / "a.png")],
         "cannot reach the Hugging Face Hub"),
        (["--pipeline", str(pipe_dir), "--output", str(tmp_path / "no" / "a.png")], "does not exist"),
        (["--pipeline", str(pipe_dir), "--output", str(tmp_path / "a.jpg")], "must be a .png"),
    ]
    for args, message in cases:
        rc = main(["sample", *args])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)


@pytest.mark.slow
def test_console_script_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "qiren_gen.cli", "sample", "--pipeline", str(tmp_path),
                           "--output", str(tmp_path / "a.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "not a pipeline folder" in proc.stderr


def test_scheduler_names_a_user_knows(pipe_dir, tmp_path):
    from qiren_gen.pipelines.schedulers import ALIASES, SAMPLERS

    outs = {}
    for name in ("dpm++", "dpmsolver", "unipc", "euler", "euler-a", "heun", "lms", "pndm", "deis"):
        outs[name] = tmp_path / f"{name}.png"
        assert main(["sample", "--pipeline", str(pipe_dir), "--num-images", "2", "--resolution", "5", "--steps", "4",
                     "--scheduler", name, "--output", str(outs[name])]) == 0
    assert outs["dpm++"].read_bytes() == outs["dpmsolver"].read_bytes()  # an alias, the same sampler
    assert outs["dpm++"].read_bytes() != outs["euler-a"].read_bytes()
    assert {"ddim", "ddpm", "dpm++", "unipc", "euler", "euler-a", "heun", "lms", "pndm", "deis"} <= set(SAMPLERS)
    assert ALIASES["dpmsolver"] == "dpm++"


def test_an_unknown_scheduler_lists_the_known_ones_in_one_line(pipe_dir, tmp_path, capsys):
    rc = main(["sample", "--pipeline", str(pipe_dir), "--scheduler", "karras-magic", "--output",
               str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "unknown scheduler 'karras-magic'" in err and "ddim, ddpm, dpm++" in err and "euler-a" in err
    assert not (tmp_path / "x.png").exists()
