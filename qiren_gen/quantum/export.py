"""The PennyLane twin of the re-uploading circuits, with shots and noise: the same trained circuit on any device.

One quantum-function builder (`reuploading_qfunc`) and one ``TorchLayer`` builder (`torch_layer`) serve
``DataReuploadingCircuit.to_pennylane`` / ``qfunc`` and ``MultiHeadReuploadingCircuit.to_pennylane`` / ``qfunc``.

The circuit is written gate by gate (``Rot``, ``CZ`` / ``CNOT``, ``RZ``) so that a `NoiseModel`'s
channels sit exactly where `mixed` puts them: after every gate on each of its wires
``DepolarizingChannel``, ``AmplitudeDamping``, ``PhaseDamping``; ``BitFlip`` on every wire before measurement.
Without noise the gates are those of ``StronglyEntanglingLayers(imprimitive=CZ)`` (or the CNOT variants) expanded.
"""
from __future__ import annotations

import functools
import operator

import torch
from torch import nn

from .gates import ENTANGLERS, entangler_pairs
from .noise import NoiseModel, as_noise_model
from .shots import check_shots


def reuploading_qfunc(n_qubits: int, n_reuploads: int, n_blocks: int, entangler: str = "cz_ring",
                      wires_read: list[tuple[int, ...]] | None = None, noise: NoiseModel | None = None,
                      scales: torch.Tensor | None = None, learnable_scales: bool = False):
    """The re-uploading circuit as a PennyLane quantum function ``qfunc(inputs, weights[, scales])``.

    The one PennyLane twin of every simulator in this package (``DataReuploadingCircuit``, each head of
    ``MultiHeadReuploadingCircuit``). Without noise the ring entanglers are ``StronglyEntanglingLayers`` (with ``CZ``
    or ``CNOT``), so drawings at ``level="top"`` show the template; with noise, or for ``"cnot_chain"``, the same
    gates are written one by one so the channels sit where `mixed` puts them.

    Args:
        n_qubits: Qubits (wires) of the register.
        n_reuploads: How many times the input is uploaded (``RZ`` on every wire).
        n_blocks: ``Rot`` + entangler blocks per parameter layer.
        entangler: One of ``gates.ENTANGLERS``.
        wires_read: Z strings to read (``[(0,), (0, 1)]``: ``<Z_0>`` and ``<Z_0 Z_1>``); default every ``<Z_j>``.
        noise: A ``NoiseModel`` (or its dict / float form); ``None`` is noiseless.
        scales: Fixed ``(n_reuploads, n_qubits)`` encoding scales baked in (``None``: plain ``RZ(x)``).
        learnable_scales: Take the scales as a third argument ``scales`` instead of baking them in.

    Returns:
        A function of ``(inputs, weights)`` (or ``(inputs, weights, scales)``) returning the expectations.

    Examples:
        >>> import pennylane as qml, torch
        >>> from qiren_gen.quantum.export import reuploading_qfunc
        >>> qnode = qml.QNode(reuploading_qfunc(2, 1, 1), qml.device("default.qubit", wires=2), interface="torch")
        >>> [float(v) for v in qnode(torch.zeros(2), torch.zeros(2, 1, 2, 3, dtype=torch.float64))]
        [1.0, 1.0]
    """
    import pennylane as qml

    if entangler not in ENTANGLERS:
        raise ValueError(f"entangler must be one of {ENTANGLERS}, got {entangler!r}.")
    wires_read = [(j,) for j in range(n_qubits)] if wires_read is None else wires_read
    noise = as_noise_model(noise)
    channels = _noise_channels(qml, noise)
    layer = _parameter_layer(qml, n_qubits, n_blocks, entangler, channels,
                             template=noise is None and entangler != "cnot_chain")

    def body(inputs, weights, sc):
        for r in range(n_reuploads):
            layer(weights[r])
            for j in range(n_qubits):
                qml.RZ(inputs[..., j] if sc is None else sc[r][j] * inputs[..., j], wires=j)
                channels(j)
        layer(weights[n_reuploads])
        return _readout(qml, n_qubits, wires_read, noise)

    if learnable_scales:
        def circuit(inputs, weights, scales):
            return body(inputs, weights, scales)
    else:  # fixed scales as plain floats: the circuit takes torch and NumPy arguments alike
        fixed = None if scales is None else scales.detach().to("cpu", torch.float64).expand(
            n_reuploads, n_qubits).tolist()

        def circuit(inputs, weights):
            return body(inputs, weights, fixed)
    return circuit


def _noise_channels(qml, noise: NoiseModel | None):
    """``channels(*wires)``: the noise model's gate channels after a gate on ``wires`` (nothing without noise)."""
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
    return channels


def _parameter_layer(qml, n_qubits: int, n_blocks: int, entangler: str, channels, template: bool):
    """``layer(w)``: one parameter layer (``n_blocks`` of ``Rot`` on every wire, then the entangler), as the
    ``StronglyEntanglingLayers`` template or gate by gate with ``channels`` after every gate."""
    wires = list(range(n_qubits))
    pairs = entangler_pairs(n_qubits, n_blocks, entangler)
    two_qubit = qml.CZ if entangler == "cz_ring" else qml.CNOT

    def layer(w):
        if template:
            qml.StronglyEntanglingLayers(w, wires=wires, imprimitive=two_qubit)
            return
        for block in range(n_blocks):
            for j in wires:
                qml.Rot(w[..., block, j, 0], w[..., block, j, 1], w[..., block, j, 2], wires=j)
                channels(j)
            for control, target in pairs[block]:
                two_qubit(wires=[control, target])
                channels(control, target)
    return layer


def _readout(qml, n_qubits: int, wires_read, noise: NoiseModel | None):
    """The readout: a bit flip on every wire for the noise model's readout error, then the Z-string expectations."""
    if noise is not None and noise.readout > 0:
        for j in range(n_qubits):
            qml.BitFlip(noise.readout, wires=j)
    return [qml.expval(functools.reduce(operator.matmul, [qml.PauliZ(j) for j in obs])) for obs in wires_read]


def torch_layer(qfunc, trainable: dict[str, torch.Tensor], n_qubits: int, device="default.qubit",
                diff_method: str = "backprop", shots: int | None = None, **device_kwargs):
    """``qfunc`` as a ``qml.qnn.TorchLayer`` on ``device`` holding copies of ``trainable``: the one layer builder.

    Args:
        qfunc: A quantum function of ``(inputs, **trainable)``, e.g. from `reuploading_qfunc`.
        trainable: Argument name -> tensor; each becomes a parameter of the layer (a copy).
        n_qubits: Wires of the device built from a device name.
        device: A PennyLane device name (any plugin) or a device object.
        diff_method: PennyLane's differentiation method; ``"backprop"`` turns into ``"parameter-shift"`` with shots.
        shots: ``None`` is analytic; ``N`` estimates the expectations from ``N`` samples on the device.
        **device_kwargs: Passed to ``qml.device`` with a device name.

    Returns:
        The ``qml.qnn.TorchLayer`` (its ``.qnode`` is the QNode).
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
    """A ``DataReuploadingCircuit`` as a ``TorchLayer`` on ``device`` with ``shots`` and ``noise`` (see its
    ``to_pennylane``)."""
    learnable = isinstance(circuit.encoding_scales, nn.Parameter)
    qfunc = reuploading_qfunc(circuit.n_qubits, circuit.n_reuploads, circuit.n_blocks, circuit.entangler,
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
        raise ValueError(f"head must be an int in 0..{heads.n_heads - 1}, got {head!r}.")
    qfunc = reuploading_qfunc(heads.n_qubits, heads.n_reuploads, heads.n_blocks, heads.entangler, None, noise,
                        heads.encoding_scales)
    return torch_layer(qfunc, {"weights": heads.weights[head]}, heads.n_qubits, device, diff_method, shots,
                       **device_kwargs)


__all__ = ["circuit_to_pennylane", "head_to_pennylane", "reuploading_qfunc", "torch_layer"]
