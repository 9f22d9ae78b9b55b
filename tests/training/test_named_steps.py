"""Stage 1's named steps used one at a time, the one decoder registry, and the names shared by both stages and both
prior scripts (the former names still answer)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.models import DECODER_CLASSES, DECODERS, build_decoder
from qiren_gen.training import functa_trainer, pipeline_run, randomness
from qiren_gen.training.functa_trainer import FunctaTrainer, FunctaTrainingConfig
from qiren_gen.training.prior import PRIOR_MODEL_DEFAULTS, PriorTrainingConfig
from qiren_gen.training.table_evaluation import first_items


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)


def test_one_training_step_moves_and_marks_only_the_batch_rows(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    cfg = FunctaTrainingConfig(output_dir=str(tmp_path / "run"), train_data_dir=str(folder), resolution=8,
                               n_qubits=2, hidden_layers=1, latent_dim=4, train_batch_size=2, encoding="auto_decode",
                               max_train_steps=1, latent_learning_rate=0.1)
    trainer = FunctaTrainer(cfg)
    images, rows = next(iter(trainer.loader))
    latents_before = trainer.table.latents.detach().clone()
    weights_before = [p.detach().clone() for p in trainer.params]
    record = trainer.training_step((images, rows))
    moved = (trainer.table.latents != latents_before).any(dim=1)
    assert sorted(torch.nonzero(moved).flatten().tolist()) == sorted(rows.tolist())
    assert torch.equal(trainer.table.visited, moved)  # the step marks the rows it trained, and only those
    assert any(not torch.equal(p, q) for p, q in zip(trainer.params, weights_before, strict=True))
    assert np.isfinite(record["loss"]) and record["stopping"] is False
    assert trainer.global_step == 0  # counting, logging and checkpoints belong to the loop, not the step


def test_every_decoder_name_builds_a_class_the_pipeline_accepts():
    cfg = FunctaTrainingConfig(n_qubits=2, hidden_layers=1, n_heads=2, hidden_features=4, n_reuploads=1, n_blocks=1,
                               n_fourier=4)
    for name in DECODERS:
        cfg.decoder = name
        assert isinstance(build_decoder(cfg), DECODER_CLASSES), name
    assert functa_trainer.build_decoder is build_decoder and functa_trainer.DECODERS == DECODERS
    cfg.decoder = "no-such-decoder"
    with pytest.raises(ValueError, match="decoder must be one of"):
        build_decoder(cfg)


def test_former_names_still_answer():
    assert (randomness.STAGE_FUNCTA, randomness.STAGE_PRIOR) == (randomness.STAGE1, randomness.STAGE2) == (1, 2)
    assert functa_trainer.head_items is first_items
    assert pipeline_run.HEAD_SCAN_LIMIT == pipeline_run.START_SCAN_LIMIT
    cfg, prior = FunctaTrainingConfig(train_batch_size=5), PriorTrainingConfig(batch_size=7)
    assert (cfg.batch_size, prior.train_batch_size) == (5, 7)
    cfg.batch_size, prior.train_batch_size = 3, 9
    assert (cfg.train_batch_size, prior.batch_size) == (3, 9)


def test_both_prior_scripts_share_the_recipe_defaults():
    from train_pipeline import parse_args as pipeline_args
    from train_prior import parse_args as prior_args

    pipeline = pipeline_args(["--train_data_dir", "x", "--output_dir", "y"])
    prior = prior_args(["--stage1_model", "s", "--train_data_dir", "x", "--resolution", "8", "--output_dir", "y"])
    defaults = PriorTrainingConfig()
    for name in ("max_train_steps", "train_batch_size", "learning_rate", "lr_warmup_steps", "checkpointing_steps"):
        assert getattr(prior, name) == getattr(pipeline, f"prior_{name}") == getattr(defaults, name), name
    for name in ("hidden_dim", "num_blocks", "dropout"):
        assert getattr(prior, name) == getattr(pipeline, f"prior_{name}") == PRIOR_MODEL_DEFAULTS[name], name


def test_stage2_folder_is_stage2_unless_an_earlier_run_left_prior_training(tmp_path):
    from qiren_gen.training.pipeline_stages import FORMER_STAGE2_FOLDER, STAGE2_FOLDER, stage2_dir

    assert (STAGE2_FOLDER, FORMER_STAGE2_FOLDER) == ("stage2", "prior_training")
    assert stage2_dir(tmp_path) == tmp_path / "stage2"  # a new run
    (tmp_path / "prior_training").mkdir()
    assert stage2_dir(tmp_path) == tmp_path / "prior_training"  # a run of an earlier version
    (tmp_path / "stage2").mkdir()
    assert stage2_dir(tmp_path) == tmp_path / "stage2"  # both: the current name wins
