"""QirenSuperResolutionPipeline's prior mode: encode with a functional model, render larger."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import lfw_subset

from qiren_gen.cli import main as cli_main
from qiren_gen.models import LatentModulator, ModulatedQIREN
from qiren_gen.pipelines import QirenGenerationPipeline, QirenSuperResolutionPipeline, bundled_pipeline_dir


@pytest.fixture(scope="module")
def tiny_prior_pipe():
    torch.manual_seed(0)
    decoder = ModulatedQIREN(n_qubits=3, hidden_layers=1, modulation="shift")
    modulator = LatentModulator(latent_dim=4, modulation_dim=decoder.modulation_dim)
    return QirenSuperResolutionPipeline(decoder=decoder, modulator=modulator)


def test_mode_is_chosen_by_components(tiny_prior_pipe):
    assert tiny_prior_pipe.mode == "prior"
    assert QirenSuperResolutionPipeline.from_model_name("relu").mode == "fit"
    with pytest.raises(ValueError, match="either `model`"):
        QirenSuperResolutionPipeline()
    with pytest.raises(ValueError, match="either `model`"):
        QirenSuperResolutionPipeline(decoder=tiny_prior_pipe.decoder)


def test_prior_mode_output_round_trip_and_determinism(tiny_prior_pipe, tmp_path):
    low = np.linspace(-1, 1, 36, dtype=np.float32).reshape(6, 6)
    out = tiny_prior_pipe(low, scale=3)
    assert out.images.shape == (18, 18) and out.losses == [] and np.isfinite(out.low_res_mse)
    assert np.array_equal(tiny_prior_pipe(low, scale=3).images, out.images)
    tiny_prior_pipe.save_pretrained(tmp_path)
    loaded = QirenSuperResolutionPipeline.from_pretrained(tmp_path)
    assert loaded.mode == "prior" and loaded.model is None
    assert np.allclose(loaded(low, scale=3).images, out.images, atol=1e-6)
    with pytest.raises(ValueError, match="pixel centres"):
        tiny_prior_pipe(low, scale=2, align_corners=True)


def test_bundled_prior_render_is_consistent_with_its_input():
    """On a held-out face the bundled model's 4x render, area-downsampled, stays close to the low-res input."""
    from skimage.data import lfw_subset

    sr = QirenSuperResolutionPipeline.from_generation_pipeline(
        QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    )
    face = torch.tensor(lfw_subset()[95], dtype=torch.float32) * 2 - 1
    low = torch.nn.functional.interpolate(face[None, None], size=(6, 6), mode="area")[0, 0].numpy()
    out = sr(low, scale=4, output_type="pt")
    down = torch.nn.functional.interpolate(out.images[None, None].float(), size=(6, 6), mode="area")[0, 0]
    assert out.images.shape == (24, 24)
    assert torch.mean((down - torch.tensor(low)) ** 2).item() < 0.05  # input range is [-1, 1]


def test_cli_prior_pipeline_in_process(tmp_path, capsys):
    image = tmp_path / "face.png"
    Image.fromarray((lfw_subset()[96] * 255).astype(np.uint8)).save(image)
    assert cli_main(["superres", "--image", str(image), "--size", "8", "--scale", "3", "--prior-pipeline",
                 str(bundled_pipeline_dir()), "--output", str(tmp_path / "out"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "prior" and metrics["high_res"] == 24
    assert (tmp_path / "out" / "superres.png").exists()


@pytest.mark.slow
def test_cli_prior_pipeline(tmp_path):
    image = tmp_path / "face.png"
    from PIL import Image
    from skimage.data import lfw_subset

    Image.fromarray((lfw_subset()[96] * 255).astype(np.uint8)).save(image)
    proc = subprocess.run(
        [sys.executable, "-m", "qiren_gen.cli", "superres", "--image", str(image), "--size", "8", "--scale", "3",
         "--prior-pipeline", str(bundled_pipeline_dir()), "--output", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["model"] == "prior" and metrics["high_res"] == 24
    assert (tmp_path / "out" / "superres.png").exists()
