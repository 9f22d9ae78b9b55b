"""QirenGenerationPipeline: any-resolution sampling, determinism, save/load, model card, bad input."""
import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, ImagePipelineOutput

from qiren_gen.models import LatentDenoiser, LatentModulator, ModulatedQIREN, ModulatedSIREN
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.pipelines.generation import MAX_RENDER_PIXELS
from testing_utils import tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipe")
    pipe.model_card_sections = {"Training": "Trained on nothing, for a test."}
    pipe.save_pretrained(folder)
    return folder


def test_any_resolution_and_output_types(pipe):
    gen = torch.Generator().manual_seed(0)
    out = pipe(batch_size=2, height=5, width=23, num_inference_steps=3, generator=gen)
    assert isinstance(out, ImagePipelineOutput)
    assert [im.size for im in out.images] == [(23, 5), (23, 5)] and out.images[0].mode == "L"
    default = pipe(batch_size=1, num_inference_steps=2, output_type="np").images
    assert default.shape == (1, 8, 8, 1)  # the prior's sample_size is the default resolution
    big = pipe(batch_size=1, height=64, width=48, num_inference_steps=2, output_type="pt").images
    assert big.shape == (1, 1, 64, 48) and 0 <= big.min() and big.max() <= 1
    (tup,) = pipe(batch_size=1, num_inference_steps=2, output_type="np", return_dict=False)
    assert tup.shape == (1, 8, 8, 1)
    z = pipe(batch_size=3, num_inference_steps=2, output_type="latent").images
    assert z.shape == (3, 6)


def test_seeded_determinism_and_chunking(pipe):
    def run(seed, **kw):
        return pipe(batch_size=2, height=12, width=10, num_inference_steps=4, output_type="np",
                    generator=torch.Generator().manual_seed(seed), **kw).images

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    assert np.abs(a[0] - a[1]).max() > 1e-3  # two different samples in one batch
    np.testing.assert_allclose(run(1, chunk_size=7), a, atol=1e-5)  # rendering in chunks changes nothing


def test_ddpm_sampling_works(pipe):
    ddpm = QirenGenerationPipeline(pipe.decoder, pipe.modulator, pipe.prior,
                                   DDPMScheduler.from_config(pipe.scheduler.config))
    ddpm.set_progress_bar_config(disable=True)
    out = ddpm(batch_size=2, num_inference_steps=5, output_type="np", generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (2, 8, 8, 1) and np.isfinite(out.images).all()


def test_save_load_round_trip_and_model_card(pipe, saved):
    index = json.loads((saved / "model_index.json").read_text())
    assert index["_class_name"] == ["qiren_pipeline", "QirenGenerationPipeline"]  # diffusers' custom-class form
    assert index["decoder"] == ["qiren_gen.models.modulated", "ModulatedQIREN"]
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"]
    for comp in ("decoder", "modulator", "prior"):
        assert (saved / comp / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(saved.rglob("*.bin")) and [p.name for p in saved.rglob("*.py")] == ["qiren_pipeline.py"]
    card = (saved / "README.md").read_text()
    assert "pipeline_tag: unconditional-image-generation" in card and "QirenGenerationPipeline" in card
    assert "Trained on nothing, for a test." in card
    loaded = QirenGenerationPipeline.from_pretrained(saved)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.model_card_sections["Training"].strip() == "Trained on nothing, for a test."
    kw = dict(batch_size=2, height=9, width=7, num_inference_steps=3, output_type="np")
    a = pipe(generator=torch.Generator().manual_seed(5), **kw).images
    b = loaded(generator=torch.Generator().manual_seed(5), **kw).images
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(height=0), "height must be >= 1"),
        (dict(width=-3), "width must be >= 1"),
        (dict(height=4097, width=4097), "documented bound"),
        (dict(num_inference_steps=0), "num_inference_steps must be >= 1"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(output_type="jpeg"), "output_type"),
        (dict(batch_size=2, generator=[torch.Generator()]), "generators"),
    ],
)
def test_bad_call_arguments(pipe, kwargs, match):
    args = dict(batch_size=1, num_inference_steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pipe(**args)
    assert MAX_RENDER_PIXELS == 4096 * 4096


def test_mismatched_components_raise(pipe):
    other_prior = LatentDenoiser(latent_dim=5, hidden_dim=8, num_blocks=1, time_embed_dim=8)
    with pytest.raises(ValueError, match="latent_dim"):
        QirenGenerationPipeline(pipe.decoder, pipe.modulator, other_prior, pipe.scheduler)
    with pytest.raises(ValueError, match="must be a LatentDenoiser"):
        QirenGenerationPipeline(pipe.decoder, pipe.modulator, pipe.decoder, pipe.scheduler)
    wide = ModulatedQIREN(out_channels=1, n_qubits=4, hidden_layers=1)  # wants more modulations
    with pytest.raises(ValueError, match="mismatched components: the modulator gives"):
        QirenGenerationPipeline(wide, pipe.modulator, pipe.prior, pipe.scheduler)
    volume = ModulatedSIREN(in_features=3, hidden_features=4, hidden_layers=1)  # a 3-D signal, not an image
    sized = LatentModulator.for_decoder(volume, pipe.prior.config.latent_dim)
    with pytest.raises(ValueError, match="takes 3-D coordinates"):
        QirenGenerationPipeline(volume, sized, pipe.prior, pipe.scheduler)


def test_construction_checks_configs_without_running_a_model(pipe, monkeypatch):
    # Building a pipeline registers its modules; it runs none of them (a forward pass there cost every load).
    def refuse(*args, **kwargs):
        raise AssertionError("a component ran during construction")

    for part in (pipe.decoder, pipe.modulator, pipe.prior):
        monkeypatch.setattr(part, "forward", refuse)
    built = QirenGenerationPipeline(pipe.decoder, pipe.modulator, pipe.prior, pipe.scheduler)
    assert built.decoder is pipe.decoder


def test_bad_folders_raise_one_line_errors(saved, tmp_path):
    with pytest.raises(OSError, match="no pipeline folder"):
        QirenGenerationPipeline.from_pretrained(tmp_path / "missing" / "deeper")
    with pytest.raises(OSError, match="not a pipeline folder"):
        QirenGenerationPipeline.from_pretrained(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    shutil.rmtree(broken / "prior")
    with pytest.raises(ValueError, match="missing prior"):
        QirenGenerationPipeline.from_pretrained(broken)
    mixed = tmp_path / "mixed"
    shutil.copytree(saved, mixed)
    cfg = json.loads((mixed / "prior" / "config.json").read_text())
    cfg["latent_dim"] = 5
    (mixed / "prior" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="cannot load the pipeline|mismatched"):
        QirenGenerationPipeline.from_pretrained(mixed)
    code = tmp_path / "code"
    shutil.copytree(saved, code)
    (code / "prior" / "qiren_gen.models.denoiser.py").write_text("raise SystemExit('executed!')\n")
    with pytest.raises(ValueError, match="contains Python code"):
        QirenGenerationPipeline.from_pretrained(code)
    foreign = tmp_path / "foreign"
    shutil.copytree(saved, foreign)
    index = json.loads((foreign / "model_index.json").read_text())
    index["prior"] = ["os", "system"]
    (foreign / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="only diffusers and qiren_gen"):
        QirenGenerationPipeline.from_pretrained(foreign)
    with pytest.raises(ValueError, match="safetensors"):
        QirenGenerationPipeline.from_pretrained(saved, use_safetensors=False)


def test_hub_offline_is_one_clear_oserror(pipe, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match="cannot reach the Hugging Face Hub for 'qiren-gen-tests/no-such-pipeline'"):
        QirenGenerationPipeline.from_pretrained("qiren-gen-tests/no-such-pipeline")
    with pytest.raises(OSError, match="cannot push to the Hugging Face Hub repo"):
        pipe.push_to_hub("qiren-gen-tests/no-such-pipeline")
