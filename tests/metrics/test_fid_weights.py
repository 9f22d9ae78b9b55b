"""The FID weights are read as data: their whole sha256 is checked, they are loaded without pickle, and torch-fidelity's
Inception extractor is built from that checked state dict, so a weights file can never run code.

A made-up file whose digest shares the first 8 hex digits with the expected one takes a minute of hashing to make;
here the recorded digest is set to one that shares the first 8 digits with a test file and differs after them, the
same situation at no cost.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.io import BadInputFile
from qiren_gen.metrics import INCEPTION, compute_fid_kid, extractors
from testing_utils import parse_python

PACKAGE = Path(__file__).resolve().parents[2] / "qiren_gen"


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: what a hostile weights file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def hostile_weights(path: Path, marker: Path) -> Path:
    torch.save({"fc.weight": torch.zeros(2, 2), "hook": _Payload(marker)}, path)
    return path


def prefix_only(digest: str) -> str:
    """A digest with the same first 8 hex digits as ``digest`` and a different rest."""
    return digest[:8] + "".join("0" if c != "0" else "1" for c in digest[8:])


def test_the_payload_is_live_so_the_refusals_below_mean_something(tmp_path):
    marker = tmp_path / "ran"
    torch.load(hostile_weights(tmp_path / "w.pth", marker), weights_only=False)  # the unsafe load, in a test only
    assert marker.exists()


def _evaluate(tmp_path: Path, digest: str, size: int, *args: str, env: dict | None = None):
    reference = tmp_path / "reference"
    reference.mkdir(exist_ok=True)
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(reference / f"{i}.png")
    prelude = ("import sys; import qiren_gen.metrics.extractors as e; "
               f"e.INCEPTION_SHA256 = {digest!r}; e.INCEPTION_BYTES = {size}; "
               "from qiren_gen.cli.__main__ import main; sys.argv[0] = 'qiren-gen'; sys.exit(main())")
    command = [sys.executable, "-c", prelude, "evaluate", "--reference", str(reference), "--num-samples", "2",
               "--output", str(tmp_path / "out"), "--no-progress", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_a_file_matching_only_the_first_8_digits_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    weights = hostile_weights(tmp_path / "weights-inception-2015-12-05-6726825d.pth", marker)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    result = _evaluate(tmp_path, prefix_only(digest), weights.stat().st_size, "--fid-weights", str(weights))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"its sha256 is {digest}" in lines[0] and "--fid-weights" in lines[0]
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_file_planted_in_the_torch_hub_cache_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    weights = hostile_weights(cache / extractors.INCEPTION_WEIGHTS_FILE, marker)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    result = _evaluate(tmp_path, prefix_only(digest), weights.stat().st_size,
                       env={"TORCH_HOME": str(tmp_path / "torch")})
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "cached weights" in result.stderr, result.stderr
    assert not marker.exists()


def test_even_a_file_with_the_recorded_digest_is_loaded_without_pickle(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    weights = hostile_weights(tmp_path / "w.pth", marker)
    monkeypatch.setattr(extractors, "INCEPTION_SHA256", hashlib.sha256(weights.read_bytes()).hexdigest())
    monkeypatch.setattr(extractors, "INCEPTION_BYTES", weights.stat().st_size)
    with pytest.raises(BadInputFile) as info:
        extractors.load_inception_state_dict(weights)
    message = str(info.value)
    assert "pickle that is not plain tensors" in message and "\n" not in message
    assert "weights_only=False" not in message  # torch's advice to load it unsafely is not passed on
    assert not marker.exists()


def test_the_checked_extractor_is_torch_fidelitys_inception_and_nothing_loads_with_pickle(tmp_path, monkeypatch):
    """Random weights in torch-fidelity's layout: the checked extractor gives exactly the features of
    torch-fidelity's own class (its unsafe load used here on our own file only), and a whole FID run calls
    ``torch.load`` only with ``weights_only=True``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(0)
    layers = torch.nn.Module()
    extractors.add_inception_layers(layers)
    weights = tmp_path / "inception.pth"
    torch.save(layers.state_dict(), weights)
    monkeypatch.setattr(extractors, "INCEPTION_SHA256", hashlib.sha256(weights.read_bytes()).hexdigest())
    monkeypatch.setattr(extractors, "INCEPTION_BYTES", weights.stat().st_size)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    checked = extractors.build_feature_extractor(INCEPTION, ["2048"], str(weights))
    theirs = FeatureExtractorInceptionV3(INCEPTION, ["2048"], feature_extractor_weights_path=str(weights)).eval()
    with torch.no_grad():
        assert torch.equal(checked(images)[0], theirs(images)[0])

    calls = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    other = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    out, _ = compute_fid_kid(images, _Dataset(other), weights_path=str(weights), kid=False, cuda=False)
    assert np.isfinite(out["fid"]) and calls == [True]


class _Dataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def test_the_package_never_loads_a_pickle_that_can_run_code():
    """Every ``torch.load`` in the package passes ``weights_only=True``; nothing calls torch.hub's unhashed
    ``load_state_dict_from_url`` or torch-fidelity's ``calculate_metrics`` / ``create_feature_extractor`` (their
    extractors and cache load with ``weights_only=False``)."""
    bad = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "weights_only=False" in text.replace(" ", ""):
            bad.append(f"{path.name}: weights_only=False")
        for name in ("load_state_dict_from_url", "calculate_metrics(", "create_feature_extractor", "torch.hub.load("):
            if name in text:
                bad.append(f"{path.name}: {name}")
        for node in ast.walk(parse_python(text)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                flags = {k.arg: k.value for k in node.keywords}
                if not (isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True):
                    bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: torch.load without weights_only=True")
    assert bad == []


def test_torch_fidelitys_functions_on_the_fid_path_load_nothing():
    """The call paths into torch-fidelity: the functions :mod:`qiren_gen.metrics` calls read no file."""
    from torch_fidelity import datasets, feature_extractor_base, metric_fid, metric_kid, utils

    used = [utils.get_featuresdict_from_dataset, utils.glob_samples_paths, metric_fid.fid_features_to_statistics,
            metric_fid.fid_statistics_to_metric, metric_kid.kid_features_to_metric, datasets.ImagesPathDataset,
            feature_extractor_base.FeatureExtractorBase.__init__]
    for function in used:
        source = inspect.getsource(function)
        assert "torch.load" not in source and "load_state_dict_from_url" not in source, function
