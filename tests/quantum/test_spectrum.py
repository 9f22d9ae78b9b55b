"""The multi-head circuits as exact finite Fourier series: spectra from the encoding scales, coefficients from a DFT of
circuit runs, and the series equal to the simulator at any angles and on product grids (noise included)."""
from __future__ import annotations

import math

import pytest
import torch

from qiren_gen.quantum import MultiHeadReuploadingCircuit
from qiren_gen.quantum.noise import NoiseModel
from qiren_gen.quantum.shots import measurement
from qiren_gen.quantum.spectrum import MAX_SERIES_TERMS, head_series, spectrum_bases

# (heads, qubits, re-uploads, entangler, encoding_scale)
CIRCUITS = [
    (3, 2, 2, "cnot_chain", None),
    (2, 2, 2, "cnot_chain", "ternary"),
    (2, 3, 2, "cz_ring", None),
    (4, 1, 3, "cz_ring", None),
    (2, 2, 3, "cnot_chain", [[1.0], [2.5], [0.5]]),  # base 0.5: frequencies 0.5 k, |k| <= 8
    (2, 4, 1, "cnot_chain", [[2.0, 1.0, 3.0, 0.25]]),
]
IDS = ["2q", "2q-ternary", "3q-cz", "1q-3up", "2q-halves", "4q-per-qubit"]


@pytest.mark.parametrize("scale,expected", [
    (None, ([1.0, 1.0], [2, 2])),
    ("ternary", ([1.0, 1.0], [4, 4])),  # 1 + 3
    ([[2.0], [3.0]], ([1.0, 1.0], [5, 5])),  # base 1, not the smallest scale
    ([[1.0, 0.5], [2.5, 1.5]], ([0.5, 0.5], [7, 4])),  # per qubit
    ([[1.0], [math.sqrt(2)]], None),  # no common base: no finite period
])
def test_spectrum_bases_follow_the_encoding_scales(scale, expected):
    from qiren_gen.quantum.circuit import encoding_scales

    assert spectrum_bases(encoding_scales(scale, 2, 2), 2, 2) == expected


def _random_heads(n_heads, n_qubits, n_reuploads, entangler, scale, seed=0):
    torch.manual_seed(seed)
    return MultiHeadReuploadingCircuit(n_heads, n_qubits, n_reuploads, 2, entangler=entangler, encoding_scale=scale)


@pytest.mark.parametrize("config", CIRCUITS, ids=IDS)
def test_series_equals_the_simulator_at_any_angles_and_on_grids(config):
    heads = _random_heads(*config)
    n_heads, n_qubits = config[0], config[1]
    series = head_series(heads)
    assert series is not None and series.n_terms <= MAX_SERIES_TERMS
    x = torch.randn(50, n_heads, n_qubits, dtype=torch.float64) * 4
    with torch.no_grad():
        torch.testing.assert_close(series.evaluate(x), heads(x), rtol=0, atol=1e-10)
        slopes = [torch.randn(n_heads, n_qubits, dtype=torch.float64) * 3 for _ in range(3)]
        rows, cols = torch.rand(5, dtype=torch.float64) * 2 - 1, torch.rand(7, dtype=torch.float64) * 2 - 1
        angles = slopes[2] + slopes[0] * rows[:, None, None, None] + slopes[1] * cols[None, :, None, None]
        grid = series.evaluate_grid(*slopes, rows, cols, torch.float64)
        torch.testing.assert_close(grid, heads(angles), rtol=0, atol=1e-10)


def test_series_of_noisy_circuits_equals_the_noisy_simulation():
    """Input-independent channels and readout error add no frequency: the same series holds exactly."""
    heads = _random_heads(2, 2, 2, "cnot_chain", "ternary", seed=3)
    noise = NoiseModel(depolarizing=0.03, amplitude_damping=0.02, dephasing=0.05, readout=0.04)
    x = torch.randn(20, 2, 2, dtype=torch.float64) * 3
    with torch.no_grad(), measurement(heads, noise=noise):
        series = head_series(heads)
        noisy = heads(x)
        torch.testing.assert_close(series.evaluate(x), noisy, rtol=0, atol=1e-10)
    with torch.no_grad():
        assert (noisy - heads(x)).abs().max() > 1e-2  # the noise really changed the function
        assert head_series(heads) is not series  # a noiseless series of its own


def test_no_series_for_finite_shots_or_scales_without_a_period():
    heads = _random_heads(2, 2, 2, "cnot_chain", None)
    with measurement(heads, shots=100):
        assert head_series(heads) is None  # shot estimates are random: no function to expand
    assert head_series(_random_heads(2, 2, 2, "cnot_chain", [[1.0], [math.sqrt(2)]])) is None
    assert head_series(_random_heads(1, 5, 3, "cnot_chain", None)) is None  # 7^5 terms: over the limit


def test_series_is_built_once_per_set_of_weights():
    heads = _random_heads(2, 2, 2, "cnot_chain", None)
    first = head_series(heads)
    assert head_series(heads) is first
    with torch.no_grad():
        heads.weights[0, 1, 0, 0, 0] += 0.5  # an in-place change of one weight
    second = head_series(heads)
    assert second is not first
    x = torch.randn(10, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(second.evaluate(x.double()), heads(x.double()), rtol=0, atol=1e-10)


def test_grid_product_backward_is_the_derivative_of_its_forward():
    """The hand-written backward of the grid evaluation (training) against finite differences, in float64."""
    from qiren_gen.quantum.spectrum import _GridProduct

    gen = torch.Generator().manual_seed(0)
    n_heads, m, k = 3, 2, 5
    inputs = [torch.randn(*shape, dtype=torch.float64, generator=gen).requires_grad_(True)
              for shape in [(n_heads, m, k, 2), (n_heads, 3, k)]]  # coefficients (re, im); row, column, shift
    rows, cols = torch.linspace(-1, 1, 4, dtype=torch.float64), torch.linspace(-1, 0.5, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(_GridProduct.apply, (*inputs, rows, cols, torch.float64))
