"""A `FeatureSynthesisDecoder`'s circuit features measured on a PennyLane device.

The decoder's circuits see the coordinates only, so its features are fixed by each head's Fourier coefficients:
`measure_decoder_features` measures them once (``heads x (2 L + 1)^n`` executions: 800 for the bundled
decoder) on any PennyLane device, optionally with a fake IBM backend's calibrated noise on Qiskit Aer, and installs
them in the decoder, which then renders any resolution from them. `device_point_features` is the other path,
one execution per head and point, for circuits whose series has more terms than the image has points.
"""
from __future__ import annotations

import torch

from ..quantum.device_coefficients import (
    DeviceRun,
    head_tapes,
    measure_head_series,
    measure_point_features,
    series_sample_angles,
    series_terms,
)
from ..quantum.pennylane_devices import open_device, price_run
from .circuit_series import angle_map


def _check_circuit_decoder(decoder) -> None:
    if getattr(decoder.config, "features", None) != "circuit":
        raise ValueError("device features need a decoder with circuit features (FeatureSynthesisDecoder, "
                         "features='circuit')")


def feature_executions(decoder, points: int) -> tuple[int | None, int]:
    """Circuit executions that give the decoder's features: per model (``heads x prod_j (2 L_j + 1)``, ``None`` where
    no series applies) and per point (``heads x points``)."""
    _check_circuit_decoder(decoder)
    terms = series_terms(decoder.circuits)
    return (None if terms is None else decoder.config.n_heads * terms), decoder.config.n_heads * points


def measure_decoder_features(decoder, device: str | object = "default.qubit", backend: str | None = None,
                             shots: int | None = None, mitigation=(), seed: int | None = None) -> DeviceRun:
    """Measure the decoder's circuits on ``device`` (a PennyLane device name or object; ``backend``: a fake IBM
    backend's name, run on ``qiskit.aer`` with its calibrated noise) with ``shots`` per execution and
    ``mitigation`` (``"readout"``, ``"zne"``), install the measured series in the decoder and return the report.

    Args:
        decoder: A ``FeatureSynthesisDecoder`` with circuit features.
        device: A PennyLane device name (any installed plugin) or a device object.
        backend: A fake IBM backend (``"FakeBrisbane"``, ``"fake_torino"``, ...); needs ``device="qiskit.aer"``.
        shots: Shots per execution; ``None``: the device's exact expectations.
        mitigation: ``"readout"``, ``"zne"``, both (comma-separated or a sequence), or none.
        seed: Seeds the device's shots and the transpiler.

    Returns:
        The `DeviceRun` report (``.lines()`` for a terminal).

    Examples:
        >>> from qiren_gen.models import FeatureSynthesisDecoder
        >>> from qiren_gen.models.device_features import measure_decoder_features
        >>> decoder = FeatureSynthesisDecoder(n_heads=2, hidden_features=8, hidden_layers=1)
        >>> measure_decoder_features(decoder, "default.qubit").executions  # 2 heads x 25
        50
    """
    _check_circuit_decoder(decoder)
    heads = decoder.circuits
    calibrated = None
    if isinstance(device, str):
        name = device
        device, calibrated = open_device(name, heads.n_qubits, backend, seed)
    elif backend is not None:
        raise ValueError("give the device by name to run it with a fake IBM backend")
    else:
        name = getattr(device, "name", type(device).__name__)
    series, run = measure_head_series(heads, device, shots, mitigation, device_name=name)
    if calibrated is not None:
        _, _, grid = series_sample_angles(heads)
        price_run(run, head_tapes(heads, grid[-1:], shots), device, calibrated, seed)  # one circuit per head
    decoder.set_measured_series(series)
    return run


def device_point_features(decoder, coords: torch.Tensor, device, shots: int | None = None, mitigation=()
                          ) -> tuple[torch.Tensor, dict]:
    """Features ``(P, H*n)`` of ``coords`` ``(P, in)`` from one execution per head and point on ``device`` (a PennyLane
    device object), and the tracker's totals: the path where the series has more terms than there are points."""
    _check_circuit_decoder(decoder)
    heads, qubits = decoder.config.n_heads, decoder.config.n_qubits
    with torch.no_grad():
        slopes, offset = angle_map(decoder, decoder.reference_statistics())
    angles = (coords.detach().to(torch.float64) @ slopes.T + offset).reshape(-1, heads, qubits)
    values, totals = measure_point_features(decoder.circuits, angles, device, shots, mitigation)
    return values.reshape(len(angles), heads * qubits), totals


__all__ = ["device_point_features", "feature_executions", "measure_decoder_features"]
