"""Many independent re-uploading circuits ("heads") side by side, simulated in one batched operation.

Heads are a batch dimension of the state, never a Python loop. Two layouts, same results:
`heads_dense` (one dense unitary per head and layer; small registers) and `heads_factored` (the
shared simulator's two-qubit-group layout with a head axis; larger registers). Each has a ``"fused"`` engine
(chunked, hand-written backward) and an ``"autograd"`` engine (plain torch ops, any order of derivatives).
Exact, float32/float64, device-agnostic.
"""
from __future__ import annotations

import torch
from torch import nn

from .circuit import init_reuploading
from .export import head_to_pennylane, reuploading_qfunc
from .gates import check_entangler
from .heads_dense import simulate_dense
from .heads_factored import simulate_factored
from .shots import MeasurementMixin, measured_heads_forward
from .simulator import DEFAULT_MAX_STATE_ELEMENTS, check_circuit_size, check_engine, check_inputs

DENSE_MAX_QUBITS = 5
"""Largest register simulated with one dense unitary per layer (measured: faster up to 5 qubits; close at 6)."""

LAYOUTS = ("auto", "dense", "factored")


HEAD_ENTANGLER_NOTE = "the multi-head simulator runs 'cz_ring' and 'cnot_chain'"


def check_head_entangler(entangler: str) -> None:
    """`gates.check_entangler`, and ``cnot_ring`` refused: the per-head simulator runs the other two."""
    check_entangler(entangler)
    if entangler == "cnot_ring":
        raise ValueError(f"entangler 'cnot_ring' is not simulated per head ({HEAD_ENTANGLER_NOTE}); "
                         "use DataReuploadingCircuit for it.")


def simulate_reuploading_heads(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    entangler: str = "cz_ring",
    layout: str = "auto",
    engine: str = "fused",
    encoding_scales: torch.Tensor | None = None,
) -> torch.Tensor:
    """``<Z_j>`` of every head: H independent re-uploading circuits, each with its own weights and inputs.

    Args:
        inputs: real tensor ``(..., H, n)``: the RZ angles of head ``h`` are ``inputs[..., h, :]``.
        weights: real tensor ``(H, R + 1, K, n, 3)``: one ``DataReuploadingCircuit.shape`` weight set per head.
        entangler: ``"cz_ring"`` (PennyLane SEL with CZ, as ``DataReuploadingCircuit``) or ``"cnot_chain"``.
        layout: ``"auto"`` (dense for ``n <= DENSE_MAX_QUBITS``), ``"dense"`` or ``"factored"``; same results.
        engine: ``"fused"`` (chunked, hand-written backward; fastest, once differentiable) or ``"autograd"``
            (plain torch ops; higher-order gradients).
        encoding_scales: ``None`` (``RZ(x_j)`` at every upload) or a real tensor broadcastable to ``(R, n)``, shared
            by every head: upload ``r`` applies ``RZ(scales[r, j] * x_j)``; differentiable.

    Returns:
        real tensor ``(..., H, n)`` in the promoted dtype of inputs and weights; differentiable in inputs, weights
        and scales.
    """
    check_head_entangler(entangler)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    check_engine(engine)
    if weights.ndim != 5 or weights.shape[-1] != 3 or weights.shape[1] < 2:
        raise ValueError(f"weights must have shape (H, R+1, K, n, 3) with R >= 1, got {tuple(weights.shape)}")
    n_heads, n_qubits = weights.shape[0], weights.shape[3]
    if inputs.ndim < 2 or tuple(inputs.shape[-2:]) != (n_heads, n_qubits):
        raise ValueError(f"inputs must have shape (..., {n_heads}, {n_qubits}) (heads, qubits), "
                         f"got {tuple(inputs.shape)}")
    real = torch.promote_types(inputs.dtype, weights.dtype)
    lead = inputs.shape[:-2]
    x = inputs.reshape(-1, n_heads, n_qubits).to(real).transpose(0, 1)  # (H, B, n)
    if encoding_scales is not None:
        n_reuploads = weights.shape[1] - 1
        try:
            scales = encoding_scales.to(real).expand(n_reuploads, n_qubits)
        except RuntimeError:
            raise ValueError(f"encoding_scales must broadcast to (R, n) = ({n_reuploads}, {n_qubits}), "
                             f"got {tuple(encoding_scales.shape)}") from None
        # One angle set per upload, (H, B, R, n): autograd sums the per-upload input gradients.
        x = x.unsqueeze(2) * scales
    dense = layout == "dense" or (layout == "auto" and n_qubits <= DENSE_MAX_QUBITS)
    simulate = simulate_dense if dense else simulate_factored
    out = simulate(x, weights.to(real), entangler, engine)  # (H, B, n)
    return out.transpose(0, 1).reshape(*lead, n_heads, n_qubits)


class MultiHeadReuploadingCircuit(MeasurementMixin, nn.Module):
    """``n_heads`` independent QIREN re-uploading circuits of ``n_qubits`` each, simulated together.

    ::

        inputs[..., h, :] -> |0> -[P(W_h,1)]-RZ(x)-[P(W_h,2)]- ... -[P(W_h,R+1)]- <Z_j>   for h = 0..H-1

    ``P`` is ``n_blocks`` blocks of ``Rot`` on every qubit followed by the entangler: ``"cz_ring"`` (exactly
    PennyLane ``StronglyEntanglingLayers(imprimitive=CZ)``, as ``DataReuploadingCircuit``) or ``"cnot_chain"``
    (``CNOT(i, i+1)``, the authors' generator). Note: on 2 qubits the CZ ring is ``CZ(0,1) CZ(1,0) = I``, so 2-qubit
    ``"cz_ring"`` heads are two independent 1-qubit circuits; use ``"cnot_chain"`` to entangle them.

    Input ``(..., n_heads, n_qubits)`` real angles, output the same shape, ``<Z_j>`` of every head in ``[-1, 1]``.
    ``engine="fused"`` (default: chunked, hand-written backward) or ``"autograd"`` (higher-order gradients).

    ``encoding_scale``: upload ``r`` applies ``RZ(lambda[r, j] * x_j)`` instead of ``RZ(x_j)``, with the forms of
    ``DataReuploadingCircuit`` (a float, a list per qubit, a nested list per re-upload such as ``[[1], [3]]``, or the
    preset ``"ternary[:BASE]"``: ``BASE * 3**r``). The ``(n_reuploads, n_qubits)`` scales are one fixed buffer shared by
    every head (not trained, not per head); ``None`` (default) is the plain circuit and stores nothing.

    Args:
        n_heads: Independent circuits.
        n_qubits: Qubits per circuit.
        n_reuploads: Times each circuit uploads its input.
        n_blocks: ``Rot`` + entangler blocks per parameter layer.
        entangler: ``"cz_ring"`` or ``"cnot_chain"``.
        engine: ``"fused"`` or ``"autograd"``.
        encoding_scale: Fixed per-upload ``RZ`` scales shared by every head; ``None``: ``RZ(x)``.

    Examples:
        >>> import torch
        >>> from qiren_gen.quantum import MultiHeadReuploadingCircuit
        >>> heads = MultiHeadReuploadingCircuit(n_heads=4, n_qubits=2, entangler="cnot_chain")
        >>> heads(torch.rand(5, 4, 2)).shape  # (batch, heads, qubits)
        torch.Size([5, 4, 2])
    """

    def __init__(
        self,
        n_heads: int,
        n_qubits: int,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        entangler: str = "cz_ring",
        engine: str = "fused",
        encoding_scale: float | list | str | None = None,
    ) -> None:
        super().__init__()
        check_circuit_size(n_qubits, n_reuploads, n_blocks)
        check_head_count(n_heads)
        check_head_entangler(entangler)
        check_engine(engine)
        self.n_heads = n_heads
        init_reuploading(self, self.shape(n_heads, n_qubits, n_reuploads, n_blocks), n_reuploads, n_blocks, entangler,
                         engine, encoding_scale)  # fixed scales shared by every head

    @staticmethod
    def shape(n_heads: int, n_qubits: int, n_reuploads: int = 2, n_blocks: int = 2) -> tuple[int, int, int, int, int]:
        """Shape of ``weights``: ``(n_heads, n_reuploads + 1, n_blocks, n_qubits, 3)``."""
        return (n_heads, n_reuploads + 1, n_blocks, n_qubits, 3)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``<Z_j>`` of every head (validated: shape ``(..., H, n)``, dtype, finiteness, size)."""
        check_head_inputs(inputs, self.n_heads, self.n_qubits, self.max_state_elements)
        if self.measuring:  # shots / noise (quantum.shots): sampled or density-matrix expectations
            return measured_heads_forward(self, inputs, simulate_reuploading_heads)
        return simulate_reuploading_heads(inputs, self.weights, self.entangler, engine=self.engine,
                                          encoding_scales=self.encoding_scales)

    def extra_repr(self) -> str:
        scaled = "" if self.encoding_scales is None else f", encoding_scales={self.encoding_scales.tolist()}"
        return (
            f"n_heads={self.n_heads}, n_qubits={self.n_qubits}, n_reuploads={self.n_reuploads}, "
            f"n_blocks={self.n_blocks}, entangler={self.entangler!r}, engine={self.engine!r}{scaled}"
        )

    def qfunc(self):
        """One head as a PennyLane quantum function ``qfunc(inputs, weights)`` (all heads share the circuit and
        its encoding scales, baked in)."""
        return reuploading_qfunc(self.n_qubits, self.n_reuploads, self.n_blocks, self.entangler,
                                 scales=self.encoding_scales)

    def to_pennylane(self, head: int, device: str | object = "default.qubit", diff_method: str = "backprop",
                     shots: int | None = None, noise=None, **device_kwargs):
        """Head ``head`` as a ``qml.qnn.TorchLayer`` holding a copy of its weights (inputs ``(..., n_qubits)``);
        ``shots`` and ``noise`` as in ``DataReuploadingCircuit.to_pennylane``."""
        return head_to_pennylane(self, head, device, shots, noise, diff_method, **device_kwargs)

    def draw(self, head: int = 0, decimals: int | None = None, level: str = "device") -> str:
        """Text drawing of head ``head`` (PennyLane's ``qml.draw``) with its weights and zero inputs."""
        import pennylane as qml

        layer = self.to_pennylane(head)
        zeros = torch.zeros(self.n_qubits, dtype=self.weights.dtype)
        return qml.draw(layer.qnode, decimals=decimals, level=level)(zeros, layer.weights.detach())


def check_head_count(n_heads: int) -> None:
    """Raise ``ValueError`` unless ``n_heads`` is an int >= 1."""
    if isinstance(n_heads, bool) or not isinstance(n_heads, int):
        raise ValueError(f"n_heads must be an int, got {type(n_heads).__name__}")
    if n_heads < 1:
        raise ValueError(f"n_heads must be >= 1, got {n_heads}")


def check_head_inputs(
    inputs: torch.Tensor, n_heads: int, n_qubits: int, max_state_elements: int = DEFAULT_MAX_STATE_ELEMENTS
) -> None:
    """Raise ``ValueError`` for inputs the heads cannot encode: shape not ``(..., H, n)``, non-float, NaN/inf, too
    big."""
    if isinstance(inputs, torch.Tensor) and (inputs.ndim < 2 or tuple(inputs.shape[-2:]) != (n_heads, n_qubits)):
        raise ValueError(
            f"inputs must have shape (..., {n_heads}, {n_qubits}) (heads, qubits), got {tuple(inputs.shape)}"
        )
    check_inputs(inputs, n_qubits, max_state_elements)


__all__ = [
    "DENSE_MAX_QUBITS",
    "MultiHeadReuploadingCircuit",
    "check_head_count",
    "check_head_inputs",
    "simulate_reuploading_heads",
]
