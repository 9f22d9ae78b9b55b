"""Open a PennyLane device by name (any installed plugin), optionally with a fake IBM backend's calibrated noise, and
price its circuits: transpiled depth, native two-qubit gates and device time from the backend's durations."""
from __future__ import annotations

from .device_coefficients import DeviceRun
from .ibm_backends import QPU_EXTRA, TWO_QUBIT_GATES, CalibratedDevice, calibrated_qubits

QISKIT_AER = "qiskit.aer"
"""The PennyLane-Qiskit device that runs a fake backend's noise model (Qiskit Aer)."""

TRANSPILE_OPTIONS = {"optimization_level": 1}
"""Transpiler settings of the calibrated device: native gates, one-qubit runs merged, nothing heavier."""


def open_device(name: str, n_qubits: int, backend: str | None = None, seed: int | None = None
                ) -> tuple[object, CalibratedDevice | None]:
    """The PennyLane device ``name`` on ``n_qubits`` wires, and with ``backend`` (a fake IBM backend's name, only
    with ``qiskit.aer``) the calibrated qubits it simulates. ``seed`` fixes the shots (and the transpiler)."""
    import pennylane as qml

    if backend is not None and name != QISKIT_AER:
        raise ValueError(f"a fake IBM backend runs on the '{QISKIT_AER}' device (PennyLane-Qiskit), not on '{name}'")
    if name.startswith("qiskit."):
        try:
            import pennylane_qiskit  # noqa: F401
        except ImportError:
            raise ImportError(f"device '{name}' needs PennyLane-Qiskit: {QPU_EXTRA}") from None
    if backend is not None:
        calibrated = calibrated_qubits(backend, n_qubits, seed)
        options = dict(TRANSPILE_OPTIONS, **({} if seed is None else {"seed_transpiler": seed}))
        return qml.device(name, wires=n_qubits, backend=calibrated.simulator, **options), calibrated
    kwargs = {} if seed is None else ({"seed_simulator": seed} if name.startswith("qiskit.") else {"seed": seed})
    try:
        return qml.device(name, wires=n_qubits, **kwargs), None
    except qml.exceptions.DeviceError as exc:
        if "does not exist" in str(exc):
            raise ValueError(f"unknown PennyLane device '{name}': not one of the installed devices (e.g. "
                             f"default.qubit, default.mixed, lightning.qubit; '{QISKIT_AER}' with the qpu extra)"
                             ) from None
        raise ValueError(f"cannot open PennyLane device '{name}': {exc}") from None
    except TypeError:  # a plugin without a seed argument
        return qml.device(name, wires=n_qubits), None


def transpiled_costs(tapes: list, device, calibrated: CalibratedDevice, seed: int | None = None
                     ) -> tuple[int, int, float]:
    """Largest depth, most native two-qubit gates and mean one-shot duration (seconds, from the backend's gate and
    readout durations) of ``tapes`` after ``device``'s own preprocessing, transpiled as the device transpiles them."""
    from pennylane_qiskit.converter import circuit_to_qiskit
    from qiskit import transpile

    options = dict(TRANSPILE_OPTIONS, **({} if seed is None else {"seed_transpiler": seed}))
    prepared, _ = device.preprocess_transforms()(tapes)  # the gates the device hands to Qiskit
    n_qubits = len(device.wires)
    depths, gates, seconds = [], [], []
    for tape in prepared:
        circuit = transpile(circuit_to_qiskit(tape, n_qubits, diagonalize=True, measure=True),
                            backend=calibrated.simulator, **options)
        counts = circuit.count_ops()
        depths.append(circuit.depth())
        gates.append(sum(counts.get(g, 0) for g in TWO_QUBIT_GATES))
        seconds.append(circuit.estimate_duration(calibrated.simulator.target, unit="s"))
    return max(depths), max(gates), sum(seconds) / len(seconds)


def price_run(run: DeviceRun, sample_tapes: list, device, calibrated: CalibratedDevice, seed: int | None = None
              ) -> DeviceRun:
    """``run`` with the calibrated backend's name, qubits, transpiled depth and gates and estimated device time:
    ``executions x shots x (one-shot duration + the device's repetition delay)``."""
    depth, two_qubit, seconds = transpiled_costs(sample_tapes, device, calibrated, seed)
    run.backend, run.physical_qubits = calibrated.backend_name, calibrated.physical_qubits
    run.depth, run.two_qubit_gates, run.circuit_seconds = depth, two_qubit, seconds
    if run.shots is not None:
        run.device_seconds = run.executions * run.shots * (seconds + (calibrated.rep_delay or 0.0))
    return run


__all__ = ["QISKIT_AER", "TRANSPILE_OPTIONS", "open_device", "price_run", "transpiled_costs"]
