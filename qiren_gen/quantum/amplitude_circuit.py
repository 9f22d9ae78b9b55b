"""``RealAmplitudeCircuit``: an amplitude-encoded state through a real ``RY`` + ``CNOT`` ansatz, read by ``<Z_j>``.

The quantum part of the Quantum Visual Field (QVF, Wang, Theobalt, Golyanik 2025): each input row is a real,
normalised state vector ``psi`` (``2**n`` amplitudes, prepared on a device by amplitude encoding); ``L`` layers of
``RY(theta_{l, j})`` on every qubit, each followed by ``CNOT(i, j)`` for every pair ``i < j`` (``"cnot_all"``, the
fully entangled reading) or a ``CNOT`` ring, act on it; ``<Z_j>`` of the first ``n_outputs`` qubits is the output.
``RY`` and ``CNOT`` are real, so the whole ansatz is one real orthogonal ``2**n x 2**n`` matrix ``U(theta)``: the
simulation builds it once per call from the weights and applies it to the batch as one GEMM.

Device cost per execution (``n`` qubits, ``L`` layers, ``P`` = CNOTs per layer: ``n (n - 1) / 2`` for
``cnot_all``, ``n`` for ``cnot_ring``): ``n L`` ``RY`` and ``P L`` CNOTs in the ansatz, plus the state preparation of
an arbitrary real positive vector (Mottonen et al.: ``2**n - 1`` ``RY`` and ``2**n - 2`` CNOTs), which dominates
for ``n >= 5``. :func:`ansatz_qfunc` is the PennyLane twin (``StatePrep`` + the same gates).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .export import torch_layer
from .gates import cnot_permutation, kron_chain, observable_signs
from .shots import MeasurementMixin, RefuseShotGradient, check_shots, sample_frequencies

ANSATZ_ENTANGLERS = ("cnot_all", "cnot_ring")
"""CNOTs after each ``RY`` layer: every pair ``(i, j)``, ``i < j`` in order (fully entangled), or ``(i, i+1 mod n)``."""

MAX_AMPLITUDE_QUBITS = 12
"""Largest register: the ansatz is held as a dense ``2**n x 2**n`` real matrix (16 MiB in float32 at 12 qubits)."""


def ansatz_pairs(n_qubits: int, entangler: str) -> list[tuple[int, int]]:
    """The CNOT ``(control, target)`` pairs of one layer, in the order they are applied."""
    if entangler not in ANSATZ_ENTANGLERS:
        raise ValueError(f"entangler must be one of {ANSATZ_ENTANGLERS}, got {entangler!r}")
    if n_qubits < 2:
        return []
    if entangler == "cnot_all":
        return [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits)]
    if n_qubits == 2:
        return [(0, 1)]
    return [(i, (i + 1) % n_qubits) for i in range(n_qubits)]


def ry_matrices(angles: torch.Tensor) -> torch.Tensor:
    """PennyLane ``RY(theta) = [[cos t/2, -sin t/2], [sin t/2, cos t/2]]`` for ``angles (...)`` -> ``(..., 2, 2)``."""
    c, s = torch.cos(angles / 2), torch.sin(angles / 2)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def ansatz_matrix(weights: torch.Tensor, entangler: str = "cnot_all") -> torch.Tensor:
    """The real orthogonal ``(2**n, 2**n)`` matrix of the ansatz with ``RY`` angles ``weights (L, n)``."""
    n_layers, n_qubits = weights.shape
    gather = cnot_permutation(n_qubits, ansatz_pairs(n_qubits, entangler), weights.device)
    layers = kron_chain(ry_matrices(weights))  # (L, d, d)
    u = torch.eye(2**n_qubits, dtype=weights.dtype, device=weights.device)
    for layer in range(n_layers):
        u = (layers[layer] @ u)[gather]  # new[b] = old[gather[b]]: the CNOTs after the RY layer
    return u


def simulate_amplitude_ansatz(amplitudes: torch.Tensor, weights: torch.Tensor, entangler: str = "cnot_all",
                              wires_read: list[tuple[int, ...]] | None = None) -> torch.Tensor:
    """Exact ``<Z>`` strings ``(..., m)`` of ``U(weights) psi`` for real states ``amplitudes (..., 2**n)``."""
    probs = ansatz_probabilities(amplitudes, weights, entangler)
    n_qubits = weights.shape[1]
    wires = [(j,) for j in range(n_qubits)] if wires_read is None else wires_read
    return probs @ observable_signs(n_qubits, wires, probs.dtype, probs.device)


def ansatz_probabilities(amplitudes: torch.Tensor, weights: torch.Tensor, entangler: str = "cnot_all") -> torch.Tensor:
    """Outcome probabilities ``|U psi|^2`` ``(..., 2**n)`` of a projective measurement in the computational basis."""
    real = torch.promote_types(amplitudes.dtype, weights.dtype)
    u = ansatz_matrix(weights.to(real), entangler)
    return (amplitudes.to(real) @ u.T).square()


def readout_flips(probs: torch.Tensor, n_qubits: int, p: float) -> torch.Tensor:
    """Probabilities after an independent bit flip with probability ``p`` on every measured qubit."""
    flip = torch.tensor([[1 - p, p], [p, 1 - p]], dtype=probs.dtype, device=probs.device)
    return probs @ kron_chain(flip.expand(n_qubits, 2, 2)).T


class RealAmplitudeCircuit(MeasurementMixin, nn.Module):
    """The QVF ansatz as a torch module: real states ``(..., 2**n_qubits)`` -> ``<Z_j>`` ``(..., n_outputs)``.

    Exact by default. Under :func:`~.shots.measurement`, ``shots=N`` estimates every ``<Z_j>`` from ``N`` samples of
    ``|U psi|^2`` (a straight-through gradient with ``train_shots``, otherwise a backward is refused) and a noise
    model's ``readout`` flips bits before the estimate. Gate noise (depolarizing, damping) is refused: the amplitude
    encoding's state preparation would carry most of it, and it is not simulated here.

    Examples:
        >>> import torch
        >>> from qiren_gen.quantum.amplitude_circuit import RealAmplitudeCircuit
        >>> circuit = RealAmplitudeCircuit(n_qubits=3, n_layers=2, n_outputs=1)
        >>> psi = torch.nn.functional.normalize(torch.rand(4, 8), dim=-1)
        >>> out = circuit(psi)
        >>> out.shape, bool(out.abs().max() <= 1)
        (torch.Size([4, 1]), True)
    """

    def __init__(self, n_qubits: int = 6, n_layers: int = 8, n_outputs: int = 1, entangler: str = "cnot_all") -> None:
        super().__init__()
        for name, value, low, high in (("n_qubits", n_qubits, 1, MAX_AMPLITUDE_QUBITS),
                                       ("n_layers", n_layers, 1, 10**4),
                                       ("n_outputs", n_outputs, 1, n_qubits)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
        ansatz_pairs(n_qubits, entangler)  # validates the entangler
        self.n_qubits, self.n_layers, self.n_outputs, self.entangler = n_qubits, n_layers, n_outputs, entangler
        self.entangler = entangler
        self.wires_read = [(j,) for j in range(n_outputs)]
        # PennyLane's TorchLayer initialises weights uniformly in [0, 2 pi); so do we.
        self.weights = nn.Parameter(torch.rand(n_layers, n_qubits) * (2 * math.pi))

    def forward(self, amplitudes: torch.Tensor) -> torch.Tensor:
        """``<Z_j>`` of the first ``n_outputs`` qubits after the ansatz, for normalised real ``amplitudes``."""
        if amplitudes.ndim == 0 or amplitudes.shape[-1] != 2**self.n_qubits:
            raise ValueError(f"amplitudes must have shape (..., {2**self.n_qubits}), got {tuple(amplitudes.shape)}")
        if not self.measuring:
            return simulate_amplitude_ansatz(amplitudes, self.weights, self.entangler, self.wires_read)
        return self._measured(amplitudes)

    def _measured(self, amplitudes: torch.Tensor) -> torch.Tensor:
        noise = self.noise
        if noise is not None and noise.gate_noise:
            raise ValueError("QVF circuits take shots and readout noise only: gate noise (depolarizing, damping) is "
                             "not simulated for amplitude-encoded states")
        probs = ansatz_probabilities(amplitudes, self.weights, self.entangler)
        if noise is not None and noise.readout > 0:
            probs = readout_flips(probs, self.n_qubits, noise.readout)
        obs = observable_signs(self.n_qubits, self.wires_read, probs.dtype, probs.device)
        exact = probs @ obs
        if self.shots is None:
            return exact
        shots = check_shots(self.shots)
        estimate = sample_frequencies(probs.detach(), shots, self.measurement_generator) @ obs
        if not (torch.is_grad_enabled() and exact.requires_grad):
            return estimate
        if not self.train_shots:
            return RefuseShotGradient.apply(estimate, exact)
        return exact + (estimate - exact).detach()

    def extra_repr(self) -> str:
        return (f"n_qubits={self.n_qubits}, n_layers={self.n_layers}, n_outputs={self.n_outputs}, "
                f"entangler={self.entangler!r}")

    def qfunc(self):
        """The circuit as a PennyLane quantum function ``qfunc(inputs, weights)`` (``inputs``: the amplitudes)."""
        return ansatz_qfunc(self.n_qubits, self.n_layers, self.entangler, self.n_outputs)

    def to_pennylane(self, device: str | object = "default.qubit", diff_method: str = "backprop",
                     shots: int | None = None, readout: float = 0.0, **device_kwargs):
        """The identical circuit as a ``qml.qnn.TorchLayer`` holding a copy of these weights.

        ``readout > 0`` puts a ``BitFlip(readout)`` on every wire before measurement (use ``default.mixed``).
        """
        qfunc = ansatz_qfunc(self.n_qubits, self.n_layers, self.entangler, self.n_outputs, readout)
        return torch_layer(qfunc, {"weights": self.weights}, self.n_qubits, device, diff_method, shots,
                           **device_kwargs)


def ansatz_qfunc(n_qubits: int, n_layers: int, entangler: str = "cnot_all", n_outputs: int = 1,
                 readout: float = 0.0):
    """The PennyLane twin ``qfunc(inputs, weights)``: ``StatePrep(inputs)``, then ``RY`` + CNOT layers, ``<Z_j>``."""
    import pennylane as qml

    wires = list(range(n_qubits))
    pairs = ansatz_pairs(n_qubits, entangler)

    def circuit(inputs, weights):
        qml.StatePrep(inputs, wires=wires, normalize=False, validate_norm=False)
        for layer in range(n_layers):
            for j in wires:
                qml.RY(weights[layer, j], wires=j)
            for control, target in pairs:
                qml.CNOT(wires=[control, target])
        if readout > 0:
            for j in wires:
                qml.BitFlip(readout, wires=j)
        return [qml.expval(qml.PauliZ(j)) for j in range(n_outputs)]

    return circuit


__all__ = ["ANSATZ_ENTANGLERS", "RealAmplitudeCircuit", "ansatz_matrix", "ansatz_qfunc", "simulate_amplitude_ansatz"]
