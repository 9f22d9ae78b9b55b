"""``qiren-gen fit`` / ``superres``: outputs, JSON, and one-line errors with exit code 2 on bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from qiren_gen.cli import main

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def _chirp(path, n=150, channels=1):
    t = np.arange(n) / 8000
    x = (0.5 * np.sin(2 * np.pi * (200 * t + 4000 * t**2)) * 32767).astype(np.int16)
    wavfile.write(path, 8000, np.stack([x] * channels, 1) if channels > 1 else x)


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_fit_image_json(tmp_path, capsys):
    assert main(["fit", "--image", "camera", "--size", "8", "--steps", "3", "--output", str(tmp_path), "--json"]) == 0
    m = _json(capsys)
    assert {"mse", "psnr", "params", "seconds"} <= m.keys() and m["params"] == 657 and m["shape"] == [8, 8]
    for key in ("figure", "fit", "target", "metrics"):
        assert Path(m["files"][key]).stat().st_size > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["mse"] == m["mse"]
    assert (tmp_path / "pipeline" / "model_index.json").exists()


def test_fit_audio_json(tmp_path, capsys):
    _chirp(tmp_path / "c.wav", n=300)
    args = ["fit", "--audio", str(tmp_path / "c.wav"), "--audio-slice", "0:300:2", "--model", "siren", "--steps", "5",
            "--output", str(tmp_path / "o"), "--json"]
    assert main(args) == 0
    m = _json(capsys)
    assert m["shape"] == [150] and m["params"] == 988
    rate, fit = wavfile.read(m["files"]["fit"])
    assert rate == 4000 and fit.shape == (150,)


def test_superres_json(tmp_path, capsys):
    args = ["superres", "--image", "coffee", "--size", "8", "--scale", "2", "--model", "tanh", "--steps", "3",
            "--output", str(tmp_path), "--json"]
    assert main(args) == 0
    m = _json(capsys)
    assert m["high_res"] == 16 and m["ground_truth"]
    assert {"mse", "psnr", "bilinear_mse", "nearest_mse", "low_res_mse"} <= m.keys()
    assert Path(m["files"]["superres"]).exists() and Path(m["files"]["figure"]).exists()


def test_qiren_plus_and_circuit_options(tmp_path, capsys):
    """--model qiren_plus fits and superresolves; circuit options reach the model and its saved config."""
    from qiren_gen.models import QIREN_PLUS

    args = ["superres", "--image", "coffee", "--size", "8", "--model", "qiren_plus", "--steps", "2",
            "--output", str(tmp_path / "sr"), "--json"]
    assert main(args) == 0
    assert _json(capsys)["params"] <= 1009
    saved = json.loads((tmp_path / "sr" / "pipeline" / "model" / "config.json").read_text())
    assert all(saved[k] == v for k, v in QIREN_PLUS.items())
    args = ["fit", "--image", "camera", "--size", "8", "--steps", "2", "--qubits", "3", "--reuploads", "1",
            "--entangler", "cnot_ring", "--observables", "[[0], [1, 2]]", "--encoding-scale", "2.5",
            "--learnable-scale", "--no-batchnorm", "--schedule", "cosine", "--output", str(tmp_path / "f"), "--json"]
    assert main(args) == 0
    _json(capsys)
    cfg = json.loads((tmp_path / "f" / "pipeline" / "model" / "config.json").read_text())
    assert (cfg["n_qubits"], cfg["n_reuploads"], cfg["entangler"], cfg["observables"], cfg["encoding_scale"],
            cfg["learnable_scale"], cfg["batch_norm"]) == (3, 1, "cnot_ring", [[0], [1, 2]], 2.5, True, False)


def test_exponential_encoding_options(tmp_path, capsys):
    """--encoding-scale per re-upload / ternary, --final-observables and --fourier-features reach the saved config."""
    for scale, expected, reuploads in (("2,6", [[2.0], [6.0]], "2"), ("ternary:1.5", "ternary:1.5", "3")):
        out = tmp_path / scale.replace(",", "_").replace(":", "_")
        args = ["fit", "--image", "camera", "--size", "8", "--steps", "2", "--qubits", "3", "--reuploads", reuploads,
                "--observables", "z+zz", "--encoding-scale", scale, "--final-observables", "z+zz+zzz",
                "--fourier-features", "2", "--output", str(out), "--json"]
        assert main(args) == 0
        _json(capsys)
        cfg = json.loads((out / "pipeline" / "model" / "config.json").read_text())
        assert (cfg["encoding_scale"], cfg["final_observables"], cfg["fourier_features"]) == (expected, "z+zz+zzz", 2)


def test_superres_without_ground_truth(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (10, 10), dtype=np.uint8)).save(tmp_path / "s.png")
    assert main(["superres", "--image", str(tmp_path / "s.png"), "--size", "8", "--scale", "4", "--model", "relu",
                 "--steps", "2", "--output", str(tmp_path / "o"), "--json"]) == 0
    m = _json(capsys)
    assert not m["ground_truth"] and "mse" not in m and "bilinear_mse" not in m


@pytest.mark.parametrize(("command", "old", "new"),
                         [("fit", "relu-rff", "relu_rff"), ("superres", "qiren-plus", "qiren_plus")])
def test_the_former_model_spellings_still_fit(tmp_path, capsys, command, old, new):
    """``--model qiren-plus`` / ``relu-rff`` (the names before snake_case) build the same model as the new names."""
    from qiren_gen.models import build_inr

    assert main([command, "--image", "camera", "--size", "8", "--model", old, "--steps", "2",
                 "--output", str(tmp_path), "--json"]) == 0
    metrics = _json(capsys)
    assert metrics["model"] == new  # recorded under the current name
    assert metrics["params"] == build_inr(new, 2).num_parameters(only_trainable=True)
    saved = json.loads((tmp_path / "pipeline" / "model" / "config.json").read_text())
    assert saved["_class_name"] == type(build_inr(new, 2)).__name__


@pytest.mark.parametrize("command", ["fit", "superres"])
def test_help_lists_only_the_current_model_names(capsys, command):
    from qiren_gen.runtime.model_names import FIT_MODEL_NAMES, MODEL_ALIASES

    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    assert "{" + ",".join(FIT_MODEL_NAMES) + "}" in shown
    assert "qiren_plus" in shown and "relu_rff" in shown
    assert not any(old in shown for old in MODEL_ALIASES)  # qiren-plus / relu-rff: accepted, never advertised


def test_an_unknown_model_is_one_line_exit_2_naming_the_current_spelling(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # argparse's refusal, before anything is read or written
        main(["fit", "--image", "camera", "--model", "qiren-plu", "--output", str(tmp_path / "out")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'qiren-plu'" in err[0] and "(did you mean qiren_plus?)" in err[0]
    assert "qiren-plus" not in err[0] and not (tmp_path / "out").exists()


def _bad_inputs(tmp: Path) -> dict[str, list[str]]:
    (tmp / "text.png").write_text("hello")
    (tmp / "text.wav").write_text("hello")
    _chirp(tmp / "stereo.wav", channels=2)
    wavfile.write(tmp / "empty.wav", 8000, np.zeros(0, np.int16))
    out = ["--output", str(tmp / "out")]
    return {
        "missing image": ["fit", "--image", str(tmp / "nope.png"), *out],
        "missing wav": ["fit", "--audio", str(tmp / "nope.wav"), *out],
        "non-image": ["fit", "--image", str(tmp / "text.png"), *out],
        "non-wav": ["fit", "--audio", str(tmp / "text.wav"), *out],
        "stereo": ["fit", "--audio", str(tmp / "stereo.wav"), *out],
        "empty wav": ["fit", "--audio", str(tmp / "empty.wav"), *out],
        "unknown name": ["fit", "--image", "not_a_skimage_picture", *out],
        "size 1": ["fit", "--image", "camera", "--size", "1", *out],
        "steps 0": ["fit", "--image", "camera", "--steps", "0", *out],
        "superres size 1": ["superres", "--image", "camera", "--size", "1", *out],
        "superres scale 0": ["superres", "--image", "camera", "--scale", "0", *out],
        "superres missing": ["superres", "--image", str(tmp / "nope.jpg"), *out],
        "bad slice": ["fit", "--audio", str(tmp / "stereo.wav"), "--audio-slice", "x", *out],
        "threads 0": ["superres", "--image", "camera", "--threads", "0", *out],
        "zz on 1 qubit": ["fit", "--image", "camera", "--qubits", "1", "--observables", "zz", *out],
        "observable off the circuit": ["fit", "--image", "camera", "--observables", "[[0, 9]]", *out],
        "scale 0": ["superres", "--image", "camera", "--model", "qiren_plus", "--encoding-scale", "0", *out],
        "reuploads 0": ["fit", "--image", "camera", "--reuploads", "0", *out],
        "scales per re-upload, wrong count": ["fit", "--image", "camera", "--encoding-scale", "1,3,9", *out],
        "unknown scale preset": ["fit", "--image", "camera", "--encoding-scale", "ternary:x", *out],
        "fourier features < 0": ["fit", "--image", "camera", "--fourier-features", "-1", *out],
        "circuit option on siren": ["fit", "--image", "camera", "--model", "siren", "--entangler", "cnot_chain", *out],
    }


BAD_CASES = [
    "missing image", "missing wav", "non-image", "non-wav", "stereo", "empty wav", "unknown name", "size 1", "steps 0",
    "superres size 1", "superres scale 0", "superres missing", "bad slice", "threads 0", "zz on 1 qubit",
    "observable off the circuit", "scale 0", "reuploads 0", "circuit option on siren",
    "scales per re-upload, wrong count", "unknown scale preset", "fourier features < 0",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, case):
    args = _bad_inputs(tmp_path)[case]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.slow
def test_console_script_error_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "qiren_gen.cli", "fit", "--image", "not_a_skimage_picture"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "not_a_skimage_picture" in proc.stderr
