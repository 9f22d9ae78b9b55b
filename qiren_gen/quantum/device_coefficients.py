"""The heads' Fourier coefficients measured on any PennyLane device: a device cost per model, not per point.

Each head of a `MultiHeadReuploadingCircuit` is a finite Fourier series in its input
angles (`spectrum`), fixed by its values at ``prod_j (2 L_j + 1)`` sample angles: 25 for the bundled 2-qubit,
2-upload heads. `measure_head_series` runs exactly those ``heads x (2 L + 1)^n`` circuits on a device (exact,
with shots, or a noisy one such as ``qiskit.aer`` with an IBM backend's calibration) as one batch through
``qml.execute`` (one job where the device batches, as PennyLane-Qiskit's Aer device does), and fits the series from
the measured values; the decoder then renders every feature at every resolution from it. Where a head has more terms
than there are points, `measure_point_features` runs the circuits at the points themselves instead.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .device_mitigation import (
    MITIGATIONS,
    check_mitigation,
    fold_tape,
    readout_calibration_tapes,
    readout_correct,
    richardson_extrapolate,
)
from .export import reuploading_qfunc
from .shots import check_shots
from .spectrum import MAX_SERIES_TERMS, HeadSeries, fit_series, sample_angles, spectrum_bases

ZNE_SCALES = (1, 3)
"""Noise scale factors of zero-noise extrapolation: the circuit, and the circuit folded once (``U U^dag U``)."""


@dataclass
class DeviceRun:
    """What measuring the circuits on a device cost: executions, jobs, shots and, on a calibrated backend, the
    transpiled circuits' depth, two-qubit gates and estimated device time."""

    device: str
    executions: int
    jobs: int
    shots: int | None
    wall_seconds: float
    mitigation: tuple[str, ...] = ()
    backend: str | None = None
    physical_qubits: list[int] | None = None
    depth: int | None = None  # largest transpiled depth over the heads' circuits
    two_qubit_gates: int | None = None  # most native two-qubit gates in one circuit
    circuit_seconds: float | None = None  # mean estimated duration of one shot of one circuit
    device_seconds: float | None = None  # executions x shots x (circuit duration + repetition delay)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, a few lines for a terminal."""
        shots = "exact expectations" if self.shots is None else f"{self.shots:,} shots each"
        where = self.device if self.backend is None else f"{self.device} with {self.backend}'s calibrated noise " \
                                                        f"on qubits {self.physical_qubits}"
        out = [f"device: {where}",
               f"executions: {self.executions:,} ({shots}) in {self.jobs} job(s), {self.wall_seconds:.1f} s"]
        if self.mitigation:
            out.append(f"mitigation: {', '.join(self.mitigation)}")
        if self.depth is not None:
            out.append(f"transpiled: depth {self.depth}, {self.two_qubit_gates} two-qubit gates per circuit (most)")
        if self.device_seconds is not None:
            out.append(f"estimated device time: {self.device_seconds:.1f} s ({self.circuit_seconds * 1e6:.1f} us "
                       "per shot of circuit, plus the repetition delay)")
        return out + self.notes


def series_sample_angles(heads) -> tuple[list[float], list[int], torch.Tensor]:
    """Per qubit the base and multiple of the heads' spectrum, and the ``(prod_j D_j, n)`` sample angles (float64,
    row-major over the qubits' axes), or ``ValueError`` where the series does not apply."""
    spectrum = spectrum_bases(heads.encoding_scales, heads.n_reuploads, heads.n_qubits)
    if spectrum is None:
        raise ValueError("the heads' encoding scales have no common base: their series has no common period, so "
                         "their features must be measured per point")
    bases, multiples = spectrum
    axes = sample_angles(bases, multiples)
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, heads.n_qubits)
    return bases, multiples, grid


def series_terms(heads) -> int | None:
    """``prod_j (2 L_j + 1)``: circuit executions per head that fix its series (``None``: no series applies)."""
    spectrum = spectrum_bases(heads.encoding_scales, heads.n_reuploads, heads.n_qubits)
    return None if spectrum is None else math.prod(2 * L + 1 for L in spectrum[1])


def head_tapes(heads, angles: torch.Tensor, shots: int | None) -> list:
    """One tape per head and angle row: ``angles`` ``(P, n)`` shared by every head, or ``(P, H, n)`` per head;
    head-major order (all of head 0's rows, then head 1's ...). Plain float64 NumPy parameters."""
    import pennylane as qml

    qfunc = reuploading_qfunc(heads.n_qubits, heads.n_reuploads, heads.n_blocks, heads.entangler, None, None,
                              heads.encoding_scales)
    weights = heads.weights.detach().to("cpu", torch.float64).numpy()
    x = angles.detach().to("cpu", torch.float64).numpy()
    build = qml.tape.make_qscript(qfunc, shots=shots)
    return [build(x[p] if x.ndim == 2 else x[p, h], weights[h]) for h in range(heads.n_heads) for p in range(len(x))]


def run_batch(tapes: list, device) -> np.ndarray:
    """Expectations ``(T, m)`` of ``tapes`` from one ``qml.execute`` call (one batch: one job where the device
    batches)."""
    import pennylane as qml

    results = qml.execute(tapes, device)
    return np.asarray([[float(v) for v in (r if isinstance(r, (tuple, list)) else [r])] for r in results],
                      dtype=np.float64)


@dataclass
class RawMeasurement:
    """Unmitigated values of one batch: ``runs`` ``(S, T, m)`` at the fold scales ``scales``, the readout
    calibration ``(2, n)`` (or ``None``), and the tracker's totals for the whole batch."""

    runs: np.ndarray
    scales: tuple[int, ...]
    calibration: np.ndarray | None
    totals: dict

    def mitigated(self, mitigation=()) -> np.ndarray:
        """The ``(T, m)`` values with ``mitigation`` applied (a subset of what was measured)."""
        mitigation = check_mitigation(mitigation)
        if "readout" in mitigation and self.calibration is None:
            raise ValueError("readout mitigation needs the calibration circuits: measure with 'readout'")
        if "zne" in mitigation and len(self.scales) < 2:
            raise ValueError("zero-noise extrapolation needs the folded circuits: measure with 'zne'")
        runs = readout_correct(self.runs, self.calibration) if "readout" in mitigation else self.runs
        return richardson_extrapolate(runs, self.scales) if "zne" in mitigation else runs[0]


def measure_raw(heads, angles: torch.Tensor, device, shots: int | None, mitigation=()) -> RawMeasurement:
    """The heads at ``angles`` on ``device`` as one batch: the circuits, their folded copies for ``"zne"`` and the
    two calibration circuits for ``"readout"``, counted by PennyLane's tracker."""
    mitigation = check_mitigation(mitigation)
    tapes = head_tapes(heads, angles, shots)
    scales = ZNE_SCALES if "zne" in mitigation else (1,)
    batch = [fold_tape(t, s) for s in scales for t in tapes]
    calibration = readout_calibration_tapes(heads.n_qubits, shots) if "readout" in mitigation else []
    values, totals = _tracked_batch(batch + calibration, device)
    runs = values[: len(batch)].reshape(len(scales), len(tapes), -1)
    return RawMeasurement(runs, tuple(scales), values[len(batch):] if calibration else None, totals)


def _tracked_batch(tapes: list, device) -> tuple[np.ndarray, dict]:
    """`run_batch` counted by PennyLane's tracker: the caller's active one (as the difference it saw), else
    a new one."""
    import pennylane as qml

    outer = getattr(device, "tracker", None)
    if outer is not None and outer.active:
        before = dict(outer.totals)
        values = run_batch(tapes, device)
        return values, {k: v - before.get(k, 0) for k, v in outer.totals.items()}
    with qml.Tracker(device) as tracker:
        values = run_batch(tapes, device)
    return values, dict(tracker.totals)


def measured_values(heads, angles: torch.Tensor, device, shots: int | None, mitigation=()) -> tuple[np.ndarray, dict]:
    """Head-major expectations ``(H * P, n)`` at ``angles`` measured on ``device`` with ``mitigation`` applied, and
    the PennyLane tracker's totals for the whole batch (circuits, folded copies and calibration together)."""
    raw = measure_raw(heads, angles, device, shots, mitigation)
    return raw.mitigated(mitigation), raw.totals


def series_from_values(heads, values: np.ndarray) -> HeadSeries:
    """The heads' series from head-major values ``(H * prod_j D_j, n)`` at `series_sample_angles`."""
    bases, multiples, _ = series_sample_angles(heads)
    shape = [2 * L + 1 for L in multiples]
    values = torch.from_numpy(np.asarray(values)).reshape(heads.n_heads, *shape, -1).movedim(0, -2)
    return fit_series(values, bases, multiples)  # values (D_1 .. D_n, H, m)


def measure_head_series(heads, device, shots: int | None = None, mitigation=(), device_name: str | None = None
                        ) -> tuple[HeadSeries, DeviceRun]:
    """The heads' Fourier series from their ``heads x prod_j (2 L_j + 1)`` executions on ``device`` (a PennyLane
    device object), with ``shots`` per execution (``None``: the device's exact expectations) and ``mitigation``
    (``"readout"``, ``"zne"``); and the `DeviceRun` report (executions counted by PennyLane's tracker)."""
    shots = check_shots(shots)
    bases, multiples, grid = series_sample_angles(heads)
    terms = math.prod(2 * L + 1 for L in multiples)
    if terms > MAX_SERIES_TERMS:
        raise ValueError(f"each head's series has {terms} terms (more than {MAX_SERIES_TERMS}): measure its features "
                         "per point")
    start = time.perf_counter()
    values, totals = measured_values(heads, grid, device, shots, mitigation)
    seconds = time.perf_counter() - start
    series = series_from_values(heads, values)
    run = DeviceRun(device=device_name or getattr(device, "name", str(device)),
                    executions=int(totals.get("executions", 0)), jobs=int(totals.get("batches", 0)), shots=shots,
                    wall_seconds=seconds, mitigation=check_mitigation(mitigation))
    return series, run


def measure_point_features(heads, angles: torch.Tensor, device, shots: int | None = None, mitigation=()
                           ) -> tuple[torch.Tensor, dict]:
    """Expectations ``(P, H, n)`` at per-point angles ``(P, H, n)``, one execution per head and point: the path
    where a head's series has more terms than there are points. Also the tracker's totals."""
    values, totals = measured_values(heads, angles, device, check_shots(shots), mitigation)
    out = torch.from_numpy(values).reshape(heads.n_heads, angles.shape[0], -1).transpose(0, 1)
    return out, totals


__all__ = ["MITIGATIONS", "ZNE_SCALES", "DeviceRun", "RawMeasurement", "head_tapes", "measure_head_series",
           "measure_point_features", "measure_raw", "measured_values", "run_batch", "series_from_values",
           "series_sample_angles", "series_terms"]
