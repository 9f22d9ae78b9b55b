"""Shots and noise through the bundled pipeline and the command line: deterministic from the generator, close to
exact at many shots, far at few, shared by every sample of a call, bad values one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qiren_gen.cli import main
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.pipelines.generation import bundled_pipeline_dir


@pytest.fixture(scope="module")
def pipe():
    return QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())


def _faces(pipe, **kw):
    g = torch.Generator().manual_seed(0)
    return pipe(batch_size=2, height=12, width=12, num_inference_steps=3, generator=g, output_type="np", **kw).images


def test_pipeline_shots_follow_the_generator_and_converge(pipe):
    exact = _faces(pipe)
    few, few_again = _faces(pipe, shots=10), _faces(pipe, shots=10)
    many = _faces(pipe, shots=10**6)
    assert np.array_equal(few, few_again)
    assert np.abs(many - exact).max() < 0.02 < np.abs(few - exact).max()
    assert np.array_equal(_faces(pipe), exact)  # exact again after a shots call (no stale cached features)
    noisy = _faces(pipe, noise={"depolarizing": 0.05})
    assert np.abs(noisy - exact).max() > 0.02


def test_pipeline_bad_shots_and_noise(pipe):
    for kw, msg in (({"shots": 0}, ">= 1"), ({"shots": 2.5}, "an int"), ({"shots": 10**10}, "over the limit"),
                    ({"noise": {"readout": 1.2}}, r"in \[0, 1\]")):
        with pytest.raises(ValueError, match=msg):
            _faces(pipe, **kw)


def test_sample_and_fit_commands_take_shots(tmp_path, capsys):
    out = tmp_path / "faces.png"
    assert main(["sample", "--num-images", "2", "--resolution", "10", "--steps", "2", "--shots", "1000",
                 "--output", str(out)]) == 0
    assert "1000 shots" in capsys.readouterr().out and out.is_file()
    fit = tmp_path / "fit"
    assert main(["fit", "--image", "camera", "--size", "6", "--steps", "3", "--qubits", "3", "--shots", "200",
                 "--json", "--output", str(fit)]) == 0
    metrics = json.loads((fit / "metrics.json").read_text())
    assert metrics["measured"]["shots"] == 200 and np.isfinite(metrics["measured"]["psnr"])
    assert metrics["measured"]["psnr"] != metrics["psnr"]


@pytest.mark.parametrize("argv, fragment", [
    (["sample", "--shots", "0"], "shots must be >= 1"),
    (["sample", "--shots", "2000000000"], "over the limit"),
    (["sample", "--noise", "depolarizing=1.5"], "must be in [0, 1]"),
    (["fit", "--image", "camera", "--model", "siren", "--shots", "10"], "only for --model qiren"),
])
def test_cli_bad_shots_one_line(tmp_path, capsys, argv, fragment):
    argv = argv + ["--output", str(tmp_path / ("o.png" if argv[0] == "sample" else "fitout"))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1
    assert not (tmp_path / "fitout").exists() and not (tmp_path / "o.png").exists()


def test_fit_trains_under_shots_and_reports_the_fit_exactly(tmp_path):
    fit = tmp_path / "fit"
    assert main(["fit", "--image", "camera", "--size", "6", "--steps", "3", "--qubits", "2", "--train-shots", "50",
                 "--json", "--output", str(fit)]) == 0
    metrics = json.loads((fit / "metrics.json").read_text())
    assert metrics["trained_under"] == {"shots": 50, "noise": None} and np.isfinite(metrics["psnr"])


def test_hardware_study_pieces(tmp_path):
    from qiren_gen.experiments.hardware import StudyConfig, device_budget, shots_needed, update_model_card

    rows = {r["size"]: r for r in device_budget(StudyConfig())}
    assert rows[25]["feature_executions_per_grid"] == 625 * 32  # 32 feature circuits, once per grid
    assert rows[25]["per_sample_executions_per_image"] == 625 * 32 * 3  # 3 layers of 32 per-sample circuits
    assert rows[128]["feature_shots_per_grid"] == 16384 * 32 * 1000
    assert shots_needed({10: 15.0, 100: 20.0, 1000: 21.8}, 22.0) == 1000
    assert shots_needed({10: 15.0}, 22.0) is None
    card = tmp_path / "README.md"
    card.write_text("# card\n\n## Quality\n\nold table\n\n## Limitations\n\nnone\n")
    update_model_card(str(card), "line one")
    update_model_card(str(card), "line two")  # replaced, not appended
    text = card.read_text()
    assert "line two" in text and "line one" not in text
    assert text.index("line two") < text.index("## Limitations") and text.count("<!-- hardware-study -->") == 1
