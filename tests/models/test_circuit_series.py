"""Circuit features from the heads' exact Fourier series equal the simulated ones: on image grids and slices of them
(one GEMM per head), at scattered points, in float64 and float32; with gradients (training) on grids, the same
features and the simulator's gradients; the simulator still runs where the series does not apply, and on request."""
from __future__ import annotations

import math

import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.models import FeatureSynthesisDecoder
from qiren_gen.models.circuit_series import MAX_POINTWISE_TERMS, series_features
from qiren_gen.quantum.shots import measurement
from qiren_gen.quantum.spectrum import head_series

# (heads, qubits, re-uploads, encoding_scale)
DECODERS = [(8, 2, 2, None), (4, 2, 2, "ternary"), (3, 3, 2, None), (5, 1, 3, None), (2, 2, 3, "ternary")]
IDS = ["2q", "2q-ternary", "3q", "1q-3up", "2q-ternary-3up"]


def _decoder(n_heads, n_qubits, n_reuploads, scale, in_features=2, seed=0, dtype=torch.float64):
    """A decoder with every feature parameter random (weights, frequency layer, normalisation affine)."""
    torch.manual_seed(seed)
    decoder = FeatureSynthesisDecoder(in_features=in_features, n_heads=n_heads, n_qubits=n_qubits,
                                      n_reuploads=n_reuploads, encoding_scale=scale, entangler="cnot_chain",
                                      hidden_features=8, hidden_layers=1, modulation="weight")
    with torch.no_grad():
        decoder.norm_weight.uniform_(0.5, 2.5)
        decoder.norm_bias.normal_(0, 1)
    return decoder.double() if dtype == torch.float64 else decoder


def _coords(kind: str, dtype) -> torch.Tensor:
    grid = image_grid(20, 24, dtype=dtype)
    if kind == "grid":
        return grid
    if kind == "grid-slice":  # a rendering chunk: starts and ends mid-row
        return grid[29:29 + 250]
    return torch.rand(300, 2, dtype=dtype) * 2 - 1  # scattered


@pytest.mark.parametrize("kind", ["grid", "grid-slice", "scattered"])
@pytest.mark.parametrize("config", DECODERS, ids=IDS)
def test_series_features_equal_simulated_features_in_float64(config, kind):
    decoder = _decoder(*config)
    coords = _coords(kind, torch.float64)
    with torch.no_grad():
        stats = decoder.reference_statistics()
        series = series_features(decoder, coords, stats)
        if kind == "scattered" and head_series(decoder.circuits).n_terms > MAX_POINTWISE_TERMS:
            assert series is None  # summing 729 terms per point is slower than simulating: the simulator runs
            return
        assert series is not None
        torch.testing.assert_close(series, decoder._features(coords, stats), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["grid", "grid-slice", "scattered"])
@pytest.mark.parametrize("config", DECODERS[:2], ids=IDS[:2])
def test_float32_series_features_are_as_accurate_as_the_float32_simulator(config, kind):
    """Both are compared with the float64 simulation: the series (float64 coefficients, float32 sums) is within
    1e-6 of the float32 simulator's own distance from it (which is ~1e-6 itself, so 1e-6 to each other is not a
    bound either can promise)."""
    decoder = _decoder(*config, dtype=torch.float32)
    exact = _decoder(*config, dtype=torch.float64)
    coords = _coords(kind, torch.float32)
    with torch.no_grad():
        stats = decoder.reference_statistics()
        series = series_features(decoder, coords, stats)
        simulated = decoder._features(coords, stats)
        truth = exact._features(coords.double(), exact.reference_statistics())
    assert series.dtype == simulated.dtype == torch.float32
    simulator_error = (simulated.double() - truth).abs().max().item()
    assert (series.double() - truth).abs().max().item() <= simulator_error + 1e-6
    torch.testing.assert_close(series, simulated, rtol=0, atol=5e-6)


def test_wide_rows_are_evaluated_in_column_tiles(monkeypatch):
    from qiren_gen.models import circuit_series

    decoder = _decoder(4, 2, 2, None)
    coords = image_grid(6, 70, dtype=torch.float64)[50:]  # starts mid-row
    with torch.no_grad():
        stats = decoder.reference_statistics()
        whole = series_features(decoder, coords, stats)
        monkeypatch.setattr(circuit_series, "GRID_COLUMNS", 16)  # 70 columns in 5 tiles
        tiled = series_features(decoder, coords, stats)
        torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)
        torch.testing.assert_close(tiled, decoder._features(coords, stats), rtol=0, atol=1e-10)


@pytest.mark.parametrize("in_features", [1, 3])
def test_other_coordinate_dimensions_sum_the_series_per_point(in_features):
    decoder = _decoder(6, 2, 2, None, in_features=in_features)
    coords = torch.rand(2, 40, in_features, dtype=torch.float64) * 2 - 1  # per-sample coordinates too
    with torch.no_grad():
        stats = decoder.reference_statistics()
        torch.testing.assert_close(series_features(decoder, coords, stats), decoder._features(coords, stats),
                                   rtol=0, atol=1e-10)


def test_decoder_features_come_from_the_series_in_rendering_and_training_unless_asked_to_simulate():
    decoder = _decoder(8, 2, 2, None, dtype=torch.float32)
    coords = image_grid(16, 16)
    modulations = torch.randn(2, decoder.modulation_dim)
    with torch.no_grad():
        stats = decoder.reference_statistics()
        simulated = decoder._features(coords, stats)
        series = series_features(decoder, coords, stats)
        assert not torch.equal(series, simulated)  # two computations (rounding differs), so the next checks can tell
        assert torch.equal(decoder.coordinate_features(coords), series)
        rendered = decoder(coords, modulations)
        decoder.set_feature_evaluation("simulate")
        assert torch.equal(decoder.coordinate_features(coords), simulated)  # the cache knows the setting
        torch.testing.assert_close(decoder(coords, modulations), rendered, rtol=0, atol=1e-5)
        decoder.set_feature_evaluation("series")
        assert torch.equal(decoder.coordinate_features(coords), series)
    # A gradient to the feature parameters (training): the differentiable series, the very values rendering sees.
    features = decoder.coordinate_features(coords)
    assert features.requires_grad and torch.equal(features.detach(), series)
    decoder.set_feature_evaluation("simulate")
    features = decoder.coordinate_features(coords)
    assert features.requires_grad and torch.equal(features.detach(), simulated)
    decoder.set_feature_evaluation("series")
    with pytest.raises(ValueError, match="feature_evaluation must be one of"):
        decoder.set_feature_evaluation("fft")


def test_noisy_features_come_from_the_noisy_circuits_series():
    """Exact noisy expectations (no shots) keep the spectrum: the series of the noisy circuits equals their density-
    matrix simulation."""
    from qiren_gen.quantum.noise import NoiseModel

    decoder = _decoder(4, 2, 2, "ternary")
    coords = image_grid(12, 16, dtype=torch.float64)
    noise = NoiseModel(depolarizing=0.02, dephasing=0.03, readout=0.05)
    with torch.no_grad(), measurement(decoder, noise=noise):
        stats = decoder.reference_statistics()
        series = series_features(decoder, coords, stats)
        noisy = decoder._features(coords, stats)
        torch.testing.assert_close(series, noisy, rtol=0, atol=1e-10)
    with torch.no_grad():
        assert (noisy - decoder._features(coords, stats)).abs().max() > 1e-2


def test_the_simulator_runs_where_no_series_applies():
    decoder = _decoder(4, 2, 2, [[1.0], [math.sqrt(2)]], dtype=torch.float32)  # no common period
    coords = image_grid(12, 12)
    with torch.no_grad():
        assert series_features(decoder, coords, decoder.reference_statistics()) is None
        assert torch.equal(decoder.coordinate_features(coords), decoder._features(coords, None))
    decoder = _decoder(4, 2, 2, None, dtype=torch.float32)
    with torch.no_grad(), measurement(decoder, shots=64, generator=torch.Generator().manual_seed(0)):
        assert series_features(decoder, coords, decoder.reference_statistics()) is None  # shots are random draws
    bad = coords.clone()
    bad[3, 1] = float("nan")
    with torch.no_grad(), pytest.raises(ValueError):  # the simulator's own message for bad coordinates
        decoder.coordinate_features(bad)


def _feature_gradients(decoder, coords, probe, mode):
    """Features and the gradients of ``<features, probe>`` w.r.t. every feature parameter, the reference statistics
    computed with their graph (as a training step does)."""
    decoder.set_feature_evaluation(mode)
    features = decoder.coordinate_features(coords, decoder.reference_statistics())
    params = [decoder.frequencies.weight, decoder.frequencies.bias, decoder.norm_weight, decoder.norm_bias,
              decoder.circuits.weights]
    return features, torch.autograd.grad((features * probe).sum(), params)


@pytest.mark.parametrize("kind", ["grid", "grid-slice"])
@pytest.mark.parametrize("config", DECODERS, ids=IDS)
def test_training_features_from_the_series_have_the_simulators_gradients_in_float64(config, kind):
    """Gradients into the circuit weights (through the coefficients) and into the frequency layer and normalisation
    affine (through the phases, and through the reference statistics) equal the simulator's."""
    decoder = _decoder(*config)
    coords = _coords(kind, torch.float64)
    probe = torch.randn(coords.shape[0], decoder.feature_dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))
    series, series_grads = _feature_gradients(decoder, coords, probe, "series")
    simulated, simulated_grads = _feature_gradients(decoder, coords, probe, "simulate")
    assert series.grad_fn is not None and "Fused" not in type(series.grad_fn).__name__
    torch.testing.assert_close(series, simulated, rtol=0, atol=1e-10)
    names = ["frequencies.weight", "frequencies.bias", "norm_weight", "norm_bias", "circuits.weights"]
    for name, got, want in zip(names, series_grads, simulated_grads, strict=True):
        # a gradient there to compare (the frequency bias has none: the reference normalisation subtracts it)
        assert name == "frequencies.bias" or want.abs().max() > 1e-3, name
        torch.testing.assert_close(got, want, rtol=0, atol=1e-8, msg=name)


def test_training_features_are_simulated_where_the_series_does_not_apply():
    """With gradients: scattered points, noise models, finite shots and gradients w.r.t. the coordinates run the
    differentiable simulator (the same values as ``_features``, bitwise)."""
    from qiren_gen.quantum.noise import NoiseModel

    decoder = _decoder(4, 2, 2, None)
    grid = image_grid(12, 16, dtype=torch.float64)
    scattered = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    stats = decoder.reference_statistics()
    assert series_features(decoder, scattered, stats) is None
    assert torch.equal(decoder.coordinate_features(scattered, stats), decoder._features(scattered, stats))
    moving = grid.clone().requires_grad_(True)
    assert series_features(decoder, moving, stats) is None
    features = decoder.coordinate_features(moving, stats)
    assert torch.autograd.grad(features.sum(), moving)[0].abs().max() > 0
    with measurement(decoder, noise=NoiseModel(depolarizing=0.02)):
        assert series_features(decoder, grid, stats) is None
    with measurement(decoder, shots=64, generator=torch.Generator().manual_seed(0)):
        assert series_features(decoder, grid, stats) is None


def test_eight_seeded_training_steps_keep_the_simulators_losses_in_float32():
    """Auto-decoded latents, Adam, the recipe's layout at a small size: the losses of 8 seeded steps with features
    from the series are within 1e-6 of those with simulated features."""
    from qiren_gen.functa import per_image_mse
    from qiren_gen.models import LatentModulator

    def losses(mode: str) -> torch.Tensor:
        torch.manual_seed(0)
        decoder = FeatureSynthesisDecoder(out_channels=3, n_heads=8, n_qubits=2, frequency_init=2.0,
                                          hidden_features=32, hidden_layers=2, modulation="weight")
        decoder.set_feature_evaluation(mode)
        modulator = LatentModulator.for_decoder(decoder, 16, encoding="auto_decode")
        table = torch.nn.Parameter(torch.randn(20, 16) * 0.01)
        params = [*decoder.parameters(), *modulator.parameters()]
        optimizer = torch.optim.Adam([{"params": params, "lr": 1e-3}, {"params": [table], "lr": 1e-2}])
        coords, targets = image_grid(16, 16), torch.rand(4, 256, 3) * 2 - 1
        out = []
        for _ in range(8):
            latents = table[torch.randint(0, 20, (4,))]
            mse = per_image_mse(decoder, modulator, latents, coords, targets, decoder.reference_statistics())
            (mse.sum() + 1e-4 * latents.square().sum()).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            out.append(mse.detach())
        return torch.stack(out)

    simulated, series = losses("simulate"), losses("series")
    assert not torch.equal(series, simulated)  # two computations, so the comparison can tell them apart
    torch.testing.assert_close(series, simulated, rtol=0, atol=1e-6)
