"""One name per concept: the circuit-features decoder, the trainer's decoder names beside the fitting models', and
the former names that saved pipelines, run configs and checkpoints still carry."""
from __future__ import annotations

import json

import pytest

from qiren_gen.models import MODEL_BUILDERS, FeatureSynthesisDecoder, ModulatedQIREN, ModulatedSIREN
from qiren_gen.models.registry import canonical_decoder
from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.training.checkpointing import check_compatible
from qiren_gen.training.functa_trainer import DECODERS, FunctaTrainingConfig, build_decoder


def test_the_shipped_folder_says_quantum_and_loads_as_circuit(tmp_path):
    saved = json.loads((bundled_pipeline_dir() / "decoder" / "config.json").read_text())
    assert saved["features"] == "quantum"  # written before the rename: the alias is what makes it load
    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    assert pipe.decoder.config.features == "circuit"
    pipe.decoder.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["features"] == "circuit"


def test_feature_names_and_their_alias():
    tiny = dict(n_heads=2, n_qubits=2, hidden_features=4, hidden_layers=1, reference_size=4)
    assert FeatureSynthesisDecoder(**tiny).config.features == "circuit"
    assert FeatureSynthesisDecoder(features="quantum", **tiny).config.features == "circuit"
    with pytest.raises(ValueError, match="features"):
        FeatureSynthesisDecoder(features="qubits", **tiny)


def test_trainer_decoder_names_do_not_reuse_the_fitting_models_names():
    assert not set(DECODERS) & set(MODEL_BUILDERS)  # "qiren" / "siren" name one class each, in one registry
    assert FunctaTrainingConfig().decoder == "modulated_qiren"
    for old, cls in (("qiren", ModulatedQIREN), ("siren", ModulatedSIREN)):
        cfg = FunctaTrainingConfig(decoder=old, n_qubits=2, hidden_layers=1, hidden_features=4)
        assert cfg.decoder == f"modulated_{old}" and isinstance(build_decoder(cfg), cls)
    from train_functa import parse_args

    assert parse_args(["--decoder", "siren"]).decoder == "modulated_siren"


def test_decoder_names_are_snake_case_and_the_hyphenated_spellings_still_read():
    assert all(name.isidentifier() and name.islower() for name in DECODERS)
    from train_functa import parse_args

    for name in DECODERS:
        hyphenated = name.replace("_", "-")
        assert canonical_decoder(hyphenated) == canonical_decoder(name) == name
        assert FunctaTrainingConfig(decoder=hyphenated).decoder == name  # the Python config
        assert parse_args(["--decoder", hyphenated]).decoder == name  # the flag
    cfg = FunctaTrainingConfig()
    cfg.decoder = "wide-qiren"  # assignment after construction is read the same way
    assert cfg.decoder == "wide_qiren"
    assert canonical_decoder("modulated qiren") == "modulated qiren"  # anything else is left for the check to refuse
    with pytest.raises(ValueError, match="decoder must be one of"):
        FunctaTrainingConfig(decoder="modulated qiren").validate()


def test_an_unknown_decoder_flag_is_one_line_and_exit_2(capsys):
    from train_functa import parse_args

    with pytest.raises(SystemExit) as stop:
        parse_args(["--decoder", "circuit-feature"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "invalid choice: 'circuit-feature'" in err and "circuit_features" in err


def test_a_checkpoint_made_under_the_former_feature_name_still_resumes():
    current = {"decoder_class": "FeatureSynthesisDecoder", "decoder": {"features": "circuit", "n_heads": 2}}
    check_compatible({**current, "decoder": {"features": "quantum", "n_heads": 2}}, current, "ckpt")
    with pytest.raises(ValueError, match="n_heads"):
        check_compatible({**current, "decoder": {"features": "quantum", "n_heads": 3}}, current, "ckpt")


def test_fitting_model_names_are_snake_case_and_the_hyphenated_spellings_still_build():
    from qiren_gen.models import MODEL_ALIASES, build_inr, canonical_model_name
    from qiren_gen.pipelines import QirenSignalFittingPipeline
    from qiren_gen.runtime.model_names import FIT_MODEL_NAMES
    from qiren_gen.training import build_fitting_model

    assert tuple(MODEL_BUILDERS) == FIT_MODEL_NAMES  # the CLI's torch-free list is the registry's
    assert all(name.isidentifier() and name.islower() for name in MODEL_BUILDERS)
    assert MODEL_ALIASES == {"qiren-plus": "qiren_plus", "relu-rff": "relu_rff"}
    for old, new in MODEL_ALIASES.items():
        assert canonical_model_name(old) == canonical_model_name(new) == new
        current, former = build_inr(new, 2), build_inr(old, 2)
        assert type(former) is type(current) and dict(former.config) == dict(current.config)
        assert dict(build_fitting_model(old, 2, seed=3).config) == dict(build_fitting_model(new, 2, seed=3).config)
        pipe = QirenSignalFittingPipeline.from_model_name(old, in_features=2, seed=0)
        assert dict(pipe.model.config) == dict(QirenSignalFittingPipeline.from_model_name(new, 2).model.config)
    assert canonical_model_name("relu rff") == "relu rff"  # anything else is left for the check to refuse
    with pytest.raises(ValueError, match="unknown model 'relu rff'; choose one of qiren, qiren_plus"):
        build_inr("relu rff", 2)


def test_the_demo_baseline_keys_are_snake_case_and_the_hyphenated_spellings_still_read():
    from qiren_gen.demo.live_fit import BASELINE_ALIASES, FIT_BASELINES, PAPER_BASELINE, canonical_baseline

    assert PAPER_BASELINE == "siren_paper" and all(name.isidentifier() for name in FIT_BASELINES)
    assert all(b.model in MODEL_BUILDERS for b in FIT_BASELINES.values())
    assert BASELINE_ALIASES == {"siren-paper": "siren_paper", "relu-rff": "relu_rff"}
    assert [canonical_baseline(old) for old in BASELINE_ALIASES] == ["siren_paper", "relu_rff"]
    assert canonical_baseline("resnet") == "resnet"
