"""Many independent re-uploading circuits ("heads") side by side, simulated in one batched operation.

Heads are a batch dimension of the state, never a Python loop. Two layouts, same results:

* ``"dense"`` (small registers, ``n <= DENSE_MAX_QUBITS``): the input-independent part of each parameter layer --
  ``K`` blocks of ``Rot`` on every qubit and an entangler -- is multiplied out into one ``2^n x 2^n`` unitary per
  head and layer, so a layer costs one ``bmm`` over the head axis on a ``(H, B, 2^n)`` state;
* ``"factored"`` (larger registers): the two-qubit-group layout of the shared simulator with a head axis,
  ``(H, d1, B, d2)``; each block is two GEMMs per head and a diagonal (CZ ring) or a gather (CNOT chain).

Plain torch ops: differentiable (to any order) in inputs and weights, float32/float64, any device.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .circuit import ENTANGLERS, pennylane_layer, reuploading_qfunc
from .gates import cnot_chain_sources, cz_ring_signs, entangler_ranges, kron_chain, rot_matrices, z_signs
from .per_sample import _apply_blocks
from .simulator import DEFAULT_MAX_STATE_ELEMENTS, check_circuit_size, check_inputs, split_qubits

DENSE_MAX_QUBITS = 4
"""Largest register simulated with one dense unitary per layer: beyond it the per-block factors do less work."""

LAYOUTS = ("auto", "dense", "factored")


def _check_entangler(entangler: str) -> None:
    if entangler not in ENTANGLERS:
        raise ValueError(f"entangler must be one of {ENTANGLERS}, got {entangler!r}")


def _phase(angle: torch.Tensor) -> torch.Tensor:
    """``exp(-i angle)`` built from cos and sin (no complex autograd quirks)."""
    return torch.complex(torch.cos(angle), -torch.sin(angle))


def _layer_unitaries(weights: torch.Tensor, entangler: str) -> torch.Tensor:
    """One dense unitary per head and parameter layer, ``(H, R+1, D, D)``: the product of the layer's K blocks."""
    n_qubits, n_blocks = weights.shape[-2], weights.shape[-3]
    device = weights.device
    blocks = kron_chain(rot_matrices(weights))  # (H, R+1, K, D, D)
    if entangler == "cz_ring":
        signs = torch.stack([cz_ring_signs(n_qubits, r, device=device) for r in entangler_ranges(n_qubits, n_blocks)])
        blocks = blocks * signs.to(blocks.real.dtype)[:, :, None]  # diag(signs) @ block: scale the rows
    else:
        blocks = blocks[..., cnot_chain_sources(n_qubits, device=device), :]  # permutation @ block: gather the rows
    unitary = blocks[:, :, 0]
    for block in range(1, n_blocks):
        unitary = blocks[:, :, block] @ unitary
    return unitary


def _simulate_dense(x: torch.Tensor, weights: torch.Tensor, entangler: str) -> torch.Tensor:
    """Heads as the batch of ``bmm``: x ``(H, B, n)`` -> ``(H, B, n)``."""
    n_qubits = x.shape[-1]
    unitaries = _layer_unitaries(weights, entangler)  # (H, R+1, D, D)
    signs = z_signs(n_qubits, x.dtype, x.device)  # (D, n)
    phase = _phase((x @ signs.T) / 2)  # RZ on every qubit: (H, B, D)
    state = unitaries[:, 0, :, :1].transpose(1, 2) * phase  # first layer acts on |0...0>: its first column
    for layer in range(1, unitaries.shape[1]):
        if layer > 1:
            state = state * phase
        state = state @ unitaries[:, layer].transpose(1, 2)
    prob = torch.view_as_real(state).square().sum(-1)  # (H, B, D)
    return prob @ signs


def _chain_gather(state: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Apply the CNOT chain to an ``(H, d1, B, d2)`` state: a gather of rows, then a row-dependent gather of columns."""
    state = state.index_select(1, rows)
    return torch.gather(state, 3, cols.view(1, cols.shape[0], 1, cols.shape[1]).expand_as(state))


def _simulate_factored(x: torch.Tensor, weights: torch.Tensor, entangler: str) -> torch.Tensor:
    """The two-group layout with a head axis: x ``(H, B, n)`` -> ``(H, B, n)``."""
    n_heads, _, n_qubits = x.shape
    n_layers, n_blocks = weights.shape[1], weights.shape[2]
    real, device = x.dtype, x.device
    first, second = split_qubits(n_qubits)
    d1, d2 = 2**first, 2**second
    rots = rot_matrices(weights)  # (H, R+1, K, n, 2, 2)
    a = kron_chain(rots[..., :first, :, :])  # (H, R+1, K, d1, d1)
    b = kron_chain(rots[..., first:, :, :])  # (H, R+1, K, d2, d2)
    if entangler == "cz_ring":
        signs = [cz_ring_signs(n_qubits, r, device=device).to(real).reshape(d1, 1, d2)
                 for r in entangler_ranges(n_qubits, n_blocks)]

        def entangle(state, block, last):
            # The final CZ ring is diagonal, so it cannot change the measured probabilities.
            return state if last else state * signs[block]
    else:
        sources = cnot_chain_sources(n_qubits, device=device).reshape(d1, d2)
        rows, cols = sources[:, 0] // d2, sources % d2  # the chain's source row depends on the row only

        def entangle(state, block, last):
            return _chain_gather(state, rows, cols)

    s1, s2 = z_signs(first, real, device), z_signs(second, real, device)
    p1 = _phase((x[..., :first] @ s1.T) / 2).transpose(1, 2).unsqueeze(-1)  # (H, d1, B, 1)
    p2 = _phase((x[..., first:] @ s2.T) / 2).unsqueeze(1)  # (H, 1, B, d2)
    state = torch.zeros(n_heads, d1, 1, d2, dtype=a.dtype, device=device)
    state[:, 0, 0, 0] = 1
    for layer in range(n_layers):
        if layer > 0:
            state = state * p1 * p2
        for block in range(n_blocks):
            state = _apply_blocks(state, a[:, layer, block], b[:, layer, block], None)
            state = entangle(state, block, layer == n_layers - 1 and block == n_blocks - 1)
    prob = torch.view_as_real(state).square().sum(-1)  # (H, d1, B, d2)
    return torch.cat([prob.sum(3).transpose(1, 2) @ s1, prob.sum(1) @ s2], dim=-1)


def simulate_reuploading_heads(
    inputs: torch.Tensor, weights: torch.Tensor, entangler: str = "cz_ring", layout: str = "auto"
) -> torch.Tensor:
    """``<Z_j>`` of every head: H independent re-uploading circuits, each with its own weights and inputs.

    Args:
        inputs: real tensor ``(..., H, n)``: the RZ angles of head ``h`` are ``inputs[..., h, :]``.
        weights: real tensor ``(H, R + 1, K, n, 3)``: one ``DataReuploadingCircuit.shape`` weight set per head.
        entangler: ``"cz_ring"`` (PennyLane SEL with CZ, as ``DataReuploadingCircuit``) or ``"cnot_chain"``.
        layout: ``"auto"`` (dense for ``n <= DENSE_MAX_QUBITS``), ``"dense"`` or ``"factored"``; same results.

    Returns:
        real tensor ``(..., H, n)`` in the promoted dtype of inputs and weights; differentiable in both.
    """
    _check_entangler(entangler)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if weights.ndim != 5 or weights.shape[-1] != 3 or weights.shape[1] < 2:
        raise ValueError(f"weights must have shape (H, R+1, K, n, 3) with R >= 1, got {tuple(weights.shape)}")
    n_heads, n_qubits = weights.shape[0], weights.shape[3]
    if inputs.ndim < 2 or tuple(inputs.shape[-2:]) != (n_heads, n_qubits):
        raise ValueError(f"inputs must have shape (..., {n_heads}, {n_qubits}) (heads, qubits), got {tuple(inputs.shape)}")
    real = torch.promote_types(inputs.dtype, weights.dtype)
    lead = inputs.shape[:-2]
    x = inputs.reshape(-1, n_heads, n_qubits).to(real).transpose(0, 1)  # (H, B, n)
    dense = layout == "dense" or (layout == "auto" and n_qubits <= DENSE_MAX_QUBITS)
    simulate = _simulate_dense if dense else _simulate_factored
    out = simulate(x, weights.to(real), entangler)  # (H, B, n)
    return out.transpose(0, 1).reshape(*lead, n_heads, n_qubits)


class MultiHeadReuploadingCircuit(nn.Module):
    r"""``n_heads`` independent QIREN re-uploading circuits of ``n_qubits`` each, simulated together.

    ::

        inputs[..., h, :] -> |0> -[P(W_h,1)]-RZ(x)-[P(W_h,2)]- ... -[P(W_h,R+1)]- <Z_j>   for h = 0..H-1

    ``P`` is ``n_blocks`` blocks of ``Rot`` on every qubit followed by the entangler: ``"cz_ring"`` (exactly
    PennyLane ``StronglyEntanglingLayers(imprimitive=CZ)``, as ``DataReuploadingCircuit``) or ``"cnot_chain"``
    (``CNOT(i, i+1)``, the authors' generator). Note: on 2 qubits the CZ ring is ``CZ(0,1) CZ(1,0) = I``, so 2-qubit
    ``"cz_ring"`` heads are two independent 1-qubit circuits; use ``"cnot_chain"`` to entangle them.

    Input ``(..., n_heads, n_qubits)`` real angles, output the same shape, ``<Z_j>`` of every head in ``[-1, 1]``.
    """

    def __init__(
        self, n_heads: int, n_qubits: int, n_reuploads: int = 2, n_blocks: int = 2, entangler: str = "cz_ring"
    ) -> None:
        super().__init__()
        check_circuit_size(n_qubits, n_reuploads, n_blocks)
        check_head_count(n_heads)
        _check_entangler(entangler)
        self.n_heads = n_heads
        self.n_qubits = n_qubits
        self.n_reuploads = n_reuploads
        self.n_blocks = n_blocks
        self.entangler = entangler
        self.max_state_elements = DEFAULT_MAX_STATE_ELEMENTS
        # Like DataReuploadingCircuit (PennyLane's TorchLayer): uniform in [0, 2 pi).
        self.weights = nn.Parameter(torch.rand(self.shape(n_heads, n_qubits, n_reuploads, n_blocks)) * (2 * math.pi))

    @staticmethod
    def shape(n_heads: int, n_qubits: int, n_reuploads: int = 2, n_blocks: int = 2) -> tuple[int, int, int, int, int]:
        """Shape of ``weights``: ``(n_heads, n_reuploads + 1, n_blocks, n_qubits, 3)``."""
        return (n_heads, n_reuploads + 1, n_blocks, n_qubits, 3)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``<Z_j>`` of every head (validated: shape ``(..., H, n)``, dtype, finiteness, size)."""
        check_head_inputs(inputs, self.n_heads, self.n_qubits, self.max_state_elements)
        return simulate_reuploading_heads(inputs, self.weights, self.entangler)

    def extra_repr(self) -> str:
        return (
            f"n_heads={self.n_heads}, n_qubits={self.n_qubits}, n_reuploads={self.n_reuploads}, "
            f"n_blocks={self.n_blocks}, entangler={self.entangler!r}"
        )

    def qfunc(self):
        """One head as a PennyLane quantum function ``qfunc(inputs, weights)`` (all heads share the circuit)."""
        return reuploading_qfunc(self.n_qubits, self.n_reuploads, self.entangler)

    def to_pennylane(self, head: int, device: str | object = "default.qubit", diff_method: str = "backprop",
                     **device_kwargs):
        """Head ``head`` as a ``qml.qnn.TorchLayer`` holding a copy of its weights (inputs ``(..., n_qubits)``)."""
        if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < self.n_heads:
            raise ValueError(f"head must be an int in 0..{self.n_heads - 1}, got {head!r}")
        return pennylane_layer(self.qfunc(), self.weights[head], self.n_qubits, device, diff_method, **device_kwargs)


def check_head_count(n_heads: int) -> None:
    """Raise ``ValueError`` unless ``n_heads`` is an int >= 1."""
    if isinstance(n_heads, bool) or not isinstance(n_heads, int):
        raise ValueError(f"n_heads must be an int, got {type(n_heads).__name__}")
    if n_heads < 1:
        raise ValueError(f"n_heads must be >= 1, got {n_heads}")


def check_head_inputs(
    inputs: torch.Tensor, n_heads: int, n_qubits: int, max_state_elements: int = DEFAULT_MAX_STATE_ELEMENTS
) -> None:
    """Raise ``ValueError`` for inputs the heads cannot encode: shape not ``(..., H, n)``, non-float, NaN/inf, too big."""
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
