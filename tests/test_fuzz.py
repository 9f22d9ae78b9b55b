"""Property-based fuzzing: random shapes, dtypes and values never crash except with the documented ValueError."""
from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qiren_gen.data import image_grid, time_grid
from qiren_gen.models import QIREN
from qiren_gen.quantum import DataReuploadingCircuit

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.bool, torch.complex64])
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.floats(-1e6, 1e6))


def _tensor(shape, dtype, fill):
    return torch.full(shape, fill).to(dtype) if dtype != torch.bool else torch.full(shape, bool(fill))


@FUZZ
@given(
    n_qubits=st.integers(1, 5),
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    last=st.integers(0, 6),
    dtype=DTYPES,
    fill=VALUES,
)
def test_circuit_only_documented_errors(n_qubits, shape, last, dtype, fill):
    circuit = DataReuploadingCircuit(n_qubits, 1, 1)
    x = _tensor((*shape, last), dtype, fill)
    try:
        out = circuit(x)
    except ValueError as exc:
        assert any(key in str(exc) for key in ("shape (...", "floating", "NaN or inf"))
        return
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    assert out.abs().max().item() <= 1 + 1e-3 if out.numel() else True


@FUZZ
@given(
    n_qubits=st.integers(-2, 25),
    n_reuploads=st.integers(-1, 3),
    n_blocks=st.integers(-1, 3),
)
def test_circuit_constructor_only_documented_errors(n_qubits, n_reuploads, n_blocks):
    try:
        circuit = DataReuploadingCircuit(n_qubits, n_reuploads, n_blocks)
    except ValueError as exc:
        assert "must be" in str(exc) or "too large" in str(exc)
        return
    assert circuit.weights.shape == (n_reuploads + 1, n_blocks, n_qubits, 3)


@FUZZ
@given(
    points=st.integers(1, 40),
    in_features=st.integers(1, 3),
    given_features=st.integers(0, 4),
    scale=st.floats(-1e3, 1e3),
)
def test_qiren_decoder_only_documented_errors(points, in_features, given_features, scale):
    model = QIREN(in_features=in_features, n_qubits=2, hidden_layers=1).eval()
    coords = torch.linspace(-1, 1, points * max(given_features, 1)).reshape(points, -1)[:, :given_features] * scale
    try:
        out = model(coords)
    except ValueError as exc:
        assert "expected input of shape" in str(exc)
        return
    assert out.shape == (points, 1) and bool(torch.isfinite(out).all())


@FUZZ
@given(
    h=st.one_of(st.integers(-3, 64), st.floats(-2, 8), st.booleans()),
    w=st.one_of(st.integers(-3, 64), st.floats(-2, 8)),
    align=st.booleans(),
)
def test_grid_builders_only_documented_errors(h, w, align):
    try:
        grid = image_grid(h, w, align_corners=align)
    except ValueError as exc:
        assert "must be" in str(exc)
        return
    assert grid.shape == (h * w, 2)
    assert grid.abs().max().item() <= 1 + 1e-6 and not math.isnan(grid.sum().item())
    try:
        t = time_grid(h)
    except ValueError:
        return
    assert t.shape == (h, 1)
