"""Shots and noise on the circuit modules: exact default, shot statistics, correlated readouts, density-matrix
channels against PennyLane ``default.mixed``, export with shots, and the bad inputs."""
from __future__ import annotations

import math

import pennylane as qml
import pytest
import torch

from qiren_gen.quantum import DataReuploadingCircuit, MultiHeadReuploadingCircuit, simulate_reuploading
from qiren_gen.quantum.mixed import circuit_probabilities
from qiren_gen.quantum.noise import NoiseModel, parse_noise
from qiren_gen.quantum.shots import check_shots, measurement, sample_frequencies, set_measurement

NOISE = NoiseModel(depolarizing=0.03, amplitude_damping=0.02, dephasing=0.05, readout=0.04)


def _circuit(n=3, observables="z+zz", entangler="cz_ring", seed=0, **kw):
    torch.manual_seed(seed)
    return DataReuploadingCircuit(n, observables=observables, entangler=entangler, **kw).double()


def test_exact_default_is_unchanged_bit_for_bit():
    c = _circuit()
    x = torch.randn(7, 3, dtype=torch.float64)
    direct = simulate_reuploading(x, c.weights, observables=c.simulator_observables())
    assert c.shots is None and c.noise is None and not c.measuring
    assert torch.equal(c(x), direct)
    with measurement(c):  # shots=None, noise=None: a no-op
        assert torch.equal(c(x), direct)
    with measurement(c, shots=10):
        assert not torch.equal(c(x), direct)
    assert torch.equal(c(x), direct)  # restored after the block


def test_shot_mean_within_three_standard_errors_and_binomial_variance():
    c = _circuit()
    x = torch.randn(3, 3, dtype=torch.float64)
    exact = c(x).detach()
    seeds, shots = 400, 50
    rows = x.repeat(seeds, 1)  # every row is an independent draw of `shots` samples
    with torch.no_grad(), measurement(c, shots=shots, generator=torch.Generator().manual_seed(1234)):
        est = c(rows).reshape(seeds, 3, -1)
    mean, se = est.mean(0), est.std(0) / math.sqrt(seeds)
    assert ((mean - exact).abs() <= 3 * se + 1e-12).float().mean() >= 0.95  # 3 SE: ~99.7% of 27 readouts
    assert ((mean - exact).abs() <= 4.5 * se + 1e-12).all()
    # each Z-string estimate is a mean of +-1 outcomes: variance (1 - <O>^2) / shots
    expected_var = (1 - exact**2) / shots
    assert torch.allclose(est.var(0), expected_var, rtol=0.3, atol=1e-4)


def test_readouts_come_from_the_same_samples():
    c = _circuit()  # z+zz: <Z0> <Z1> <Z2> <Z0Z1> <Z0Z2> <Z1Z2>
    x = torch.randn(200, 3, dtype=torch.float64)
    with torch.no_grad(), measurement(c, shots=1, generator=torch.Generator().manual_seed(0)):
        one = c(x)
    assert set(one.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(one[:, 3], one[:, 0] * one[:, 1])  # one shot: <Z0 Z1> is the product of the same bits
    assert torch.equal(one[:, 5], one[:, 1] * one[:, 2])
    # many shots: the estimates of <Z0> and <Z1> covary as (<Z0 Z1> - <Z0><Z1>) / N, as on hardware
    exact = c(x[:1]).detach()[0]
    rows, shots = x[:1].repeat(4000, 1), 20
    with torch.no_grad(), measurement(c, shots=shots, generator=torch.Generator().manual_seed(5)):
        est = c(rows)
    cov = torch.cov(est[:, :2].T)[0, 1]
    assert abs(cov - (exact[3] - exact[0] * exact[1]) / shots) < 5 * math.sqrt(2 / 4000) / shots


def test_heads_and_generator_determinism():
    torch.manual_seed(0)
    heads = MultiHeadReuploadingCircuit(4, 2, entangler="cnot_chain").double()
    x = torch.randn(500, 4, 2, dtype=torch.float64)
    exact = heads(x).detach()
    with torch.no_grad():
        with measurement(heads, shots=10**6, generator=torch.Generator().manual_seed(3)):
            big = heads(x)
        with measurement(heads, shots=100, generator=torch.Generator().manual_seed(3)):
            a = heads(x)
        with measurement(heads, shots=100, generator=torch.Generator().manual_seed(3)):
            b = heads(x)
        with measurement(heads, shots=100, generator=torch.Generator().manual_seed(4)):
            other = heads(x)
    assert big.shape == exact.shape and (big - exact).abs().max() < 6e-3  # 1e6 shots: SE <= 1e-3
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert ((a - exact).abs() > 1e-9).float().mean() > 0.9


def test_sample_frequencies_are_multinomial_counts():
    prob = torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    freq = sample_frequencies(prob, 1000, torch.Generator().manual_seed(0))
    counts = freq * 1000
    assert torch.equal(counts, counts.round()) and torch.equal(counts.sum(-1), torch.full((2,), 1000.0))
    assert torch.equal(freq[1], prob[1])


@pytest.mark.parametrize("n, reuploads, blocks, entangler, observables, scale", [
    (1, 1, 1, "cz_ring", "z", None),
    (2, 2, 2, "cnot_chain", "z+zz", None),
    (3, 2, 2, "cz_ring", "z+zz", 1.5),
    (3, 1, 2, "cnot_ring", "z", None),
])
def test_density_matrix_channels_match_pennylane_default_mixed(n, reuploads, blocks, entangler, observables, scale):
    c = _circuit(n, observables, entangler, seed=n, n_reuploads=reuploads, n_blocks=blocks, encoding_scale=scale)
    x = torch.randn(3, n, dtype=torch.float64)
    with measurement(c, noise=NOISE):
        ours = c(x)
    layer = c.to_pennylane("default.mixed", noise=NOISE)
    ref = torch.stack([torch.as_tensor(layer(xi)) for xi in x])
    assert (ours - ref).abs().max() < 1e-6
    assert (ours - c(x)).abs().max() > 1e-2  # the noise does something


def test_eight_qubit_density_matrix_matches_default_mixed():
    c = _circuit(8, "z", seed=8, n_reuploads=1, n_blocks=1)
    x = torch.randn(1, 8, dtype=torch.float64)
    noise = NoiseModel(depolarizing=0.01, amplitude_damping=0.005, dephasing=0.01, readout=0.02)
    with measurement(c, noise=noise):
        ours = c(x)
    ref = torch.as_tensor(c.to_pennylane("default.mixed", noise=noise)(x[0]))
    assert (ours[0] - ref).abs().max() < 1e-6


def test_two_qubit_heads_match_default_mixed_and_pure_path_matches_engine():
    torch.manual_seed(1)
    heads = MultiHeadReuploadingCircuit(3, 2, entangler="cnot_chain").double()
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    with measurement(heads, noise=NOISE):
        ours = heads(x)
    for h in range(3):
        layer = heads.to_pennylane(h, "default.mixed", noise=NOISE)
        ref = torch.stack([torch.as_tensor(layer(xi)) for xi in x[:, h]])
        assert (ours[:, h] - ref).abs().max() < 1e-6
    prob = circuit_probabilities(x.transpose(0, 1), heads.weights, "cnot_chain")  # noiseless pure-state path
    z = torch.stack([1 - 2 * (prob[..., 2] + prob[..., 3]), 1 - 2 * (prob[..., 1] + prob[..., 3])], -1)
    assert (z.transpose(0, 1) - heads(x)).abs().max() < 1e-12


def test_readout_error_scales_exact_expectations():
    c = _circuit()
    x = torch.randn(5, 3, dtype=torch.float64)
    q = 0.1
    with measurement(c, noise=NoiseModel(readout=q)):
        noisy = c(x)
    weights = torch.tensor([1, 1, 1, 2, 2, 2], dtype=torch.float64)
    assert torch.allclose(noisy, c(x) * (1 - 2 * q) ** weights, atol=1e-12)


def test_noisy_expectations_are_differentiable():
    c = _circuit(2, "z", "cnot_chain")
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    with measurement(c, noise=NoiseModel(depolarizing=0.05, amplitude_damping=0.1)):
        assert torch.autograd.gradcheck(lambda v: c(v), (x,))


def test_shots_on_a_backward_pass_need_train_shots_and_then_are_straight_through():
    c = _circuit(2, "z")
    x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    with measurement(c, shots=100):
        out = c(x)  # a forward pass is fine, a backward through it is refused
        with pytest.raises(ValueError, match="finite-shot gradients need train_shots"):
            out.sum().backward()
    exact_grad = torch.autograd.grad(c(x).sum(), x)[0]
    with measurement(c, shots=100, train_shots=True, generator=torch.Generator().manual_seed(0)):
        out = c(x)
        grad = torch.autograd.grad(out.sum(), x)[0]
    assert not torch.allclose(out, c(x)) and torch.allclose(grad, exact_grad, atol=1e-12)


def test_per_sample_and_wide_angles_decoders_take_shots():
    from qiren_gen.models import ModulatedQIREN, ModulatedWideQIREN

    torch.manual_seed(0)
    for model in (ModulatedQIREN(n_qubits=3, hidden_layers=1, modulation="angles"),
                  ModulatedWideQIREN(n_heads=2, n_qubits=2, hidden_layers=1, modulation="angles",
                                     entangler="cnot_chain")):
        coords = torch.rand(2, 5, 2) * 2 - 1
        mods = 0.1 * torch.randn(2, model.modulation_dim)
        with torch.no_grad():
            exact = model(coords, mods)
            with measurement(model, shots=10**6, generator=torch.Generator().manual_seed(0)):
                near = model(coords, mods)
            with measurement(model, shots=20, generator=torch.Generator().manual_seed(0)):
                far = model(coords, mods)
        assert (near - exact).abs().max() < 0.05 < (far - exact).abs().max()


def test_trained_head_on_default_mixed_with_shots_agrees_within_shot_error():
    torch.manual_seed(0)
    heads = MultiHeadReuploadingCircuit(2, 2, entangler="cnot_chain").double()
    x = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None, None].expand(8, 2, 2).contiguous()
    target = torch.sin(3 * x)
    opt = torch.optim.Adam(heads.parameters(), lr=0.1)
    for _ in range(15):  # a trained head: a few Adam steps towards sin(3x)
        opt.zero_grad()
        loss = (heads(x) - target).square().mean()
        loss.backward()
        opt.step()
    shots, noise = 4000, NoiseModel(depolarizing=0.02, readout=0.01)
    with torch.no_grad(), measurement(heads, noise=noise):
        exact_noisy = heads(x)[:, 1]
    dev = qml.device("default.mixed", wires=2, seed=7)
    layer = heads.to_pennylane(1, dev, shots=shots, noise=noise)
    sampled = torch.stack([torch.as_tensor(layer(xi)) for xi in x[:, 1]])
    se = torch.sqrt((1 - exact_noisy**2) / shots)
    assert ((sampled - exact_noisy).abs() <= 4 * se + 1e-9).all()
    assert (sampled - exact_noisy).abs().max() > 0  # really sampled


@pytest.mark.parametrize("shots, match", [(0, ">= 1"), (-3, ">= 1"), (1.5, "an int"), (True, "an int"),
                                          (2 * 10**9, "over the limit"), ("100", "an int")])
def test_bad_shots_one_line(shots, match):
    with pytest.raises(ValueError, match=match) as info:
        check_shots(shots)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=match):
        set_measurement(torch.nn.Linear(1, 1), shots=shots)


@pytest.mark.parametrize("noise", [{"depolarizing": -0.1}, {"readout": 1.5}, {"dephasing": float("nan")}, 2.0,
                                   {"bogus": 0.1}])
def test_bad_noise_one_line(noise):
    c = _circuit(2, "z")
    with pytest.raises(ValueError) as info:
        with measurement(c, noise=noise):
            pass
    assert "\n" not in str(info.value)


def test_parse_noise():
    assert parse_noise("1e-3") == NoiseModel(depolarizing=1e-3)
    assert parse_noise("depolarizing=0.01, readout=0.02") == NoiseModel(depolarizing=0.01, readout=0.02)
    for bad in ("depolarizing=abc", "loud", "readout=3"):
        with pytest.raises(ValueError):
            parse_noise(bad)
