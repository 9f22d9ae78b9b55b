"""Safe loading: a pipeline folder is read as JSON + safetensors only. Pickles are never unpickled, code in the folder
is never run, classes from outside diffusers / qiren_gen are never imported; every refusal is one clear error."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qiren_gen.cli import main as cli_main
from qiren_gen.pipelines import QirenGenerationPipeline, QirenSignalFittingPipeline, QirenSuperResolutionPipeline
from testing_utils import Payload as _Payload
from testing_utils import save_every_pipeline_kind


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    return save_every_pipeline_kind(tmp_path_factory.mktemp("safe"))


CASES = [("gen", QirenGenerationPipeline, "prior"), ("fit", QirenSignalFittingPipeline, "model"),
         ("sr", QirenSuperResolutionPipeline, "model"), ("srprior", QirenSuperResolutionPipeline, "decoder")]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _plant_pickle(folder: Path, component: str, marker: Path) -> None:
    with open(folder / component / "diffusion_pytorch_model.bin", "wb") as handle:
        pickle.dump({"weight": _Payload(marker)}, handle)


@pytest.mark.parametrize("kind, cls, component", CASES)
def test_pickle_only_weights_are_refused_unread(folders, tmp_path, kind, cls, component):
    marker = tmp_path / "PWNED"
    folder = _copy(folders[kind], tmp_path / "pickled")
    for f in (folder / component).glob("*.safetensors"):
        f.unlink()
    _plant_pickle(folder, component, marker)
    with pytest.raises(ValueError, match="safetensors"):
        cls.from_pretrained(folder)
    with pytest.raises(ValueError, match="safetensors"):
        cls.from_pretrained(folder, use_safetensors=False)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload is live: a loader that unpickled it would leave this
    assert marker.exists()


@pytest.mark.parametrize("kind, cls, component", CASES)
def test_pickle_beside_safetensors_is_ignored(folders, tmp_path, kind, cls, component):
    marker = tmp_path / "PWNED"
    folder = _copy(folders[kind], tmp_path / "both")
    _plant_pickle(folder, component, marker)
    pipe = cls.from_pretrained(folder)
    assert isinstance(pipe, cls) and not marker.exists()


@pytest.mark.parametrize("kind, cls, component", CASES)
def test_code_in_folder_is_refused_and_never_run(folders, tmp_path, kind, cls, component):
    marker = tmp_path / "PWNED"
    code = f"import os\nos.makedirs({str(marker)!r})\n"
    folder = _copy(folders[kind], tmp_path / "code")
    (folder / "pipeline.py").write_text(code)
    index = json.loads((folder / "model_index.json").read_text())
    with pytest.raises(ValueError, match="contains Python code"):
        cls.from_pretrained(folder)
    with pytest.raises(ValueError, match="custom_pipeline is not supported"):
        cls.from_pretrained(folder, custom_pipeline=str(folder / "pipeline.py"))
    with pytest.raises(ValueError, match="contains Python code"):  # trust_remote_code never lets folder code run
        cls.from_pretrained(folder, trust_remote_code=True)
    assert isinstance(cls.from_pretrained(folders[kind], trust_remote_code=True), cls)  # the installed class
    (folder / "pipeline.py").unlink()
    # diffusers' own custom-code route: a [module, class] pair as the pipeline class name
    index["_class_name"] = ["pipeline", cls.__name__]
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / component / "pipeline.py").write_text(code)
    with pytest.raises(ValueError):
        cls.from_pretrained(folder)
    assert not marker.exists()


@pytest.mark.parametrize("kind, cls, component", CASES)
@pytest.mark.parametrize("spec", [["os", "system"], ["builtins", "eval"], ["subprocess", "Popen"], "os.system"])
def test_foreign_classes_are_refused(folders, tmp_path, kind, cls, component, spec):
    folder = _copy(folders[kind], tmp_path / "foreign")
    index = json.loads((folder / "model_index.json").read_text())
    index[component] = spec
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="only diffusers and qiren_gen|not a \\[library, class\\] pair"):
        cls.from_pretrained(folder)


def test_saved_folders_hold_no_pickles_and_only_the_diffusers_entry_module(folders):
    from qiren_gen.pipelines.diffusers_entry import entry_module_text

    for kind, cls, _ in CASES:
        folder = folders[kind]
        names = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
        code = [n for n in names if not n.endswith((".json", ".safetensors", ".md"))]
        assert code == ["qiren_pipeline.py"], names
        assert (folder / "qiren_pipeline.py").read_text() == entry_module_text(cls.__name__)


@pytest.mark.parametrize("kind, cls, component", CASES)
@pytest.mark.parametrize("payload", ["import os\nos.makedirs({marker!r})\n",
                                     "from qiren_gen.pipelines import {cls}\nimport os\nos.makedirs({marker!r})\n",
                                     "from qiren_gen.pipelines import {cls}\nexec('import os')\n",
                                     "from os import makedirs as {cls}\n", "def broken(:\n"])
def test_a_tampered_entry_module_is_refused_and_never_run(folders, tmp_path, kind, cls, component, payload):
    marker = tmp_path / "PWNED"
    folder = _copy(folders[kind], tmp_path / "tampered")
    (folder / "qiren_pipeline.py").write_text(payload.format(marker=str(marker), cls=cls.__name__))
    with pytest.raises(ValueError, match="qiren_pipeline.py is not the plain qiren-gen import"):
        cls.from_pretrained(folder)
    assert not marker.exists()


def test_an_entry_module_for_another_class_is_refused(folders, tmp_path):
    folder = _copy(folders["gen"], tmp_path / "other")
    text = (folder / "qiren_pipeline.py").read_text().replace("QirenGenerationPipeline", "QirenSignalFittingPipeline")
    (folder / "qiren_pipeline.py").write_text(text)
    with pytest.raises(ValueError, match="not the plain qiren-gen import of QirenGenerationPipeline"):
        QirenGenerationPipeline.from_pretrained(folder)


def test_cli_sample_refuses_a_pickled_pipeline_in_process(folders, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    folder = _copy(folders["gen"], tmp_path / "pickled")
    (folder / "prior" / "diffusion_pytorch_model.safetensors").unlink()
    _plant_pickle(folder, "prior", marker)
    assert cli_main(["sample", "--pipeline", str(folder), "--output", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "safetensors" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_cli_sample_refuses_a_pickled_pipeline(folders, tmp_path):
    marker = tmp_path / "PWNED"
    folder = _copy(folders["gen"], tmp_path / "pickled")
    (folder / "prior" / "diffusion_pytorch_model.safetensors").unlink()
    _plant_pickle(folder, "prior", marker)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "qiren_gen.cli", "sample", "--pipeline", str(folder), "--output",
                           str(tmp_path / "x.png")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "safetensors" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "x.png").exists()


def test_reference_statistics_are_safetensors_and_a_pickle_is_refused_unread(tmp_path):
    from qiren_gen.metrics import ReferenceStatistics

    stats = ReferenceStatistics("qiren-pixel-pool", "pool", np.eye(3), np.ones((3, 3)), 7, resolution=8,
                                features=torch.randn(7, 3), meta={"note": "x"})
    stats.save(tmp_path / "ref.pt")
    assert (tmp_path / "ref.pt").read_bytes()[8:9] == b"{"  # safetensors: 8-byte header length, then JSON
    back = ReferenceStatistics.load(tmp_path / "ref.pt")
    assert np.array_equal(back.sigma, stats.sigma) and torch.equal(back.features, stats.features)
    assert (back.num_images, back.resolution, back.meta) == (7, 8, {"note": "x"})
    marker = tmp_path / "PWNED"
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"format": "qiren-gen-reference-stats/1", "mu": _Payload(marker)}, handle)
    torch.save({"format": "qiren-gen-reference-stats/1", "mu": _Payload(marker)}, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(ValueError, match="not a readable reference statistics file"):
            ReferenceStatistics.load(tmp_path / name)
    assert not marker.exists()
