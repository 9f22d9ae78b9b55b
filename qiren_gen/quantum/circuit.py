"""``DataReuploadingCircuit``: the QIREN quantum layer as a torch module, with a PennyLane twin."""
from __future__ import annotations

import math

import torch
from torch import nn

from .simulator import (
    DEFAULT_MAX_STATE_ELEMENTS,
    ENGINES,
    MAX_QUBITS,
    check_circuit_size,
    check_inputs,
    simulate_reuploading,
)


class DataReuploadingCircuit(nn.Module):
    r"""The QIREN data re-uploading circuit on ``n_qubits`` qubits, simulated exactly.

    ::

        |0> -[SEL(W_1)]-RZ(x_0)-[SEL(W_2)]-RZ(x_0)- ... -[SEL(W_{R+1})]- <Z_0>
        |0> -[       ]-RZ(x_1)-[        ]-RZ(x_1)- ... -[            ]- <Z_1>
         :                                                               :

    ``SEL`` is PennyLane's ``StronglyEntanglingLayers`` with ``imprimitive=CZ`` and its default ranges: each of the
    ``n_blocks`` blocks applies ``Rot(phi, theta, omega)`` on every qubit, then ``CZ(i, (i + r_l) mod n)`` for every
    ``i`` with ``r_l = (l mod (n - 1)) + 1``. The same input ``x`` is uploaded ``n_reuploads`` times.

    Input ``(..., n_qubits)`` real angles; output ``(..., n_qubits)`` expectation values in ``[-1, 1]``. Works in
    float32 and float64 (the promoted dtype of input and weights), on CPU and CUDA, with autograd in both input and
    weights. Memory per sample is ``2**n_qubits`` complex amplitudes (times a few for autograd), so ``n_qubits`` is
    limited to ``1..MAX_QUBITS`` (20); beyond ~16 qubits use small batches.

    ``engine="fused"`` (default) runs a chunked simulation with a hand-written backward: fast and memory-lean but
    once differentiable. ``engine="autograd"`` uses plain torch ops and supports higher-order gradients.
    """

    def __init__(self, n_qubits: int, n_reuploads: int = 2, n_blocks: int = 2, engine: str = "fused") -> None:
        super().__init__()
        check_circuit_size(n_qubits, n_reuploads, n_blocks)
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.engine = engine
        self.n_qubits = n_qubits
        self.n_reuploads = n_reuploads
        self.n_blocks = n_blocks
        self.max_state_elements = DEFAULT_MAX_STATE_ELEMENTS
        # PennyLane's TorchLayer initialises template weights uniformly in [0, 2 pi); so do we.
        self.weights = nn.Parameter(torch.rand(self.shape(n_qubits, n_reuploads, n_blocks)) * (2 * math.pi))

    @staticmethod
    def shape(n_qubits: int, n_reuploads: int = 2, n_blocks: int = 2) -> tuple[int, int, int, int]:
        """Shape of ``weights``: ``(n_reuploads + 1, n_blocks, n_qubits, 3)``, like ``StronglyEntanglingLayers.shape``."""
        return (n_reuploads + 1, n_blocks, n_qubits, 3)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``<Z_j>`` for every qubit after encoding ``inputs`` (validated: shape, dtype, finiteness, size)."""
        check_inputs(inputs, self.n_qubits, self.max_state_elements)
        return simulate_reuploading(inputs, self.weights, engine=self.engine)

    def extra_repr(self) -> str:
        return (
            f"n_qubits={self.n_qubits}, n_reuploads={self.n_reuploads}, n_blocks={self.n_blocks}, engine={self.engine!r}"
        )

    def qfunc(self):
        """The circuit as a PennyLane quantum function ``qfunc(inputs, weights)`` returning ``<Z_j>`` measurements."""
        return reuploading_qfunc(self.n_qubits, self.n_reuploads)

    def to_pennylane(self, device: str | object = "default.qubit", diff_method: str = "backprop", **device_kwargs):
        """The identical circuit as a ``qml.qnn.TorchLayer`` holding a copy of these weights.

        ``device`` is a PennyLane device name (any plugin: noise models, hardware) or a device object. The layer's
        ``.qnode`` is the underlying QNode. Use ``diff_method="parameter-shift"`` on devices without backprop.
        """
        return pennylane_layer(self.qfunc(), self.weights, self.n_qubits, device, diff_method, **device_kwargs)

    def draw(self, decimals: int | None = None, level: str = "device") -> str:
        """Text drawing (PennyLane's ``qml.draw``) with the current weights and zero inputs.

        ``level="device"`` expands the templates into the Rot / CZ / RZ gates; ``level="top"`` keeps them as boxes.
        """
        import pennylane as qml

        dev = qml.device("default.qubit", wires=self.n_qubits)
        qnode = qml.QNode(self.qfunc(), dev, interface="torch")
        zeros = torch.zeros(self.n_qubits, dtype=self.weights.dtype)
        return qml.draw(qnode, decimals=decimals, level=level)(zeros, self.weights.detach())


ENTANGLERS = ("cz_ring", "cnot_chain")
"""Entangling patterns after each block of rotations: PennyLane SEL's CZ ring, or the authors' generator's CNOT chain."""


def reuploading_qfunc(n_qubits: int, n_reuploads: int, entangler: str = "cz_ring"):
    """The re-uploading circuit as a PennyLane quantum function ``qfunc(inputs, weights)`` returning ``<Z_j>``.

    ``"cz_ring"`` is ``StronglyEntanglingLayers(imprimitive=CZ)`` with default ranges; ``"cnot_chain"`` is, per block,
    ``Rot`` on every qubit then ``CNOT(i, i + 1)`` for ``i = 0..n-2`` (the authors' generator, U3 up to a global phase).
    """
    import pennylane as qml

    if entangler not in ENTANGLERS:
        raise ValueError(f"entangler must be one of {ENTANGLERS}, got {entangler!r}")
    wires = list(range(n_qubits))

    def parameter_layer(w):
        if entangler == "cz_ring":
            qml.StronglyEntanglingLayers(w, wires=wires, imprimitive=qml.CZ)
            return
        for block in range(w.shape[0]):
            for j in wires:
                qml.Rot(w[block, j, 0], w[block, j, 1], w[block, j, 2], wires=j)
            for j in wires[:-1]:
                qml.CNOT(wires=[j, j + 1])

    def circuit(inputs, weights):
        for r in range(n_reuploads):
            parameter_layer(weights[r])
            for j in wires:
                qml.RZ(inputs[..., j], wires=j)
        parameter_layer(weights[n_reuploads])
        return [qml.expval(qml.PauliZ(j)) for j in wires]

    return circuit


def pennylane_layer(qfunc, weights: torch.Tensor, n_qubits: int, device: str | object = "default.qubit",
                    diff_method: str = "backprop", **device_kwargs):
    """``qfunc`` as a ``qml.qnn.TorchLayer`` on ``device`` (name or device object) holding a copy of ``weights``."""
    import pennylane as qml

    dev = qml.device(device, wires=n_qubits, **device_kwargs) if isinstance(device, str) else device
    qnode = qml.QNode(qfunc, dev, interface="torch", diff_method=diff_method)
    layer = qml.qnn.TorchLayer(qnode, weight_shapes={"weights": tuple(weights.shape)})
    copy = nn.Parameter(weights.detach().clone())
    layer.qnode_weights["weights"] = copy  # the dict TorchLayer.forward reads
    layer.register_parameter("weights", copy)
    return layer


__all__ = ["DataReuploadingCircuit", "ENTANGLERS", "MAX_QUBITS", "pennylane_layer", "reuploading_qfunc"]
