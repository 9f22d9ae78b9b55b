"""Stage-2 training: the prior learns a latent distribution, checkpoints resume, the script runs end to end."""
import json

import pytest
import torch
from accelerate import Accelerator
from diffusers import DDIMScheduler

from qiren_gen.models import LatentDenoiser, LatentModulator, ModulatedQIREN
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.training.prior import PriorTrainingConfig, encode_dataset, make_training_scheduler, train_prior
from testing_utils import tiny_pipeline


@pytest.fixture
def one_thread():
    """Tiny matrices: a second thread only adds synchronisation (3-10x slower on a shared 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_prior_learns_two_clusters_and_samples_them(tmp_path, one_thread):
    torch.manual_seed(0)
    pipe = tiny_pipeline()
    centres = torch.zeros(2, 6)
    centres[0, 0], centres[1, 0] = 4.0, -2.0
    centres += 10.0  # far from zero: sampling must denormalise
    which = torch.randint(0, 2, (512,))
    data = centres[which] + 0.2 * torch.randn(512, 6)
    prior = LatentDenoiser(latent_dim=6, hidden_dim=64, num_blocks=2, time_embed_dim=16, sample_size=8)
    cfg = PriorTrainingConfig(max_train_steps=1000, batch_size=128, learning_rate=3e-3, lr_warmup_steps=20,
                              checkpointing_steps=0)
    train_prior(prior, data, make_training_scheduler(1000), Accelerator(cpu=True), tmp_path, cfg)
    pipe.prior = prior
    pipe.scheduler = DDIMScheduler.from_config(make_training_scheduler(1000).config)  # the training schedule
    z = pipe.sample_latents(256, num_inference_steps=50, generator=torch.Generator().manual_seed(0))
    dist = torch.cdist(z, centres).min(1).values
    assert (dist < 1.0).float().mean() > 0.85, dist.median()  # typical in-cluster distance is ~0.5
    assert dist.max() < 5  # no far-off samples (epsilon-prediction gave some at 17-35 here)
    assert ((z[:, 0] - 11).abs() < 1.5).float().mean() < 0.1  # few samples between the modes
    nearest = torch.cdist(z, centres).argmin(1)
    assert 0.25 < nearest.float().mean() < 0.75  # both modes, roughly balanced (no mode collapse)


def test_checkpoints_resume_exactly(tmp_path):
    data = torch.randn(64, 6) * 3 + 1
    cfg = PriorTrainingConfig(max_train_steps=20, batch_size=16, lr_warmup_steps=2, checkpointing_steps=10,
                              checkpoints_total_limit=1)
    torch.manual_seed(0)
    first = LatentDenoiser(latent_dim=6, hidden_dim=16, num_blocks=1, time_embed_dim=8)
    res = train_prior(first, data, make_training_scheduler(100), Accelerator(cpu=True), tmp_path, cfg)
    assert res["global_step"] == 20 and len(res["losses"]) == 20
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-20"]  # limit 1: oldest removed
    second = LatentDenoiser(latent_dim=6, hidden_dim=16, num_blocks=1, time_embed_dim=8)  # fresh weights
    res2 = train_prior(second, data * 100, make_training_scheduler(100), Accelerator(cpu=True), tmp_path, cfg,
                       resume_from_checkpoint="latest")
    assert res2["global_step"] == 20 and res2["losses"] == []  # nothing left to do
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)  # weights and latent statistics come from the checkpoint
    more = PriorTrainingConfig(**{**cfg.__dict__, "max_train_steps": 25})
    res3 = train_prior(second, data, make_training_scheduler(100), Accelerator(cpu=True), tmp_path, more,
                       resume_from_checkpoint=str(tmp_path / "checkpoint-20"))
    assert res3["global_step"] == 25 and len(res3["losses"]) == 5
    wider = LatentDenoiser(latent_dim=6, hidden_dim=32, num_blocks=1, time_embed_dim=8)
    with pytest.raises(ValueError, match="different configuration: hidden_dim"):
        train_prior(wider, data, make_training_scheduler(100), Accelerator(cpu=True), tmp_path, more, "latest")
    with pytest.raises(OSError, match="not a complete checkpoint"):
        train_prior(wider, data, make_training_scheduler(100), Accelerator(cpu=True), tmp_path, more,
                    str(tmp_path / "nope"))


def test_train_prior_script_end_to_end(tmp_path, capsys):
    from qiren_gen.data.lfw import export_lfw_faces
    from train_prior import main, train_prior_from_args

    data = export_lfw_faces(tmp_path / "lfw")
    stage1 = tmp_path / "stage1"
    decoder = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    decoder.save_pretrained(stage1 / "decoder")
    LatentModulator.for_decoder(decoder, latent_dim=4, inner_steps=1).save_pretrained(stage1 / "modulator")
    args = ["--stage1_model", str(stage1), "--train_data_dir", str(data), "--resolution", "12",
            "--output_dir", str(tmp_path / "out"), "--max_train_steps", "6", "--train_batch_size", "8",
            "--checkpointing_steps", "3", "--hidden_dim", "16", "--num_blocks", "1", "--time_embed_dim", "8",
            "--flip_augment", "--pipeline_output", str(tmp_path / "pipe")]
    summary = train_prior_from_args(args)
    assert summary["num_latents"] == 180 and summary["global_step"] == 6
    cache = tmp_path / "out" / "latents.safetensors"
    stamp = cache.stat().st_mtime_ns
    pipe = QirenGenerationPipeline.from_pretrained(tmp_path / "pipe")
    pipe.set_progress_bar_config(disable=True)
    assert (tmp_path / "pipe" / "qiren_pipeline.py").is_file()  # the training output loads with plain diffusers too
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())["_class_name"][0] == "qiren_pipeline"
    assert pipe.prior.config.sample_size == 12
    assert pipe(batch_size=2, height=20, width=30, num_inference_steps=2).images[0].size == (30, 20)
    assert json.loads((tmp_path / "out" / "prior_training.json").read_text())["final_step"] == 6
    summary = train_prior_from_args(args[:-2] + ["--max_train_steps", "8", "--resume_from_checkpoint", "latest"])
    assert summary["global_step"] == 8 and cache.stat().st_mtime_ns == stamp  # cache reused, not re-encoded
    capsys.readouterr()
    assert main(["--stage1_model", str(tmp_path), "--train_data_dir", str(data), "--resolution", "12",
                     "--output_dir", str(tmp_path / "o2")]) == 2
    assert "no stage-1 decoder" in capsys.readouterr().err


def test_encode_dataset_cache_tracks_weights(tmp_path):
    pipe = tiny_pipeline()
    images = torch.rand(3, 1, 6, 6) * 2 - 1
    cache = tmp_path / "lat.safetensors"
    a = encode_dataset(pipe.decoder, pipe.modulator, images, cache, progress=False)
    b = encode_dataset(pipe.decoder, pipe.modulator, images, cache, progress=False)
    torch.testing.assert_close(a, b)
    with torch.no_grad():
        pipe.modulator.inner_lr.mul_(0.5)  # a retrained stage 1 must not reuse stale latents
    c = encode_dataset(pipe.decoder, pipe.modulator, images, cache, progress=False)
    assert not torch.allclose(a, c)
    with torch.no_grad():
        pipe.modulator.inner_lr.mul_(2.0)
