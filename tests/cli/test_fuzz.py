"""Property-based fuzzing: random shapes, dtypes and values never crash except with the documented ValueError."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qiren_gen.data import image_grid, time_grid
from qiren_gen.models import QIREN
from qiren_gen.quantum import DataReuploadingCircuit, MultiHeadReuploadingCircuit

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.bool,
                          torch.complex64])
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


_HEADS: dict = {}


@FUZZ
@given(
    n_heads=st.integers(1, 3),
    n_qubits=st.integers(1, 4),
    entangler=st.sampled_from(["cz_ring", "cnot_chain"]),
    shape=st.lists(st.integers(0, 3), min_size=0, max_size=2),
    given_heads=st.integers(0, 4),
    given_qubits=st.integers(0, 5),
    dtype=DTYPES,
    fill=VALUES,
)
def test_heads_only_documented_errors(n_heads, n_qubits, entangler, shape, given_heads, given_qubits, dtype, fill):
    key = (n_heads, n_qubits, entangler)
    if key not in _HEADS:
        _HEADS[key] = MultiHeadReuploadingCircuit(n_heads, n_qubits, 1, 1, entangler=entangler)
    x = _tensor((*shape, given_heads, given_qubits), dtype, fill)
    try:
        out = _HEADS[key](x)
    except ValueError as exc:
        assert any(key in str(exc) for key in ("inputs must have shape", "floating", "NaN or inf")), str(exc)
        return
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    assert out.abs().max().item() <= 1 + 1e-3 if out.numel() else True


@FUZZ
@given(
    n_heads=st.one_of(st.integers(-2, 40), st.floats(-1, 4), st.booleans()),
    n_qubits=st.integers(-2, 25),
    entangler=st.sampled_from(["cz_ring", "cnot_chain", "cz", ""]),
)
def test_heads_constructor_only_documented_errors(n_heads, n_qubits, entangler):
    try:
        heads = MultiHeadReuploadingCircuit(n_heads, n_qubits, 1, 1, entangler=entangler)
    except ValueError as exc:
        assert "must be" in str(exc) or "too large" in str(exc)
        return
    assert heads.weights.shape == (n_heads, 2, 1, n_qubits, 3)


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


# --- the modulated decoder (functa) and decode_latents -----------------------------------------------------------

_MODULATED: dict = {}

DOCUMENTED_DECODER_ERRORS = ("modulations must have shape", "coords must have shape", "latents must",
                             "NaN or inf", "must be >= 1", "must be an int", "over the limit", "chunk_size must be",
                             "floating")


def _modulated(mode: str):
    """One tiny decoder + modulator per modulation type, built once (hypothesis runs many examples)."""
    if mode not in _MODULATED:
        from qiren_gen.models import LatentModulator, ModulatedQIREN

        torch.manual_seed(0)
        decoder = ModulatedQIREN(out_channels=1, n_qubits=2, hidden_layers=1, modulation=mode, reference_size=4)
        _MODULATED[mode] = (decoder.eval(), LatentModulator.for_decoder(decoder, latent_dim=3))
    return _MODULATED[mode]


@FUZZ
@given(
    mode=st.sampled_from(["shift", "film", "angles"]),
    batch=st.integers(0, 3),
    coord_shape=st.sampled_from(["BP2", "P2", "BP3", "P", "B1P2"]),
    points=st.integers(0, 5),
    mod_extra=st.integers(-1, 1),
    dtype=DTYPES,
    fill=VALUES,
)
def test_modulated_decoder_only_documented_errors(mode, batch, coord_shape, points, mod_extra, dtype, fill):
    decoder, _ = _modulated(mode)
    shapes = {"BP2": (batch, points, 2), "P2": (points, 2), "BP3": (batch, points, 3), "P": (points,),
              "B1P2": (batch, 1, points, 2)}
    coords = _tensor(shapes[coord_shape], dtype, fill)
    modulations = torch.full((batch, decoder.modulation_dim + mod_extra), 0.1)
    try:
        with torch.no_grad():
            out = decoder(coords, modulations)
    except ValueError as exc:
        assert any(key in str(exc) for key in DOCUMENTED_DECODER_ERRORS), str(exc)
        return
    assert out.shape == (batch, points, 1) and bool(torch.isfinite(out).all())


@FUZZ
@given(
    mode=st.sampled_from(["shift", "film", "angles"]),
    batch=st.integers(0, 3),
    latent_dim=st.integers(2, 4),
    dtype=DTYPES,
    fill=VALUES,
    height=st.one_of(st.integers(-2, 9), st.floats(-1, 5), st.booleans()),
    width=st.integers(-2, 9),
    chunk=st.one_of(st.none(), st.integers(-1, 20), st.floats(0, 3)),
)
def test_decode_latents_only_documented_errors(mode, batch, latent_dim, dtype, fill, height, width, chunk):
    from qiren_gen.functa import decode_latents

    decoder, modulator = _modulated(mode)
    latents = _tensor((batch, latent_dim), dtype, fill)
    try:
        with torch.no_grad():
            out = decode_latents(decoder, modulator, latents, height, width, chunk_size=chunk)
    except ValueError as exc:
        assert any(key in str(exc) for key in DOCUMENTED_DECODER_ERRORS), str(exc)
        return
    assert out.shape == (batch, 1, height, width) and bool(torch.isfinite(out).all())


def test_overflowed_half_precision_coordinates_are_refused():
    """Found by this module's fuzzing in CI: float16 65520 overflows to inf and gave NaN images in angles mode."""
    decoder, _ = _modulated("angles")
    coords = torch.full((1, 1, 2), 65520.0).to(torch.float16)
    with pytest.raises(ValueError, match="coords contain NaN or inf"):
        decoder(coords, torch.full((1, decoder.modulation_dim), 0.1))
