"""QVF (Quantum Visual Field): exact against its PennyLane twin (outputs and gradients), shots and readout error,
the refused gate noise, sizes, save / load and the command line."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from qiren_gen.models import QVF, build_inr
from qiren_gen.quantum.amplitude_circuit import RealAmplitudeCircuit, ansatz_matrix
from qiren_gen.quantum.shots import measurement


def _twin_forward(model: QVF, x: torch.Tensor, twin) -> torch.Tensor:
    out = twin(model.amplitudes(x))
    return torch.stack(list(out), -1) if isinstance(out, (list, tuple)) else out.reshape(x.shape[0], -1)


@pytest.mark.parametrize("entangler", ["cnot_all", "cnot_ring"])
@pytest.mark.parametrize("out_features", [1, 2])
def test_qvf_matches_pennylane_outputs_and_gradients(entangler, out_features):
    torch.manual_seed(0)
    model = QVF(in_features=2, out_features=out_features, n_qubits=4, energy_hidden=5, n_layers=3,
                entangler=entangler).double()
    twin = model.circuit.to_pennylane("default.qubit")
    x = torch.rand(6, 2, dtype=torch.float64) * 2 - 1
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, theirs = model(xa), _twin_forward(model, xb, twin)
    assert ours.shape == (6, out_features)
    assert (ours - theirs).abs().max().item() <= 1e-6
    ours.pow(2).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    theirs.pow(2).sum().backward()
    assert (xa.grad - xb.grad).abs().max().item() <= 1e-6
    assert (grads["circuit.weights"] - twin.weights.grad).abs().max().item() <= 1e-6
    for name, p in model.named_parameters():
        if name != "circuit.weights":
            assert (grads[name] - p.grad).abs().max().item() <= 1e-6, name


def test_ansatz_is_orthogonal_and_states_are_normalised():
    model = QVF(n_qubits=5).double()
    u = ansatz_matrix(model.circuit.weights.detach())
    assert torch.allclose(u @ u.T, torch.eye(32, dtype=torch.float64), atol=1e-12)
    psi = model.amplitudes(torch.rand(9, 2, dtype=torch.float64))
    assert torch.allclose(psi.norm(dim=-1), torch.ones(9, dtype=torch.float64), atol=1e-12)
    assert bool((psi > 0).all())


def test_shots_estimate_and_straight_through_gradient():
    torch.manual_seed(1)
    model = QVF(n_qubits=4, energy_hidden=4, n_layers=2).double()
    x = torch.rand(50, 2, dtype=torch.float64)
    exact = model(x).detach()
    with torch.no_grad(), measurement(model, shots=20000, generator=torch.Generator().manual_seed(0)):
        estimate = model(x)
    # each <Z_0> from 20000 shots: standard error <= 1 / sqrt(20000) ~ 0.007
    assert (estimate - exact).abs().max().item() < 0.04
    assert not torch.equal(estimate, exact)
    with measurement(model, shots=100):
        with pytest.raises(ValueError, match="train_shots"):
            model(x).sum().backward()
    model.zero_grad()
    model(x).sum().backward()
    exact_grad = model.circuit.weights.grad.clone()
    model.zero_grad()
    with measurement(model, shots=100, generator=torch.Generator().manual_seed(0), train_shots=True):
        model(x).sum().backward()
    assert torch.allclose(model.circuit.weights.grad, exact_grad)


def test_readout_error_matches_pennylane_mixed_and_gate_noise_is_refused():
    torch.manual_seed(2)
    model = QVF(n_qubits=3, energy_hidden=4, n_layers=2, out_features=2).double()
    x = torch.rand(4, 2, dtype=torch.float64)
    with torch.no_grad(), measurement(model, noise={"readout": 0.05}):
        ours = model(x)
        psi = model.amplitudes(x)
    twin = model.circuit.to_pennylane("default.mixed", readout=0.05)
    theirs = torch.stack([torch.stack(list(twin(p))) for p in psi])
    assert (ours - theirs).abs().max().item() <= 1e-6
    with measurement(model, noise=1e-3), pytest.raises(ValueError, match="gate noise"):
        model(x)


def test_sizes_registry_and_bad_arguments():
    assert QVF().num_parameters(only_trainable=True) == 648
    assert QVF(in_features=1).num_parameters(only_trainable=True) == 640
    assert isinstance(build_inr("qvf", 2), QVF)
    for kwargs in ({"out_features": 7, "n_qubits": 6}, {"energy_omega": 0.0}, {"energy_hidden": 0},
                   {"entangler": "cz"}, {"n_qubits": 13}):
        with pytest.raises(ValueError):
            QVF(**kwargs)
    with pytest.raises(ValueError, match="shape"):
        QVF()(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="amplitudes"):
        RealAmplitudeCircuit(3)(torch.zeros(2, 4))


def test_save_load_round_trip(tmp_path):
    model = QVF(n_qubits=4, energy_hidden=3, n_layers=2)
    model.save_pretrained(tmp_path)
    loaded = QVF.from_pretrained(tmp_path)
    x = torch.rand(5, 2)
    assert torch.equal(model(x), loaded(x))


def test_fit_command_line(tmp_path):
    out = tmp_path / "fit"
    done = subprocess.run([sys.executable, "-m", "qiren_gen.cli", "fit", "--model", "qvf", "--image", "camera",
                           "--size", "16", "--steps", "30", "--shots", "2000", "--output", str(out), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert metrics["model"] == "qvf" and metrics["params"] == 648 and metrics["measured"]["shots"] == 2000
    bad = subprocess.run([sys.executable, "-m", "qiren_gen.cli", "fit", "--model", "qvf", "--image", "camera",
                          "--noise", "0.01", "--output", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "readout error only" in bad.stderr and "Traceback" not in bad.stderr
