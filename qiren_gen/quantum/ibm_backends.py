"""IBM-calibrated noise offline: a fake IBM backend's qubits as a Qiskit Aer device for PennyLane-Qiskit.

``qiskit-ibm-runtime`` ships snapshots of IBM devices' calibrations (per-qubit T1 / T2, gate and readout errors and
durations, native gates, coupling map) as fake backends. `calibrated_qubits` keeps the best-calibrated connected
qubits a circuit needs (lowest two-qubit-gate plus readout error), as a small backend with exactly those qubits'
calibration, so that the transpiler and Aer's ``NoiseModel.from_backend`` work on a few qubits instead of 127 while
every gate still becomes the device's native gates on its coupling map with that device's noise. Needs the ``qpu``
extra (``pip install 'qiren-gen[qpu]'``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

QPU_EXTRA = "the 'qpu' extra is not installed (pip install 'qiren-gen[qpu]': pennylane-qiskit, qiskit-aer, " \
            "qiskit-ibm-runtime)"
"""The one-line reason given when a device or backend needs the ``qpu`` extra."""

TWO_QUBIT_GATES = ("ecr", "cz", "cx")
"""Native two-qubit gates of IBM devices (Eagle: ECR; Heron: CZ; older Falcons: CX)."""


def require_qpu_extra(module: str = "qiskit_ibm_runtime"):
    """Import ``module`` of the ``qpu`` extra, or raise ``ImportError`` with `QPU_EXTRA`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(QPU_EXTRA) from None


def fake_backend_names() -> list[str]:
    """Class names of the fake IBM backends the installed ``qiskit-ibm-runtime`` ships (``FakeBrisbane``, ...)."""
    provider = require_qpu_extra("qiskit_ibm_runtime.fake_provider")
    from qiskit.providers import BackendV2

    classes = {name: getattr(provider, name) for name in dir(provider) if name.startswith("Fake")}
    return sorted(name for name, cls in classes.items() if isinstance(cls, type) and issubclass(cls, BackendV2)
                  and name != "FakeFractionalBackend")


def fake_backend(name: str):
    """The fake IBM backend ``name``: its class name (``FakeBrisbane``) or its backend name (``fake_brisbane``)."""
    provider = require_qpu_extra("qiskit_ibm_runtime.fake_provider")
    names = fake_backend_names()
    wanted = str(name).replace("_", "").lower()
    for candidate in names:
        if candidate.lower() == wanted or candidate.lower() == f"{wanted}v2":
            return getattr(provider, candidate)()
    shown = ", ".join(n for n in names if n in ("FakeBrisbane", "FakeTorino", "FakeSherbrooke", "FakeManilaV2"))
    raise ValueError(f"unknown fake IBM backend '{name}': one of the {len(names)} in qiskit_ibm_runtime.fake_provider "
                     f"(e.g. {shown})")


def _two_qubit_gate(target) -> str:
    for gate in TWO_QUBIT_GATES:
        if gate in target.operation_names:
            return gate
    raise ValueError(f"the backend has no two-qubit gate among {TWO_QUBIT_GATES}")


def best_qubits(target, n_qubits: int) -> list[int]:
    """A connected chain of ``n_qubits`` physical qubits with the lowest readout and two-qubit-gate errors: the best
    pair first, then extended greedily at either end (what a user picking qubits from the calibration would do)."""
    if n_qubits > target.num_qubits:
        raise ValueError(f"the circuits need {n_qubits} qubits, the backend has {target.num_qubits}")

    def readout(q: int) -> float:
        props = target["measure"].get((q,)) if "measure" in target.operation_names else None
        return props.error if props is not None and props.error is not None else 0.0

    if n_qubits == 1:
        return [min(range(target.num_qubits), key=readout)]
    gate = _two_qubit_gate(target)
    edge_error = {}
    for (a, b), props in target[gate].items():
        error = props.error if props is not None and props.error is not None else 0.0
        for key in ((a, b), (b, a)):
            edge_error[key] = min(error, edge_error.get(key, float("inf")))
    cost = {edge: e + readout(edge[0]) + readout(edge[1]) for edge, e in edge_error.items() if e < 1.0}
    chain = list(min(cost, key=cost.get))
    while len(chain) < n_qubits:
        options = [(e + readout(b), end, b) for end in (chain[0], chain[-1]) for (a, b), e in edge_error.items()
                   if a == end and b not in chain and e < 1.0]
        if not options:
            raise ValueError(f"no connected chain of {n_qubits} usable qubits on the backend")
        _, end, new = min(options)
        chain = [new, *chain] if end == chain[0] else [*chain, new]
    return chain


def sub_target(target, qubits: list[int]):
    """The part of ``target`` on ``qubits`` (renumbered ``0..n-1`` in that order): gates, errors, durations, T1/T2."""
    from qiskit.transpiler import Target

    index = {q: i for i, q in enumerate(qubits)}
    props = target.qubit_properties
    sub = Target(description=f"qubits {qubits}", num_qubits=len(qubits), dt=target.dt,
                 granularity=target.granularity, min_length=target.min_length, pulse_alignment=target.pulse_alignment,
                 acquire_alignment=target.acquire_alignment,
                 qubit_properties=None if props is None else [props[q] for q in qubits])
    for name in target.operation_names:
        kept = {tuple(index[q] for q in qargs): p for qargs, p in target[name].items()
                if qargs is not None and all(q in index for q in qargs)}
        if kept:
            sub.add_instruction(target.operation_from_name(name), kept, name=name)
    return sub


@dataclass
class CalibratedDevice:
    """A fake backend's chosen qubits as an Aer simulator with their calibrated noise."""

    backend_name: str
    physical_qubits: list[int]
    simulator: object  # qiskit_aer.AerSimulator with the qubits' target and noise model
    rep_delay: float | None  # seconds between shots on the device (None: not in the snapshot)


def calibrated_qubits(name: str, n_qubits: int, seed: int | None = None) -> CalibratedDevice:
    """The best ``n_qubits`` connected qubits of the fake backend ``name`` as an `AerSimulator` whose target
    (native gates, coupling, durations) and noise model (``NoiseModel.from_backend``: depolarizing gate errors,
    thermal relaxation from T1 / T2 over each gate's duration, readout errors) are those qubits' calibration."""
    require_qpu_extra("qiskit_aer")
    from qiskit.providers import BackendV2, Options
    from qiskit_aer import AerSimulator

    source = fake_backend(name)
    qubits = best_qubits(source.target, n_qubits)
    target = sub_target(source.target, qubits)

    class _Qubits(BackendV2):  # the smallest BackendV2 that Aer's from_backend reads: a name and a target
        @property
        def target(self):
            return target

        @property
        def max_circuits(self):
            return None

        @classmethod
        def _default_options(cls):
            return Options()

        def run(self, run_input, **options):  # pragma: no cover - the Aer simulator runs, never this
            raise NotImplementedError

    simulator = AerSimulator.from_backend(_Qubits(name=f"{source.name}{qubits}"))
    if seed is not None:
        simulator.set_options(seed_simulator=seed)
    rep_delay = getattr(source, "default_rep_delay", None)
    if rep_delay is None and hasattr(source, "configuration"):
        rep_delay = getattr(source.configuration(), "default_rep_delay", None)
    return CalibratedDevice(source.name, qubits, simulator, rep_delay)


__all__ = ["QPU_EXTRA", "TWO_QUBIT_GATES", "CalibratedDevice", "best_qubits", "calibrated_qubits", "fake_backend",
           "fake_backend_names", "require_qpu_extra", "sub_target"]
