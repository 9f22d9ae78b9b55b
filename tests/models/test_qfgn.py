"""QFGN (Quantum Fourier Gaussian Network): exact against its PennyLane twin (outputs and gradients, both engines),
the low-frequency penalty, shots and noise against PennyLane ``default.mixed``, sizes, save / load, a short fit."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.models import QFGN, build_inr
from qiren_gen.models.qfgn import penalised_gaussian_frequencies
from qiren_gen.quantum.shots import measurement
from qiren_gen.training.fitting import fit_inr

SMALL = dict(n_frequencies=5, n_qubits=3, gaussian_features=4)


def _twin_forward(model: QFGN, x: torch.Tensor, twin) -> torch.Tensor:
    out = twin(model.encode(model.features(x)))
    z = torch.stack(list(out), -1) if isinstance(out, (list, tuple)) else out
    return model.head(z)


@pytest.mark.parametrize("engine", ["fused", "autograd"])
@pytest.mark.parametrize("in_features", [1, 2])
def test_qfgn_matches_pennylane_outputs_and_gradients(engine, in_features):
    torch.manual_seed(0)
    model = QFGN(in_features=in_features, **SMALL).double()
    model.set_engine(engine)
    twin = model.circuit.to_pennylane("default.qubit")
    x = torch.rand(7, in_features, dtype=torch.float64) * 2 - 1
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, theirs = model(xa), _twin_forward(model, xb, twin)
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


def test_low_frequency_penalty_weights():
    b, w = penalised_gaussian_frequencies(2, 200, scale=2.0, penalty=0.5, seed=0)
    radius = b.norm(dim=-1)
    # w = 1 - exp(-|b|^2 / (2 (0.5 * 2)^2)): below 0.02 under radius 0.2, above 0.98 beyond radius 3
    assert bool((w[radius < 0.2] < 0.02).all()) and bool((w[radius > 3.0] > 0.98).all())
    assert bool(((w >= 0) & (w <= 1)).all())
    order = radius.argsort()
    assert bool((w[order].diff() >= 0).all())  # monotone in the frequency's length
    _, flat = penalised_gaussian_frequencies(2, 200, scale=2.0, penalty=0.0, seed=0)
    assert torch.equal(flat, torch.ones(200))
    same, _ = penalised_gaussian_frequencies(2, 200, scale=2.0, penalty=0.5, seed=0)
    assert torch.equal(b, same)


def test_noise_and_shots_match_the_pennylane_mixed_twin():
    torch.manual_seed(3)
    model = QFGN(**SMALL).double()
    x = torch.rand(3, 2, dtype=torch.float64) * 2 - 1
    noise = {"depolarizing": 0.02, "readout": 0.03}
    with torch.no_grad(), measurement(model, noise=noise):
        ours = model(x)
    twin = model.circuit.to_pennylane("default.mixed", noise=noise)
    with torch.no_grad():
        theirs = torch.stack([model.head(torch.stack(list(twin(a))).reshape(1, -1))[0]
                              for a in model.encode(model.features(x))])
    assert (ours - theirs).abs().max().item() <= 1e-6
    exact = model(x).detach()
    with torch.no_grad(), measurement(model, shots=50000, generator=torch.Generator().manual_seed(0)):
        sampled = model(x)
    assert not torch.equal(sampled, exact) and (sampled - exact).abs().max().item() < 0.05


def test_sizes_registry_bad_arguments_and_round_trip(tmp_path):
    model = QFGN()
    assert model.num_parameters(only_trainable=True) == 653
    assert isinstance(build_inr("qfgn", 1), QFGN)
    for kwargs in ({"frequency_scale": 0.0}, {"gaussian_sigma": float("inf")}, {"low_frequency_penalty": -1.0},
                   {"n_frequencies": 0}, {"n_qubits": 0}):
        with pytest.raises(ValueError):
            QFGN(**kwargs)
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(2, 3))
    model.save_pretrained(tmp_path)
    loaded = QFGN.from_pretrained(tmp_path)
    x = torch.rand(5, 2)
    assert torch.equal(model(x), loaded(x))


def test_a_short_fit_lowers_the_error():
    torch.manual_seed(0)
    coords = torch.rand(64, 2) * 2 - 1
    target = torch.sin(3 * coords[:, :1]) * torch.cos(2 * coords[:, 1:])
    model = QFGN(**SMALL)
    result = fit_inr(model, coords, target, 60, 0.01, progress=False)
    assert result.losses[-1] < 0.5 * result.losses[0]
