"""Generic diffusers loading: every pipeline folder qiren-gen writes loads through plain
``DiffusionPipeline.from_pretrained(folder_or_hub_id, trust_remote_code=True)`` (diffusers' custom-pipeline
convention), from a folder and from a Hub id cached offline, and still through the project's own safe loader, which
also keeps loading the old ``model_index.json`` form (a plain class name, no module)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qiren_gen.pipelines import (
    QirenGenerationPipeline,
    QirenSignalFittingPipeline,
    QirenSuperResolutionPipeline,
    bundled_pipeline_dir,
)
from qiren_gen.pipelines.diffusers_entry import ENTRY_MODULE, entry_module_text
from testing_utils import save_every_pipeline_kind

REPO = Path(__file__).resolve().parents[2]
REV = "0123456789abcdef0123456789abcdef01234567"

# Loads every source both ways in a fresh interpreter (offline Hub, private HF cache), checks the class, that the two
# loaders give the same weights, and that a generation pipeline gives the same images both ways.
_SCRIPT = r"""
import json, sys
import torch
from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler
import qiren_gen.pipelines as P

out = {}
for name, source in json.loads(sys.argv[1]).items():
    generic = DiffusionPipeline.from_pretrained(source, trust_remote_code=True)
    own = getattr(P, type(generic).__name__).from_pretrained(source)
    models = [key for key, part in generic.components.items() if hasattr(part, "state_dict")]
    same = all(torch.equal(a, b) for key in models for a, b in
               zip(generic.components[key].state_dict().values(), own.components[key].state_dict().values()))
    row = {"class": f"{type(generic).__module__}.{type(generic).__name__}", "same_weights": same}
    if isinstance(generic, P.QirenGenerationPipeline):
        kw = dict(batch_size=2, height=12, width=12, num_inference_steps=3, output_type="np")
        a = generic(generator=torch.Generator().manual_seed(1), **kw).images
        b = own(generator=torch.Generator().manual_seed(1), **kw).images
        row["same_images"] = bool((a == b).all())
        # any scheduler and a per-component dtype dict, through diffusers' loader and the project's
        dpm = DPMSolverMultistepScheduler.from_config(own.scheduler.config)
        dtypes = {"prior": torch.bfloat16, "default": torch.float16}
        for loader in (DiffusionPipeline, type(own)):
            extra = {"trust_remote_code": True} if loader is DiffusionPipeline else {}
            swapped = loader.from_pretrained(source, scheduler=dpm, torch_dtype=dtypes, **extra)
            c = swapped(generator=torch.Generator().manual_seed(1), **kw).images
            row.setdefault("swapped", []).append([type(swapped.scheduler).__name__, str(swapped.prior.dtype),
                                                  str(swapped.decoder.dtype), bool((c == c).all())])
    out[name] = row
print("RESULT " + json.dumps(out))
"""


def _lay_into_hub_cache(folder: Path, cache: Path, repo_id: str) -> None:
    """The layout huggingface_hub leaves after a download: models--ORG--NAME/{refs/main, snapshots/REV/...}."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, root / "snapshots" / REV)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(REV)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    return save_every_pipeline_kind(tmp_path_factory.mktemp("generic"))


def test_saved_folders_name_the_entry_module(saved):
    for name, cls in (("gen", QirenGenerationPipeline), ("fit", QirenSignalFittingPipeline),
                      ("sr", QirenSuperResolutionPipeline), ("srprior", QirenSuperResolutionPipeline)):
        index = json.loads((saved[name] / "model_index.json").read_text())
        assert index["_class_name"] == [ENTRY_MODULE, cls.__name__]
        assert (saved[name] / f"{ENTRY_MODULE}.py").read_text() == entry_module_text(cls.__name__)


def test_the_bundled_folder_carries_the_entry_module_and_a_card_showing_both_ways():
    folder = bundled_pipeline_dir()
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == [ENTRY_MODULE, "QirenGenerationPipeline"]
    assert (folder / f"{ENTRY_MODULE}.py").read_text() == entry_module_text("QirenGenerationPipeline")
    card = (folder / "README.md").read_text()
    assert "QirenGenerationPipeline.from_pretrained(" in card
    assert "DiffusionPipeline.from_pretrained(" in card and "trust_remote_code=True" in card


@pytest.mark.slow
def test_generic_diffusers_loads_every_folder_and_a_cached_hub_id_offline(saved, tmp_path):
    cache = tmp_path / "hub"
    _lay_into_hub_cache(saved["gen"], cache, "qiren-gen-tests/tiny-faces")
    _lay_into_hub_cache(saved["fit"], cache, "qiren-gen-tests/tiny-fit")
    sources = {name: str(path) for name, path in saved.items()}
    sources.update(bundled=str(bundled_pipeline_dir()), hub_gen="qiren-gen-tests/tiny-faces",
                   hub_fit="qiren-gen-tests/tiny-fit")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home"),
           "HF_HUB_CACHE": str(cache), "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(sources)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    expected = {"gen": "generation.QirenGenerationPipeline", "bundled": "generation.QirenGenerationPipeline",
                "hub_gen": "generation.QirenGenerationPipeline", "fit": "signal_fitting.QirenSignalFittingPipeline",
                "hub_fit": "signal_fitting.QirenSignalFittingPipeline",
                "sr": "superresolution.QirenSuperResolutionPipeline",
                "srprior": "superresolution.QirenSuperResolutionPipeline"}
    for name, suffix in expected.items():
        assert result[name]["class"] == f"qiren_gen.pipelines.{suffix}", (name, result[name])
        assert result[name]["same_weights"], name
    assert all(result[name]["same_images"] for name in ("gen", "bundled", "hub_gen"))
    expected_swap = ["DPMSolverMultistepScheduler", "torch.bfloat16", "torch.float16", True]
    assert all(result[name]["swapped"] == [expected_swap] * 2 for name in ("gen", "bundled", "hub_gen"))


def test_the_safe_loader_keeps_loading_the_old_index_form(saved, tmp_path):
    folder = shutil.copytree(saved["gen"], tmp_path / "old")
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "QirenGenerationPipeline"
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / f"{ENTRY_MODULE}.py").unlink()
    old = QirenGenerationPipeline.from_pretrained(folder)
    new = QirenGenerationPipeline.from_pretrained(saved["gen"])
    for a, b in zip(old.prior.state_dict().values(), new.prior.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    old.save_pretrained(tmp_path / "resaved")  # re-saving upgrades the folder to the new form
    assert json.loads((tmp_path / "resaved" / "model_index.json").read_text())["_class_name"][0] == ENTRY_MODULE


def test_the_safe_loader_reads_a_cached_hub_id_offline_without_the_module(saved, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    _lay_into_hub_cache(saved["gen"], cache, "qiren-gen-tests/tiny-faces")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    pipe = QirenGenerationPipeline.from_pretrained("qiren-gen-tests/tiny-faces", cache_dir=str(cache))
    assert isinstance(pipe, QirenGenerationPipeline)
    with pytest.raises(OSError, match="cannot reach the Hugging Face Hub"):
        QirenGenerationPipeline.from_pretrained("qiren-gen-tests/not-cached", cache_dir=str(cache))
