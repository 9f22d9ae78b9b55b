"""Shots and noise through the bundled pipeline and the command line: deterministic from the generator, close to
exact at many shots, far at few, shared by every sample of a call, bad values one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qiren_gen.cli import main
from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir


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
    from research.hardware.study import StudyConfig, device_budget, shots_needed, update_model_card

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


def test_gradient_sharpness_falls_with_blur_and_rises_with_pixel_noise():
    from qiren_gen.evaluation import gradient_sharpness

    torch.manual_seed(0)
    images = torch.rand(2, 1, 16, 16)
    blurred = torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    smooth = torch.linspace(0, 1, 16).expand(2, 1, 16, 16).contiguous()
    assert gradient_sharpness(blurred) < gradient_sharpness(images)
    assert gradient_sharpness(smooth) < gradient_sharpness((smooth + 0.05 * torch.randn_like(smooth)).clamp(0, 1))
    assert gradient_sharpness(torch.zeros(1, 1, 4, 4)) == 0
    with pytest.raises(ValueError, match="expected images"):
        gradient_sharpness(torch.zeros(4, 4))


def test_face_probe_measures_the_bundled_pipeline_under_shots_and_noise(pipe):
    from qiren_gen.quantum.noise import NoiseModel
    from research.hardware.faces import FaceProbe, held_out_faces

    probe = FaceProbe(pipe, held_out_faces()[:2], num_samples=2)
    exact = probe.psnr()
    assert exact > 18  # the bundled decoder reconstructs held-out faces
    assert probe.psnr(shots=10) < probe.psnr(shots=10_000) <= exact + 0.1
    assert probe.samples()["psnr_vs_exact"] == float("inf")  # the exact decode is the reference itself
    few, many = probe.samples(shots=10), probe.samples(shots=10_000)
    assert few["psnr_vs_exact"] < many["psnr_vs_exact"] and few["sharpness"] > many["sharpness"]  # grain
    noisy = NoiseModel(depolarizing=0.03)
    assert probe.psnr(noise=noisy) < probe.psnr(noise=noisy, encode_under_noise=True) < exact


def test_finetune_arguments_are_valid_train_pipeline_arguments(tmp_path):
    from research.hardware.faces import FINETUNES, finetune_arguments
    from research.hardware.study import StudyConfig
    from train_pipeline import parse_args

    cfg = StudyConfig()
    for name, extra in FINETUNES.items():
        args = parse_args(finetune_arguments(cfg, tmp_path / "data", tmp_path / "out", extra))
        assert args.max_train_steps == cfg.finetune_steps and args.flip_augment and args.validation_images == 0
        assert (args.train_shots, args.train_noise) == {"fine-tuned exactly": (None, None),
                                                         "fine-tuned under 100 shots": (100, None),
                                                         "fine-tuned under depolarizing 1e-2": (None, "0.01")}[name]
