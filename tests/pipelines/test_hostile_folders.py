"""Hostile and careless pipeline folders, one class of defect at a time: names that would import a module, JSON that
is too deep or too large, configs with unbounded, mistyped or non-finite values, scheduler configs that never finish
building, weights that do not match the model. Each is refused by ``from_pretrained`` in one line naming the cause;
nothing is imported because a folder names it."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from qiren_gen.models.config_checks import MODEL_BOUNDS, check_scheduler_config
from qiren_gen.pipelines import QirenGenerationPipeline, QirenSignalFittingPipeline
from qiren_gen.pipelines.component_classes import MODEL_CLASSES, SCHEDULER_NAMES, component_class
from qiren_gen.runtime.json_files import MAX_CONFIG_BYTES, read_json_file
from testing_utils import tiny_pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile") / "pipe"
    tiny_pipeline().save_pretrained(folder)
    return folder


def _edit_json(rel: str, change):
    def edit(folder: Path) -> None:
        path = folder / rel
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return edit


def _write(rel: str, text: str):
    def edit(folder: Path) -> None:
        (folder / rel).write_text(text)
    return edit


def _edit_weights(component: str, change):
    def edit(folder: Path) -> None:
        path = folder / component / "diffusion_pytorch_model.safetensors"
        tensors = load_file(path)
        change(tensors)
        save_file(tensors, path)
    return edit


def _first(tensors: dict) -> str:
    return sorted(tensors)[0]


SCHEDULER = "scheduler/scheduler_config.json"
HOSTILE = {
    # names that would run a module's code if imported
    "a CLI module as a component": (_edit_json("model_index.json", lambda d: d.update(
        decoder=["qiren_gen.cli.__main__", "main"])), "names an unknown class"),
    "a table class under a module path that is not its own": (_edit_json("model_index.json", lambda d: d.update(
        prior=["qiren_gen.cli", "LatentDenoiser"])), "names an unknown class"),
    "a diffusers pipeline module as the scheduler": (_edit_json("model_index.json", lambda d: d.update(
        scheduler=["diffusers.pipelines.stable_diffusion", "StableDiffusionPipeline"])),
        "not a class a qiren-gen pipeline may hold"),
    "a scheduler in a model slot": (_edit_json("model_index.json", lambda d: d.update(
        prior=["diffusers", "DDIMScheduler"])), "scheduler slot must be a diffusers scheduler"),
    "a model in the scheduler slot": (_edit_json("model_index.json", lambda d: d.update(
        scheduler=["qiren_gen.models.denoiser", "LatentDenoiser"])), "scheduler slot must be a diffusers scheduler"),
    "an entry module importing the CLI": (_write("qiren_pipeline.py", "from qiren_gen.cli import __main__\n"),
                                          "not the plain qiren-gen import"),
    "an entry module with two imports": (_write("qiren_pipeline.py", "from qiren_gen.pipelines import "
                                                "QirenGenerationPipeline\nfrom qiren_gen.cli import main\n"),
                                         "not the plain qiren-gen import"),
    "an entry module importing under another name": (_write("qiren_pipeline.py", "from qiren_gen.pipelines import "
                                                            "QirenGenerationPipeline as X\n"),
                                                      "not the plain qiren-gen import"),
    # JSON files
    "model_index.json nested 100,000 deep": (_write("model_index.json", "[" * 100_000 + "]" * 100_000),
                                             "levels deep"),
    "a config.json over the size cap": (_edit_json("prior/config.json", lambda d: d.update(
        note="x" * (MAX_CONFIG_BYTES + 1))), "over the cap of"),
    "a config.json holding a list": (_write("prior/config.json", "[1, 2, 3]"), "must hold a JSON object"),
    "a config.json that is not UTF-8": (lambda f: (f / "prior" / "config.json").write_bytes(b'{"a": "\xff"}'),
                                        "not valid JSON"),
    "an integer with 5000 digits": (_write("prior/config.json", '{"num_blocks": ' + "9" * 5000 + "}"),
                                    "not valid JSON"),
    # component configs
    "num_blocks 1e7": (_edit_json("prior/config.json", lambda d: d.update(num_blocks=10**7)), "num_blocks=10000000"),
    "num_blocks true": (_edit_json("prior/config.json", lambda d: d.update(num_blocks=True)), "(a boolean)"),
    "num_blocks 2.5": (_edit_json("prior/config.json", lambda d: d.update(num_blocks=2.5)), "not a whole number"),
    "dropout NaN": (_edit_json("prior/config.json", lambda d: d.update(dropout=math.nan)), "dropout is NaN"),
    "dropout 1": (_edit_json("prior/config.json", lambda d: d.update(dropout=1.0)), "dropout=1.0 is outside [0, 1)"),
    "hidden_dim at the cap with 256 blocks (over the memory budget)": (
        _edit_json("prior/config.json", lambda d: d.update(hidden_dim=8192, num_blocks=256)),
        "over the limit of 134,217,728"),
    "an unknown key": (_edit_json("decoder/config.json", lambda d: d.update(bogus=1)), "'bogus' is not a parameter"),
    "a string where a number belongs": (_edit_json("modulator/config.json", lambda d: d.update(latent_dim="6")),
                                        "latent_dim is a string"),
    "an object where a number belongs": (_edit_json("modulator/config.json", lambda d: d.update(latent_dim={})),
                                         "latent_dim is a JSON object"),
    "an unknown modulation": (_edit_json("decoder/config.json", lambda d: d.update(modulation="nope")),
                              "modulation must be one of"),
    "n_qubits over the simulator's limit": (_edit_json("decoder/config.json", lambda d: d.update(n_qubits=40)),
                                            "n_qubits=40 is outside [1, 20]"),
    "a reference grid of 256**8 points": (_edit_json("decoder/config.json", lambda d: d.update(
        in_features=8, reference_size=256)), "reference_size ** in_features"),
    "a config naming another class": (_edit_json("prior/config.json", lambda d: d.update(_class_name="ModulatedQIREN")),
                                      "describes a 'ModulatedQIREN', not a LatentDenoiser"),
    # scheduler configs
    "num_train_timesteps 1e9": (_edit_json(SCHEDULER, lambda d: d.update(num_train_timesteps=10**9)),
                                "num_train_timesteps=1000000000 is outside"),
    "steps_offset 1e9": (_edit_json(SCHEDULER, lambda d: d.update(steps_offset=10**9)), "steps_offset"),
    "steps_offset at num_train_timesteps": (_edit_json(SCHEDULER, lambda d: d.update(steps_offset=100)),
                                            "must be below num_train_timesteps"),
    "trained_betas of length 3": (_edit_json(SCHEDULER, lambda d: d.update(trained_betas=[0.1, 0.2, 0.3])),
                                  "trained_betas has 3 values"),
    "trained_betas with a beta of 1": (_edit_json(SCHEDULER, lambda d: d.update(trained_betas=[1.0] * 100)),
                                       "every beta must be a number in (0, 1)"),
    "trained_betas with a NaN": (_edit_json(SCHEDULER, lambda d: d.update(trained_betas=[math.nan] * 100)),
                                 "must be finite"),
    "beta_end above 1": (_edit_json(SCHEDULER, lambda d: d.update(beta_end=1.5)), "beta_end=1.5 is outside (0, 1)"),
    "beta_start above beta_end": (_edit_json(SCHEDULER, lambda d: d.update(beta_start=0.5, beta_end=0.1)),
                                  "beta_start=0.5 is above beta_end=0.1"),
    "an unknown prediction_type": (_edit_json(SCHEDULER, lambda d: d.update(prediction_type="noise")),
                                   "prediction_type='noise' is not one of"),
    "an unknown beta_schedule": (_edit_json(SCHEDULER, lambda d: d.update(beta_schedule="cubic")),
                                 "beta_schedule='cubic' is not one of"),
    "clip_sample as a number": (_edit_json(SCHEDULER, lambda d: d.update(clip_sample=1)), "clip_sample=1 is a number"),
    # weights
    "bool weights": (_edit_weights("prior", lambda t: t.update({_first(t): t[_first(t)] > 0})), "stored as BOOL"),
    "int64 weights": (_edit_weights("prior", lambda t: t.update({_first(t): t[_first(t)].long()})), "stored as I64"),
    "uint8 weights": (_edit_weights("prior", lambda t: t.update({_first(t): t[_first(t)].to(torch.uint8)})),
                      "stored as U8"),
    "an extra tensor": (_edit_weights("prior", lambda t: t.update(extra=torch.zeros(2))), "the weights hold 'extra'"),
    "a missing tensor": (_edit_weights("prior", lambda t: t.pop(_first(t))), "the weights lack 'blocks.0.fc1.bias'"),
    "a tensor of the wrong shape": (_edit_weights("prior", lambda t: t.update({_first(t): torch.zeros(3, 3)})),
                                    "has shape (3, 3)"),
    "NaN weights": (_edit_weights("modulator", lambda t: t.update({_first(t): t[_first(t)] * math.nan})),
                    "weight 'inner_lr' holds NaN or infinite values"),
    "infinite weights": (_edit_weights("decoder", lambda t: t.update({_first(t): t[_first(t)] + math.inf})),
                         "holds NaN or infinite values"),
    "a truncated weights file": (lambda f: (f / "prior" / "diffusion_pytorch_model.safetensors").write_bytes(
        (f / "prior" / "diffusion_pytorch_model.safetensors").read_bytes()[:100]), "is damaged or not a safetensors"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_folder_is_refused_in_one_line_naming_the_cause(saved, tmp_path, case):
    edit, fragment = HOSTILE[case]
    folder = shutil.copytree(saved, tmp_path / "folder")
    edit(folder)
    with pytest.raises((ValueError, OSError)) as info:
        QirenGenerationPipeline.from_pretrained(folder)
    message = str(info.value)
    assert fragment in message, message
    assert len(message.splitlines()) == 1 and len(message) < 500, message


def test_a_file_linking_outside_the_folder_is_refused(saved, tmp_path):
    folder = shutil.copytree(saved, tmp_path / "folder")
    outside = tmp_path / "outside.safetensors"
    shutil.move(folder / "prior" / "diffusion_pytorch_model.safetensors", outside)
    os.symlink(outside, folder / "prior" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(ValueError, match="links outside the folder"):
        QirenGenerationPipeline.from_pretrained(folder)


def test_a_signal_fitting_folder_with_int_batchnorm_counters_loads_and_float_ones_are_refused(tmp_path):
    """A model's own integer tensors (BatchNorm's num_batches_tracked) must stay integers; floats there are refused."""
    QirenSignalFittingPipeline.from_model_name("qiren", 2, 1).save_pretrained(tmp_path / "fit")
    assert isinstance(QirenSignalFittingPipeline.from_pretrained(tmp_path / "fit"), QirenSignalFittingPipeline)
    path = tmp_path / "fit" / "model" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    key = next(k for k in tensors if k.endswith("num_batches_tracked"))
    save_file({**tensors, key: tensors[key].float()}, path)
    with pytest.raises(ValueError, match=f"weight '{key}' is stored as F32; a QIREN needs a I64"):
        QirenSignalFittingPipeline.from_pretrained(tmp_path / "fit")


@pytest.mark.slow
def test_no_module_is_imported_because_a_folder_names_it(saved, tmp_path):
    """In a fresh interpreter: loading folders that name modules leaves those modules unimported."""
    names = {"qiren_gen.cli.__main__": "main", "qiren_gen.demo.serve": "ModulatedQIREN",
             "diffusers.pipelines.stable_diffusion": "StableDiffusionPipeline", "qiren_gen.research": "LatentDenoiser"}
    folders = []
    for i, (module, cls) in enumerate(names.items()):
        folder = shutil.copytree(saved, tmp_path / f"f{i}")
        index = json.loads((folder / "model_index.json").read_text())
        index["decoder" if i % 2 == 0 else "scheduler"] = [module, cls]
        (folder / "model_index.json").write_text(json.dumps(index))
        folders.append(str(folder))
    script = (
        "import json, sys\n"
        "from qiren_gen.pipelines import QirenGenerationPipeline\n"
        f"folders, modules = {folders!r}, {list(names)!r}\n"
        "before = {m for m in modules if m in sys.modules}\n"
        "errors = []\n"
        "for f in folders:\n"
        "    try:\n"
        "        QirenGenerationPipeline.from_pretrained(f)\n"
        "        errors.append('loaded')\n"
        "    except ValueError as exc:\n"
        "        errors.append(str(exc))\n"
        "print(json.dumps({'before': sorted(before), 'after': [m for m in modules if m in sys.modules], "
        "'errors': errors}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["before"] == [] and result["after"] == [], result
    assert all(e != "loaded" and len(e.splitlines()) == 1 for e in result["errors"]), result["errors"]


def test_the_table_holds_only_already_imported_classes_and_every_table_scheduler_checks_clean():
    for cls in MODEL_CLASSES.values():
        assert cls.__module__ in sys.modules and cls.__module__.startswith("qiren_gen.models.")
    loaded = [component_class(["diffusers", name], "scheduler", "t") for name in SCHEDULER_NAMES
              if name != "DPMSolverSDEScheduler"]  # needs torchsde, an optional backend
    for cls in loaded:
        check_scheduler_config(cls, dict(cls().config), cls.__name__)  # diffusers' defaults are within the bounds
    with pytest.raises(ValueError, match="only diffusers and qiren_gen"):
        component_class(["os", "system"], "decoder", "t")


def test_every_number_in_a_table_model_config_has_a_bound():
    """A new int / float parameter of a loadable model must get a bound in MODEL_BOUNDS (else it would be capped only
    by the generic width cap, or not at all for floats)."""
    missing = []
    for cls in MODEL_CLASSES.values():
        for name, hint in typing.get_type_hints(cls.__init__).items():
            kinds = {hint} if typing.get_origin(hint) is None else set(typing.get_args(hint))
            if kinds & {int, float} and name not in MODEL_BOUNDS:
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, missing


def test_the_json_reader_counts_depth_outside_strings_only(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"text": "[" * 1000, "list": [[1, 2], [3]]}))
    assert read_json_file(path)["list"] == [[1, 2], [3]]
    path.write_text('{"a": ' + "[" * 9 + "]" * 9 + "}")
    with pytest.raises(ValueError, match="nested 10 levels deep"):
        read_json_file(path)


def test_the_bundled_pipeline_passes_every_check():
    from qiren_gen.pipelines import bundled_pipeline_dir

    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    assert pipe.prior.config.num_blocks >= 1


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(component=st.sampled_from(["decoder", "modulator", "prior", "scheduler"]), data=st.data())
def test_any_json_value_in_any_config_key_loads_or_is_one_line(saved, tmp_path_factory, component, data):
    """Fuzzing: whatever JSON value replaces whatever key of a component's config, loading that component either
    works or raises ValueError / OSError in one line; never another exception type."""
    from qiren_gen.pipelines.loading import load_checked_component

    folder = tmp_path_factory.mktemp("fuzz") / component
    shutil.copytree(saved / component, folder)
    config_name = "scheduler_config.json" if component == "scheduler" else "config.json"
    config = json.loads((folder / config_name).read_text())
    key = data.draw(st.sampled_from(sorted(config) + ["new_key"]), label="key")
    config[key] = data.draw(_JSON_VALUES, label="value")
    (folder / config_name).write_text(json.dumps(config))
    spec = json.loads((saved / "model_index.json").read_text())[component]
    klass = component_class(spec, component, "fuzz")
    try:
        load_checked_component(folder, klass)
    except (ValueError, OSError) as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)


def test_the_demo_pipeline_box_refuses_hostile_folders_and_keeps_serving(saved, tmp_path):
    """The demo loads a visitor's folder under its model lock: each refusal is one line, and the default pipeline
    answers right after (a folder naming the CLI once started a second demo inside the request)."""
    from qiren_gen.demo.actions import sample_grid
    from qiren_gen.demo.limits import DemoLimits
    from qiren_gen.demo.store import PipelineStore

    store = PipelineStore(tiny_pipeline())
    for case in ("a CLI module as a component", "num_train_timesteps 1e9", "num_blocks 1e7"):
        folder = shutil.copytree(saved, tmp_path / case.replace(" ", "-"))
        HOSTILE[case][0](folder)
        with pytest.raises(ValueError) as info:
            with store.use(str(folder)):
                pass
        assert HOSTILE[case][1] in str(info.value) and len(str(info.value).splitlines()) == 1
    with store.use("") as pipe:
        assert sample_grid(pipe, 0, 1, 8, 2, DemoLimits()).size == (8, 8)


def test_a_component_outside_the_table_is_refused_before_saving(tmp_path):
    """What the loader would refuse is never written: a diffusers scheduler qiren-gen does not list is refused."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    pipe = tiny_pipeline()
    pipe.scheduler = FlowMatchEulerDiscreteScheduler()
    with pytest.raises(ValueError, match="not one of the classes a saved folder may name"):
        pipe.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()
