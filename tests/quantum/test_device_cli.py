"""``qiren-gen sample --pennylane-device``: the circuits measured once on a device, then the images; bad device
flags, names and a missing extra are one line and exit code 2."""
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.cli import main
from qiren_gen.models import FeatureSynthesisDecoder, LatentModulator
from testing_utils import _assemble, tiny_pipeline


@pytest.fixture(scope="module")
def feature_pipe_dir(tmp_path_factory):
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(n_heads=2, hidden_features=8, hidden_layers=1, reference_size=4)
    pipe = _assemble(decoder, LatentModulator.for_decoder(decoder, latent_dim=4), 4, 8)
    folder = tmp_path_factory.mktemp("feature-pipe")
    pipe.save_pretrained(folder)
    return folder


def _sample(folder, out, *extra):
    return main(["sample", "--pipeline", str(folder), "--num-images", "2", "--resolution", "12", "--steps", "2",
                 "--output", str(out), *extra])


@pytest.mark.slow
def test_sample_on_a_fake_ibm_backend(feature_pipe_dir, tmp_path, capsys):
    out = tmp_path / "aer.png"
    assert _sample(feature_pipe_dir, out, "--pennylane-device", "qiskit.aer", "--fake-backend", "FakeManilaV2",
                   "--shots", "500") == 0
    printed = capsys.readouterr().out
    assert Image.open(out).size == (24, 12)
    assert "executions: 50 (500 shots each) in 1 job(s)" in printed  # 2 heads x 25, whatever the resolution
    assert "fake_manila's calibrated noise" in printed and "two-qubit gates" in printed
    assert "estimated device time" in printed


def test_exact_device_draws_the_simulators_images(feature_pipe_dir, tmp_path):
    assert _sample(feature_pipe_dir, tmp_path / "sim.png") == 0
    assert _sample(feature_pipe_dir, tmp_path / "dev.png", "--pennylane-device", "default.qubit") == 0
    a, b = (torch.from_numpy(np.asarray(Image.open(tmp_path / f), dtype=np.float32)) for f in ("sim.png", "dev.png"))
    assert (a - b).abs().max() <= 1  # float32 rendering: at most one grey level apart


@pytest.mark.parametrize("extra, message", [
    (["--fake-backend", "FakeBrisbane"], "--fake-backend needs --pennylane-device"),
    (["--mitigation", "readout"], "--mitigation needs --pennylane-device"),
    (["--pennylane-device", "default.qubit", "--mitigation", "twirl"], "unknown mitigation 'twirl'"),
    (["--pennylane-device", "default.qubit", "--noise", "0.01"], "the device brings its own"),
    (["--pennylane-device", "no.such.device"], "unknown PennyLane device 'no.such.device'"),
    (["--pennylane-device", "qiskit.aer", "--fake-backend", "FakeNowhere"], "unknown fake IBM backend 'FakeNowhere'"),
    (["--pennylane-device", "default.qubit", "--fake-backend", "FakeManilaV2"], "runs on the 'qiskit.aer' device"),
])
def test_bad_device_flags_exit_2_one_line(feature_pipe_dir, tmp_path, capsys, extra, message):
    rc = _sample(feature_pipe_dir, tmp_path / "x.png", *extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_missing_qpu_extra_exit_2_one_line(feature_pipe_dir, tmp_path, capsys, monkeypatch):
    for module in ("pennylane_qiskit", "qiskit_ibm_runtime", "qiskit_ibm_runtime.fake_provider", "qiskit_aer"):
        monkeypatch.setitem(sys.modules, module, None)  # import of any of them now raises ImportError
    rc = _sample(feature_pipe_dir, tmp_path / "x.png", "--pennylane-device", "qiskit.aer", "--fake-backend",
                 "FakeBrisbane")
    err = capsys.readouterr().err
    assert rc == 2 and "the 'qpu' extra is not installed" in err and len(err.strip().splitlines()) == 1


def test_decoder_without_circuit_features_exit_2(tmp_path, capsys):
    folder = tmp_path / "qiren"
    tiny_pipeline().save_pretrained(folder)
    rc = _sample(folder, tmp_path / "x.png", "--pennylane-device", "default.qubit")
    err = capsys.readouterr().err
    assert rc == 2 and "device features need a decoder with circuit features" in err
