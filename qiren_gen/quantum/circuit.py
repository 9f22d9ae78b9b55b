"""``DataReuploadingCircuit``: the QIREN quantum layer as a torch module, with a PennyLane twin."""
from __future__ import annotations

import math

import torch
from torch import nn

from .export import circuit_to_pennylane, reuploading_qfunc
from .gates import ENTANGLERS, check_entangler, resolve_observables
from .shots import MeasurementMixin, measured_circuit_forward
from .simulator import (
    DEFAULT_MAX_STATE_ELEMENTS,
    MAX_QUBITS,
    check_circuit_size,
    check_engine,
    check_inputs,
    simulate_reuploading,
)


class DataReuploadingCircuit(MeasurementMixin, nn.Module):
    """The QIREN data re-uploading circuit on ``n_qubits`` qubits, simulated exactly.

    ::

        |0> -[SEL(W_1)]-RZ(x_0)-[SEL(W_2)]-RZ(x_0)- ... -[SEL(W_{R+1})]- <Z_0>
        |0> -[       ]-RZ(x_1)-[        ]-RZ(x_1)- ... -[            ]- <Z_1>
         :                                                               :

    ``SEL`` is PennyLane's ``StronglyEntanglingLayers`` with ``imprimitive=CZ`` and its default ranges: each of the
    ``n_blocks`` blocks applies ``Rot(phi, theta, omega)`` on every qubit, then ``CZ(i, (i + r_l) mod n)`` for every
    ``i`` with ``r_l = (l mod (n - 1)) + 1``. The same input ``x`` is uploaded ``n_reuploads`` times.

    Options beyond the paper (defaults are the paper's circuit; every engine supports every option):

    * ``entangler``: ``"cz_ring"`` (above), ``"cnot_ring"`` (the same template with ``CNOT``) or ``"cnot_chain"``
      (``CNOT(i, i+1)``, as in the authors' generator circuits);
    * ``observables``: ``"z"`` (every ``<Z_j>``), ``"zz"`` (every ``<Z_i Z_j>``, ``i < j``), ``"z+zz"``, or a list of
      wire lists (``[[0], [0, 1]]`` reads ``<Z_0>`` and ``<Z_0 Z_1>``): more features from the same state;
    * ``observables`` also takes ``"zzz"`` (every ``<Z_i Z_j Z_k>``) and ``"z+zz+zzz"``;
    * ``encoding_scale``: upload ``r`` applies ``RZ(lambda[r, j] * x_j)``, ``lambda`` of shape ``(n_reuploads,
      n_qubits)`` initialised from a positive float, a (nested) list (``[[2], [6]]``: one scale per re-upload) or
      the preset ``"ternary[:BASE]"`` (``BASE * 3**r``: a non-degenerate, exponentially wide spectrum); the
      encoding Hamiltonian's eigenvalues set the spectrum; ``learnable_scale=True`` trains it.

    Input ``(..., n_qubits)`` real angles; output ``(..., n_outputs)`` expectation values in ``[-1, 1]``. Works in
    float32 and float64 (the promoted dtype of input and weights), on CPU and CUDA, with autograd in both input and
    weights. Memory per sample is ``2**n_qubits`` complex amplitudes (times a few for autograd), so ``n_qubits`` is
    limited to ``1..MAX_QUBITS`` (20); beyond ~16 qubits use small batches.

    ``engine="fused"`` (default) runs a chunked simulation with a hand-written backward: fast and memory-lean but
    once differentiable. ``engine="autograd"`` uses plain torch ops and supports higher-order gradients.

    Args:
        n_qubits: Qubits of the register, ``1..MAX_QUBITS``.
        n_reuploads: Times the input is uploaded.
        n_blocks: ``Rot`` + entangler blocks per parameter layer.
        engine: ``"fused"`` or ``"autograd"``.
        entangler: One of ``qiren_gen.quantum.ENTANGLERS``.
        observables: ``"z"``, ``"zz"``, ``"z+zz"``, ``"zzz"``, ``"z+zz+zzz"`` or a list of wire lists.
        encoding_scale: Per-upload ``RZ`` scales (a float, lists, or ``"ternary[:BASE]"``); ``None``: ``RZ(x)``.
        learnable_scale: Train the encoding scales.

    Examples:
        >>> import torch
        >>> from qiren_gen.quantum import DataReuploadingCircuit
        >>> circuit = DataReuploadingCircuit(n_qubits=3)
        >>> x = torch.rand(5, 3)
        >>> out = circuit(x)
        >>> out.shape, bool(out.abs().max() <= 1)
        (torch.Size([5, 3]), True)
        >>> twin = circuit.to_pennylane()  # the same circuit and weights as a PennyLane TorchLayer
        >>> bool(torch.allclose(twin(x).float(), out, atol=1e-5))
        True
    """

    def __init__(
        self,
        n_qubits: int,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        engine: str = "fused",
        entangler: str = "cz_ring",
        observables: str | list = "z",
        encoding_scale: float | list | str | None = None,
        learnable_scale: bool = False,
    ) -> None:
        super().__init__()
        check_circuit_size(n_qubits, n_reuploads, n_blocks)
        check_engine(engine)
        check_entangler(entangler)
        self.observables = observables
        self.wires_read = resolve_observables(observables, n_qubits)
        self.n_outputs = len(self.wires_read)
        init_reuploading(self, self.shape(n_qubits, n_reuploads, n_blocks), n_reuploads, n_blocks, entangler, engine,
                         encoding_scale, learnable_scale)

    @staticmethod
    def shape(n_qubits: int, n_reuploads: int = 2, n_blocks: int = 2) -> tuple[int, int, int, int]:
        """Shape of ``weights``: ``(n_reuploads + 1, n_blocks, n_qubits, 3)``, like
        ``StronglyEntanglingLayers.shape``."""
        return (n_reuploads + 1, n_blocks, n_qubits, 3)

    def simulator_observables(self) -> list[tuple[int, ...]] | None:
        """Observables for the simulator: ``None`` for the paper's every-``<Z_j>`` readout (its fast path)."""
        return None if self.wires_read == [(j,) for j in range(self.n_qubits)] else self.wires_read

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Expectation values after encoding ``inputs`` (validated: shape, dtype, finiteness, size)."""
        check_inputs(inputs, self.n_qubits, self.max_state_elements)
        if self.measuring:  # shots / noise (quantum.shots): sampled or density-matrix expectations
            return measured_circuit_forward(self, inputs, simulate_reuploading)
        return simulate_reuploading(inputs, self.weights, engine=self.engine, entangler=self.entangler,
                                    observables=self.simulator_observables(), encoding_scales=self.encoding_scales)

    def extra_repr(self) -> str:
        extra = "" if self.entangler == "cz_ring" else f", entangler={self.entangler!r}"
        extra += "" if self.observables == "z" else f", observables={self.observables!r}"
        if self.encoding_scales is not None:
            extra += f", encoding_scales={tuple(self.encoding_scales.shape)}"
            extra += " (learnable)" if isinstance(self.encoding_scales, nn.Parameter) else " (fixed)"
        return (f"n_qubits={self.n_qubits}, n_reuploads={self.n_reuploads}, n_blocks={self.n_blocks}, "
                f"engine={self.engine!r}{extra}")

    def qfunc(self):
        """The circuit as a PennyLane quantum function ``qfunc(inputs, weights[, scales])`` returning expectations.

        Learnable encoding scales are a third trainable argument ``scales``; fixed ones are baked in.
        """
        learnable = isinstance(self.encoding_scales, nn.Parameter)
        return reuploading_qfunc(self.n_qubits, self.n_reuploads, self.n_blocks, self.entangler, self.wires_read,
                                 None, self.encoding_scales, learnable)

    def to_pennylane(self, device: str | object = "default.qubit", diff_method: str = "backprop",
                     shots: int | None = None, noise=None, **device_kwargs):
        """The identical circuit as a ``qml.qnn.TorchLayer`` holding a copy of these weights (and learnable scales).

        ``device`` is a PennyLane device name (any plugin: noise models, hardware) or a device object. The layer's
        ``.qnode`` is the underlying QNode. Use ``diff_method="parameter-shift"`` on devices without backprop.
        ``shots=N`` samples on the device; ``noise`` (a ``quantum.noise.NoiseModel``, dict or float) inserts the
        channels where the density-matrix simulator puts them (use a mixed-state device such as ``default.mixed``).
        """
        return circuit_to_pennylane(self, device, shots, noise, diff_method, **device_kwargs)

    def draw(self, decimals: int | None = None, level: str = "device") -> str:
        """Text drawing (PennyLane's ``qml.draw``) with the current weights and zero inputs.

        ``level="device"`` expands the templates into the Rot / CZ / RZ gates; ``level="top"`` keeps them as boxes.
        """
        import pennylane as qml

        dev = qml.device("default.qubit", wires=self.n_qubits)
        qnode = qml.QNode(self.qfunc(), dev, interface="torch")
        zeros = torch.zeros(self.n_qubits, dtype=self.weights.dtype)
        args = [zeros, self.weights.detach()]
        if isinstance(self.encoding_scales, nn.Parameter):
            args.append(self.encoding_scales.detach())
        return qml.draw(qnode, decimals=decimals, level=level)(*args)


def init_reuploading(module: nn.Module, weight_shape: tuple[int, ...], n_reuploads: int, n_blocks: int, entangler: str,
                     engine: str, encoding_scale: float | list | str | None, learnable_scale: bool = False) -> None:
    """The state every re-uploading module holds (one circuit or many heads, validated by the caller): its sizes,
    entangler and engine, weights of ``weight_shape`` (last axes ``(n_qubits, 3)``) uniform in ``[0, 2 pi)`` as
    PennyLane's ``TorchLayer`` initialises template weights, and the encoding scales: ``None`` (not a buffer: state
    dicts of unscaled circuits are unchanged), a buffer, or a parameter when ``learnable_scale``."""
    n_qubits = weight_shape[-2]
    module.engine = engine
    module.n_qubits = n_qubits
    module.n_reuploads = n_reuploads
    module.n_blocks = n_blocks
    module.entangler = entangler
    module.max_state_elements = DEFAULT_MAX_STATE_ELEMENTS
    module.weights = nn.Parameter(torch.rand(weight_shape) * (2 * math.pi))
    scales = encoding_scales(encoding_scale, n_reuploads, n_qubits, learnable_scale)
    if scales is None:
        module.encoding_scales = None
    elif learnable_scale:
        module.encoding_scales = nn.Parameter(scales)
    else:
        module.register_buffer("encoding_scales", scales)


TERNARY = "ternary"
"""Preset ``encoding_scale="ternary"`` (or ``"ternary:BASE"``): upload ``r`` encodes ``RZ(BASE * 3**r * x)``."""


def ternary_scales(base: float, n_reuploads: int) -> list[list[float]]:
    """Per-re-upload scales ``base * 3**r`` as a ``(n_reuploads, 1)`` nested list (broadcast over qubits).

    Ternary encodings make the re-uploading spectrum's frequencies non-degenerate: the sums of ``+-3**r / 2`` are all
    distinct, so ``R`` uploads reach ``(3**R - 1) / 2`` frequencies per qubit instead of ``R`` (Shin, Teo, Jeong 2023).
    """
    return [[base * 3.0**r] for r in range(n_reuploads)]


def _parse_preset(scale: str, n_reuploads: int) -> list[list[float]]:
    name, _, base = scale.partition(":")
    if name.strip() != TERNARY:
        raise ValueError(f"encoding_scale: unknown preset {scale!r}; use 'ternary' or 'ternary:BASE' "
                         "(e.g. 'ternary:1.5')")
    try:
        value = float(base) if base.strip() else 1.0
    except ValueError:
        raise ValueError(f"encoding_scale: the base of {scale!r} is not a number") from None
    return ternary_scales(value, n_reuploads)


def encoding_scales(scale: float | list | str | None, n_reuploads: int, n_qubits: int,
                    learnable: bool = False) -> torch.Tensor | None:
    """The ``(n_reuploads, n_qubits)`` encoding scales; ``None`` keeps plain ``RZ(x)``.

    ``scale`` is a float (every upload, every qubit), a list of ``n_qubits`` floats (per qubit), a nested list of
    ``n_reuploads`` lists of 1 or ``n_qubits`` floats (per re-upload: ``[[2], [6]]``), or the preset ``"ternary"`` /
    ``"ternary:BASE"`` (``BASE * 3**r`` at upload ``r``). ``learnable=True`` with no scale starts from 1 (the paper's
    circuit, then trained). Scales must be finite and > 0.
    """
    if scale is None:
        return torch.ones(n_reuploads, n_qubits) if learnable else None
    if isinstance(scale, str):
        scale = _parse_preset(scale, n_reuploads)
    try:
        values = torch.as_tensor(scale, dtype=torch.float32)
        values = values.expand(n_reuploads, n_qubits).clone()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"encoding_scale must be a float, a list of {n_qubits} floats (one per qubit), "
                         f"{n_reuploads} lists of 1 or {n_qubits} floats (one per re-upload) or 'ternary[:BASE]', "
                         f"got {scale!r}") from None
    if not bool(torch.isfinite(values).all()) or bool((values <= 0).any()):
        raise ValueError(f"encoding_scale must be finite and > 0, got {scale!r}")
    return values


__all__ = ["DataReuploadingCircuit", "ENTANGLERS", "MAX_QUBITS", "TERNARY", "encoding_scales", "init_reuploading",
           "ternary_scales"]
