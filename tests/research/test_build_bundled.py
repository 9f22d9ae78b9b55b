"""The one-command build of the bundled pipeline, end to end at toy size (and its resume)."""
import json

import pytest
import torch

from qiren_gen.pipelines import QirenGenerationPipeline
from research.bundled.build import BundleConfig, build_bundled_pipeline


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()  # the build sets 1 thread for itself; leave other tests as they were
    yield
    torch.set_num_threads(threads)


def test_build_end_to_end_and_resume(tmp_path, keep_threads):
    cfg = BundleConfig(workdir=str(tmp_path / "work"), output=str(tmp_path / "pipe"),
                       figure=str(tmp_path / "fig" / "samples.png"), resolution=10, n_heads=3, n_qubits=2,
                       hidden_features=16, hidden_layers=1, latent_dim=4, encode_steps=5, stage1_steps=2,
                       stage1_batch_size=4, prior_steps=10, prior_hidden_dim=16, prior_blocks=1,
                       eval_samples=6)
    result = build_bundled_pipeline(cfg)
    report = result["report"]
    assert 0 < report["psnr_heldout_reconstruction"] < 60 and report["num_samples"] == 6
    assert report["evaluate"]["num_samples"] == 6  # qiren-gen evaluate ran (Inception or the labelled proxy)
    card = (tmp_path / "pipe" / "README.md").read_text()
    assert "## Quality" in card and "held-out reconstruction PSNR" in card and "Here the ratios" in card
    assert (tmp_path / "fig" / "samples.png").is_file() and (tmp_path / "fig" / "lfw_any_resolution.png").is_file()
    pipe = QirenGenerationPipeline.from_pretrained(tmp_path / "pipe")
    assert pipe.prior.config.sample_size == 10 and pipe.modulator.config.latent_dim == 4
    weights = (tmp_path / "pipe" / "prior" / "diffusion_pytorch_model.safetensors").read_bytes()
    first = json.loads((tmp_path / "work" / "bundle_state.json").read_text())
    build_bundled_pipeline(cfg)  # resumes: nothing to train, same weights
    assert (tmp_path / "pipe" / "prior" / "diffusion_pytorch_model.safetensors").read_bytes() == weights
    state = json.loads((tmp_path / "work" / "bundle_state.json").read_text())
    assert state["prior_final_loss"] == first["prior_final_loss"]
