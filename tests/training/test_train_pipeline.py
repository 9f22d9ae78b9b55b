"""``scripts/train_pipeline.py`` end to end at toy size: fine-tune a saved pipeline on an image folder (corrupt file
skipped and counted), resume, channel mismatch and its adapter, and scratch RGB training from a Hub-shaped parquet
dataset read through ``load_dataset`` with ``--streaming`` (offline)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.pipelines import QirenGenerationPipeline
from testing_utils import tiny_pipeline
from train_pipeline import main

TINY = ["--max_train_steps", "4", "--train_batch_size", "3", "--checkpointing_steps", "2", "--prior_max_train_steps",
        "20", "--prior_train_batch_size", "8", "--prior_lr_warmup_steps", "2", "--prior_checkpointing_steps", "10",
        "--validation_steps", "2", "--validation_images", "2", "--learning_rate", "0.01"]


def _faces(folder: Path, n: int = 8, rgb: bool = False) -> Path:
    (folder / "train").mkdir(parents=True)
    y, x = np.mgrid[0:10, 0:10]
    for i in range(n):
        img = (127 + 100 * np.sin(x * (0.3 + 0.05 * i) + y * 0.2)).astype(np.uint8)
        Image.fromarray(np.stack([img, img[::-1], img.T], -1) if rgb else img).save(folder / "train" / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pretrained") / "pipe"
    tiny_pipeline().save_pretrained(folder)
    return folder


def test_finetune_a_pipeline_folder_end_to_end_and_resume(pretrained, tmp_path, capsys):
    data = _faces(tmp_path / "faces")
    (data / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    out = tmp_path / "mine"
    args = ["--pretrained_model_name_or_path", str(pretrained), "--train_data_dir", str(data), "--output_dir",
            str(out), *TINY]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "training images:" in printed and "before ->" in printed
    summary = json.loads((out / "train_pipeline_summary.json").read_text())
    # 7 training rows (the corrupt one is a row: nothing reads every image before training), 1 unreadable met
    assert summary["skipped_images"] == 1 and summary["num_train_images"] == 7 and summary["num_heldout_images"] == 2
    assert summary["stage1_steps"] == 4 and summary["stage2_steps"] == 20
    psnr = summary["psnr"]
    assert all(np.isfinite(psnr[k]) for k in ("train_before", "train_after", "heldout_before", "heldout_after"))
    samples = {p.name for p in (out / "samples").iterdir()}
    assert {"stage1-reconstructions-000002.png", "stage2-samples-000020.png"} <= samples
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert any(r["stage"] == "stage1" and "heldout_psnr" in r for r in log)

    pipe = QirenGenerationPipeline.from_pretrained(out)
    assert pipe.prior.config.sample_size == 8 and pipe.decoder.config.out_channels == 1
    card = (out / "README.md").read_text()
    assert "4 steps of batch 3" in card and "20 steps of batch 8" in card and str(data) in card
    from qiren_gen.cli import main as cli_main

    assert cli_main(["sample", "--pipeline", str(out), "--num-images", "2", "--steps", "2",
                     "--output", str(tmp_path / "s.png")]) == 0
    before = (out / "prior" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert main(args) == 2 and "--resume_from_checkpoint latest" in capsys.readouterr().err  # never overwritten
    assert (out / "prior" / "diffusion_pytorch_model.safetensors").read_bytes() == before
    more = [a if a != "20" else "30" for a in args]  # resume both stages and train the prior 10 steps more
    assert main(more + ["--resume_from_checkpoint", "latest"]) == 0
    assert "at step 20" in capsys.readouterr().out
    assert json.loads((out / "train_pipeline_summary.json").read_text())["stage2_steps"] == 30


def test_an_output_folder_with_stage2_in_prior_training_resumes_there(pretrained, tmp_path, capsys):
    """Stage 2's folder was ``prior_training`` before it was ``stage2``: such a run resumes from its checkpoints."""
    data = _faces(tmp_path / "faces")
    out = tmp_path / "old"
    args = ["--pretrained_model_name_or_path", str(pretrained), "--train_data_dir", str(data), "--output_dir",
            str(out), *TINY]
    assert main(args) == 0, capsys.readouterr().err
    (out / "stage2").rename(out / "prior_training")  # the layout of earlier versions
    capsys.readouterr()
    more = [a if a != "20" else "30" for a in args]
    assert main(more + ["--resume_from_checkpoint", "latest"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert f"stage 2: resumed from {out / 'prior_training' / 'checkpoint-20'} at step 20" in printed
    assert not (out / "stage2").exists() and (out / "prior_training" / "checkpoint-30").is_dir()
    assert json.loads((out / "train_pipeline_summary.json").read_text())["stage2_steps"] == 30


def test_channel_mismatch_is_one_line_and_adapt_flag_gives_rgb(pretrained, tmp_path, capsys):
    data = _faces(tmp_path / "rgb", n=6, rgb=True)
    args = ["--pretrained_model_name_or_path", str(pretrained), "--train_data_dir", str(data), *TINY]
    assert main(args + ["--output_dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("train_pipeline: error: the pretrained decoder renders 1 channel(s)")
    assert not (tmp_path / "a").exists()
    assert main(args + ["--output_dir", str(tmp_path / "b"), "--adapt_output_channels"]) == 0
    pipe = QirenGenerationPipeline.from_pretrained(tmp_path / "b")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.decoder.config.out_channels == 3
    assert pipe(batch_size=1, num_inference_steps=2).images[0].mode == "RGB"


def test_adapted_decoder_starts_from_the_pretrained_function(pretrained):
    from qiren_gen.models.adapt import adapt_output_channels

    gray = QirenGenerationPipeline.from_pretrained(pretrained).decoder
    rgb = adapt_output_channels(gray, 3)
    coords, mods = torch.rand(1, 5, 2) * 2 - 1, torch.randn(1, gray.modulation_dim)
    with torch.no_grad():
        torch.testing.assert_close(rgb(coords, mods), gray(coords, mods).expand(-1, -1, 3))
        torch.testing.assert_close(adapt_output_channels(rgb, 1)(coords, mods), gray(coords, mods))


def test_scratch_rgb_from_a_parquet_dataset_streamed_through_load_dataset(tmp_path, capsys, monkeypatch):
    """The FFHQ / CelebA-HQ recipe's code path (Hub-shaped dataset, --streaming, RGB, scratch) at toy size."""
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)) for _ in range(7)]
    ds = datasets.Dataset.from_dict({"image": images, "label": list(range(7))}).cast_column("image", datasets.Image())
    repo = tmp_path / "faces-hub"
    ds.to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    out = tmp_path / "scratch"
    args = ["--dataset_name", str(repo), "--streaming", "--resolution", "6", "--channels", "3", "--n_qubits", "3",
            "--hidden_layers", "1", "--latent_dim", "4", "--prior_hidden_dim", "16", "--prior_num_blocks", "1",
            "--output_dir", str(out), "--report_to", "tensorboard", "--push_to_hub", "--hub_model_id",
            "qiren-gen-tests/scratch", *TINY]
    assert main(args) == 2  # trained and saved, but the upload cannot happen offline: one line, folder intact
    captured = capsys.readouterr()
    last_line = captured.err.strip().splitlines()[-1]
    assert last_line.startswith("train_pipeline: error: cannot push to the Hugging Face Hub repo")
    assert f"the pipeline is saved in {out}" in captured.err
    tensorboard_line = [line for line in captured.err.splitlines() if "--report_to tensorboard" in line]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert len(tensorboard_line) == 1 and "not installed" in tensorboard_line[0]
    else:
        assert not tensorboard_line and any((out / "logs").rglob("events.out.tfevents*"))
    pipe = QirenGenerationPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.decoder.config.out_channels == 3 and pipe.prior.config.sample_size == 6
    assert pipe.decoder.config.n_qubits == 3 and "scratch" in (out / "README.md").read_text()
    assert pipe(batch_size=2, height=9, width=9, num_inference_steps=2).images[0].size == (9, 9)


def test_finetune_an_auto_decoded_pipeline_trains_a_latent_table_and_the_prior_learns_it(tmp_path, capsys):
    """A pipeline whose modulator auto-decodes keeps that encoding: stage 1 trains one latent per training
    image (mirrors included with --flip_augment) and the prior is trained on that table."""
    from diffusers import DDIMScheduler

    from qiren_gen.models import LatentDenoiser, LatentModulator, ModulatedQIREN
    from qiren_gen.training.prior import make_training_scheduler

    torch.manual_seed(0)
    decoder = ModulatedQIREN(out_channels=1, n_qubits=3, hidden_layers=1, reference_size=4)
    modulator = LatentModulator.for_decoder(decoder, latent_dim=4, encoding="auto_decode", inner_steps=5,
                                            encode_lr=0.05, latent_l2=1e-4)
    prior = LatentDenoiser(latent_dim=4, hidden_dim=16, num_blocks=1, time_embed_dim=8, sample_size=8)
    QirenGenerationPipeline(decoder, modulator, prior, DDIMScheduler.from_config(make_training_scheduler(100).config)
                            ).save_pretrained(tmp_path / "auto")
    data = _faces(tmp_path / "faces", n=7)
    out = tmp_path / "mine"
    assert main(["--pretrained_model_name_or_path", str(tmp_path / "auto"), "--train_data_dir", str(data),
                 "--output_dir", str(out), "--flip_augment", *TINY, "--validation_steps", "3"]) == 0, \
        capsys.readouterr().err
    shown = {p.name for p in (out / "samples").iterdir()}  # every 3 steps, and the end of each stage once
    assert {"stage1-reconstructions-000003.png", "stage1-reconstructions-000004.png", "stage2-samples-000018.png",
            "stage2-samples-000020.png"} <= shown
    from safetensors.torch import load_file

    saved = load_file(str(out / "stage1" / "latents.safetensors"))
    table, visited = saved["latents"], saved["visited"]
    assert table.shape == (2 * 5, 4)  # 5 training images (2 held out) and their mirrors
    assert 3 <= int(visited.sum()) <= 10  # 4 steps of 3: the rows that trained (the prior learns only those)
    pipe = QirenGenerationPipeline.from_pretrained(out)
    assert pipe.modulator.config.encoding == "auto_decode"
    torch.testing.assert_close(pipe.prior.latent_mean, table[visited].mean(0), atol=1e-5, rtol=0)
    assert "auto-decoded latents" in (out / "README.md").read_text()
