"""The bundled pretrained pipeline: small, Hub-ready, sampled offline by default, consistent at any resolution."""
import json
from pathlib import Path

import torch
from PIL import Image

from qiren_gen.cli import main
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.pipelines.folders import BUNDLED_PIPELINE, bundled_pipeline_dir

BUNDLED = Path(__file__).resolve().parents[2] / "pipelines" / BUNDLED_PIPELINE


def test_bundled_folder_is_small_and_hub_ready():
    assert bundled_pipeline_dir() == BUNDLED
    files = {str(p.relative_to(BUNDLED)): p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file()}
    for comp in ("decoder", "modulator", "prior"):
        assert f"{comp}/config.json" in files and f"{comp}/diffusion_pytorch_model.safetensors" in files
    assert {"model_index.json", "README.md", "scheduler/scheduler_config.json"} <= set(files)
    assert sum(files.values()) < 5 * 2**20
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert [name for name in files if name.endswith(".py")] == ["qiren_pipeline.py"]  # diffusers' entry module
    assert json.loads((BUNDLED / "model_index.json").read_text())["_class_name"] == [
        "qiren_pipeline", "QirenGenerationPipeline"]
    card = (BUNDLED / "README.md").read_text()
    for needle in ("## Training", "## Quality", "held-out reconstruction PSNR", "build_pretrained_pipeline.py"):
        assert needle in card


def test_default_sample_command_uses_the_bundled_pipeline_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "faces.png"
    assert main(["sample", "--num-images", "2", "--resolution", "20", "--steps", "4", "--output", str(out)]) == 0
    grid = Image.open(out)
    assert grid.size == (40, 20)
    left, right = grid.crop((0, 0, 20, 20)), grid.crop((20, 0, 40, 20))
    assert left.tobytes() != right.tobytes()  # two different faces


def test_renders_agree_across_resolutions():
    # A 100x100 render, area-downsampled 4x, is the 25x25 render of the same latents: rendering at any size shows
    # one and the same function, not a re-interpretation per resolution.
    pipe = QirenGenerationPipeline.from_pretrained(BUNDLED)
    pipe.set_progress_bar_config(disable=True)
    z = pipe(batch_size=2, num_inference_steps=5, output_type="latent",
             generator=torch.Generator().manual_seed(0)).images
    small = pipe.render(z, 25, 25)
    large = pipe.render(z, 100, 100)
    mse = (torch.nn.functional.avg_pool2d(large, 4) - small).square().mean()
    assert 10 * torch.log10(4 / mse) > 30  # dB on the [-1, 1] range
