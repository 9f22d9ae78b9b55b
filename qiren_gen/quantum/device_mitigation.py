"""Error mitigation for circuits measured on a device: readout-error correction and zero-noise extrapolation.

* ``"readout"``: two calibration circuits (every qubit prepared in ``|0>``, then in ``|1>``) measured on the same device
  and qubits give each qubit's flip probabilities; with ``z0``, ``z1`` the measured ``<Z>`` of the two preparations a
  measured ``<Z>`` is corrected to ``(z - (z0 + z1) / 2) / ((z0 - z1) / 2)`` (the inverse of the qubit's assignment
  matrix, exact for independent readout errors).
* ``"zne"``: each circuit is also run folded, ``U (U^dag U)^k`` with barriers between the pieces so that no
  transpiler cancels them (noise scaled by ``2 k + 1``), and the values are extrapolated to zero noise (Richardson:
  the polynomial through the scales, at 0). Readout is corrected before extrapolating: folding does not scale it.
"""
from __future__ import annotations

import numpy as np

MITIGATIONS = ("readout", "zne")
"""Mitigations `measure_head_series` applies, in this order."""


def check_mitigation(mitigation) -> tuple[str, ...]:
    """``mitigation`` as a tuple in `MITIGATIONS` order: a comma-separated string, a sequence, or empty."""
    if mitigation is None:
        return ()
    names = [m.strip() for m in mitigation.split(",")] if isinstance(mitigation, str) else list(mitigation)
    names = [m for m in names if m not in ("", "none")]
    bad = [m for m in names if m not in MITIGATIONS]
    if bad:
        raise ValueError(f"unknown mitigation {bad[0]!r}: choose from {', '.join(MITIGATIONS)} (comma-separated)")
    return tuple(m for m in MITIGATIONS if m in names)


def readout_calibration_tapes(n_qubits: int, shots: int | None) -> list:
    """The two calibration tapes: all qubits in ``|0>``, then all in ``|1>``, each reading every ``<Z_j>``."""
    import pennylane as qml

    measure = [qml.expval(qml.PauliZ(j)) for j in range(n_qubits)]
    ones = [qml.PauliX(j) for j in range(n_qubits)]
    return [qml.tape.QuantumScript([qml.Identity(j) for j in range(n_qubits)], measure, shots=shots),
            qml.tape.QuantumScript(ones, measure, shots=shots)]


def readout_correct(values: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """``values`` ``(..., n)`` of ``<Z_j>`` corrected with ``calibration`` ``(2, n)`` (the ``|0>`` and ``|1>`` rows);
    clipped to ``[-1, 1]``."""
    z0, z1 = calibration[0], calibration[1]
    contrast = (z0 - z1) / 2
    if np.any(contrast <= 0.05):
        raise ValueError(f"readout calibration failed: <Z> of |0> and |1> differ by {float(np.min(z0 - z1)):.3f} on "
                         "some qubit (the qubit cannot be read)")
    return np.clip((values - (z0 + z1) / 2) / contrast, -1.0, 1.0)


def fold_tape(tape, scale: int):
    """``tape`` with its operations ``U`` replaced by ``U (U^dag U)^k``, ``scale = 2 k + 1``, separated by barriers
    (so a transpiler keeps every piece); ``scale = 1`` returns ``tape`` itself."""
    import pennylane as qml

    if scale == 1:
        return tape
    if scale < 1 or scale % 2 == 0:
        raise ValueError(f"a fold scale must be an odd integer >= 1, got {scale!r}")
    ops = list(tape.operations)
    if any(isinstance(op, qml.operation.Channel) for op in ops):
        raise ValueError("zero-noise extrapolation folds gates, not noise channels: give the device the noise")
    wires = tape.wires
    inverse = [op.adjoint() for op in reversed(ops)]
    folded = list(ops)
    for _ in range((scale - 1) // 2):
        folded += [qml.Barrier(wires=wires, only_visual=False), *inverse,
                   qml.Barrier(wires=wires, only_visual=False), *ops]
    return qml.tape.QuantumScript(folded, tape.measurements, shots=tape.shots)


def richardson_extrapolate(values: np.ndarray, scales) -> np.ndarray:
    """Zero-noise value from ``values`` ``(S, ...)`` at noise ``scales`` ``(S,)``: the degree ``S - 1`` polynomial
    through them at 0, ``sum_i v_i prod_{j != i} s_j / (s_j - s_i)``; clipped to ``[-1, 1]``."""
    scales = [float(s) for s in scales]
    weights = [np.prod([sj / (sj - si) for j, sj in enumerate(scales) if j != i]) for i, si in enumerate(scales)]
    return np.clip(np.tensordot(np.asarray(weights), values, axes=1), -1.0, 1.0)


__all__ = ["MITIGATIONS", "check_mitigation", "fold_tape", "readout_calibration_tapes", "readout_correct",
           "richardson_extrapolate"]
