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
