"""PennyLane export of the re-uploading circuits with shots and noise: the same trained circuit on any device.

The circuit is written gate by gate (``Rot``, ``CZ`` / ``CNOT``, ``RZ``) so that a :class:`~.noise.NoiseModel`'s
channels sit exactly where :mod:`.mixed` puts them: after every gate on each of its wires
``DepolarizingChannel``, ``AmplitudeDamping``, ``PhaseDamping``; ``BitFlip`` on every wire before measurement.
Without noise the gates are those of ``StronglyEntanglingLayers(imprimitive=CZ)`` (or the CNOT variants) expanded.
"""
from __future__ import annotations

import functools
import operator

import torch
from torch import nn

from .gates import entangler_pairs
from .noise import NoiseModel, as_noise_model
from .shots import check_shots


def noisy_qfunc(n_qubits: int, n_reuploads: int, n_blocks: int, entangler: str = "cz_ring",
                wires_read: list[tuple[int, ...]] | None = None, noise: NoiseModel | None = None,
                scales: torch.Tensor | None = None, learnable_scales: bool = False):
    """PennyLane quantum function ``qfunc(inputs, weights[, scales])`` of one re-uploading circuit with ``noise``.

    ``scales``: fixed ``(R, n)`` encoding scales baked in (``None``: ``RZ(x)``); ``learnable_scales=True`` makes them
    a third argument instead. Returns the expectations of the Z strings ``wires_read`` (default every ``<Z_j>``).
    """
    import pennylane as qml

    wires = list(range(n_qubits))
    wires_read = [(j,) for j in wires] if wires_read is None else wires_read
    pairs = entangler_pairs(n_qubits, n_blocks, entangler)
    two_qubit = qml.CZ if entangler == "cz_ring" else qml.CNOT
    noise = as_noise_model(noise)

    def channels(*on):
        if noise is None:
            return
        for w in on:
            if noise.depolarizing > 0:
                qml.DepolarizingChannel(noise.depolarizing, wires=w)
            if noise.amplitude_damping > 0:
                qml.AmplitudeDamping(noise.amplitude_damping, wires=w)
            if noise.dephasing > 0:
                qml.PhaseDamping(noise.dephasing, wires=w)

    def layer(w):
        for block in range(n_blocks):
            for j in wires:
                qml.Rot(w[..., block, j, 0], w[..., block, j, 1], w[..., block, j, 2], wires=j)
                channels(j)
            for control, target in pairs[block]:
                two_qubit(wires=[control, target])
                channels(control, target)

    def body(inputs, weights, sc):
        for r in range(n_reuploads):
            layer(weights[r])
            for j in wires:
                qml.RZ(inputs[..., j] if sc is None else sc[r, j] * inputs[..., j], wires=j)
                channels(j)
        layer(weights[n_reuploads])
        if noise is not None and noise.readout > 0:
            for j in wires:
                qml.BitFlip(noise.readout, wires=j)
        return [qml.expval(functools.reduce(operator.matmul, [qml.PauliZ(j) for j in obs])) for obs in wires_read]

    if learnable_scales:
        def circuit(inputs, weights, scales):
            return body(inputs, weights, scales)
    else:
        fixed = None if scales is None else scales.detach().clone()

        def circuit(inputs, weights):
            return body(inputs, weights, None if fixed is None else fixed.to(weights.dtype))
    return circuit


def torch_layer(qfunc, trainable: dict[str, torch.Tensor], n_qubits: int, device="default.qubit",
                diff_method: str = "backprop", shots: int | None = None, **device_kwargs):
    """``qfunc`` as a ``qml.qnn.TorchLayer`` on ``device`` (name or object) holding copies of ``trainable``.

    ``shots=None`` is analytic; ``shots=N`` estimates the expectations from N samples on the device.
    """
    import pennylane as qml

    shots = check_shots(shots)
    dev = qml.device(device, wires=n_qubits, **device_kwargs) if isinstance(device, str) else device
    if shots is not None and diff_method == "backprop":
        diff_method = "parameter-shift"  # backprop needs analytic expectations
    kwargs = {} if shots is None else {"shots": shots}
    qnode = qml.QNode(qfunc, dev, interface="torch", diff_method=diff_method, **kwargs)
    layer = qml.qnn.TorchLayer(qnode, weight_shapes={k: tuple(v.shape) for k, v in trainable.items()})
    for name, value in trainable.items():
        copy = nn.Parameter(value.detach().clone())
        layer.qnode_weights[name] = copy  # the dict TorchLayer.forward reads
        layer.register_parameter(name, copy)
    return layer


def circuit_to_pennylane(circuit, device="default.qubit", shots: int | None = None, noise=None,
                         diff_method: str = "backprop", **device_kwargs):
    """A ``DataReuploadingCircuit`` as a ``TorchLayer`` on ``device`` with ``shots`` and ``noise``."""
    learnable = isinstance(circuit.encoding_scales, nn.Parameter)
    qfunc = noisy_qfunc(circuit.n_qubits, circuit.n_reuploads, circuit.n_blocks, circuit.entangler,
                        circuit.wires_read, noise, circuit.encoding_scales, learnable)
    trainable = {"weights": circuit.weights}
    if learnable:
        trainable["scales"] = circuit.encoding_scales
    return torch_layer(qfunc, trainable, circuit.n_qubits, device, diff_method, shots, **device_kwargs)


def head_to_pennylane(heads, head: int, device="default.qubit", shots: int | None = None, noise=None,
                      diff_method: str = "backprop", **device_kwargs):
    """Head ``head`` of a ``MultiHeadReuploadingCircuit`` as a ``TorchLayer`` (inputs ``(..., n_qubits)``), with the
    heads' fixed encoding scales baked in."""
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < heads.n_heads:
        raise ValueError(f"head must be an int in 0..{heads.n_heads - 1}, got {head!r}")
    qfunc = noisy_qfunc(heads.n_qubits, heads.n_reuploads, heads.n_blocks, heads.entangler, None, noise,
                        heads.encoding_scales)
    return torch_layer(qfunc, {"weights": heads.weights[head]}, heads.n_qubits, device, diff_method, shots,
                       **device_kwargs)


__all__ = ["circuit_to_pennylane", "head_to_pennylane", "noisy_qfunc", "torch_layer"]
