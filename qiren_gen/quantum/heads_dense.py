"""Many heads in the dense layout: one ``2^n x 2^n`` unitary per head and parameter layer (small registers).

The input-independent part of a parameter layer (``K`` blocks of ``Rot`` on every qubit and an entangler) is
multiplied out once per call, so a layer costs one ``bmm`` over the head axis on an ``(H, B, 2^n)`` state. Per head
``h`` the circuit is ``z_1 = v1_h * p``, then ``z <- (z * p) U_{h,l}^T`` for the later layers, read out as
``|z|^2 @ S``, where ``p = exp(-i (x_h S^T) / 2)`` is the RZ encoding and ``U_{h,l}`` the dense layer unitaries.
Angles ``x`` are ``(H, B, n)`` (the same phase at every upload: computed once) or ``(H, B, R, n)`` (one per upload,
e.g. scaled encodings: the phase of layer ``l`` is built from ``x[:, :, l]``).
The fused engine: autograd over that keeps every ``(H, B, 2^n)`` intermediate alive and streams each through memory
several times;
here rows are processed in cache-sized chunks, the forward saves only its inputs and the backward recomputes each
chunk, as `fused` does for one circuit. Not twice differentiable (use ``engine="autograd"`` for that).

Gradient convention is torch's for complex tensors: ``g = dL/dRe + i dL/dIm``.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .fused import chunk_rows, chunked_forward, kept_or_rerun
from .gates import encoding_phase, entangler_rows, kron_chain, rot_matrices, z_signs


def layer_phases(x: torch.Tensor, n_layers: int) -> list[torch.Tensor]:
    """The RZ phase ``(H, rows, 2^n)`` entering each of ``n_layers`` layers: one shared object for angles
    ``(H, rows, n)``, one per layer for per-upload angles ``(H, rows, R, n)``."""
    if x.ndim == 3:
        return [encoding_phase(x)] * n_layers
    return [encoding_phase(x[:, :, layer]) for layer in range(n_layers)]


def _run_chunk(x, v1, unitaries, signs, keep: bool):
    """Forward of one chunk of rows ``x (H, rows, n)`` or ``(H, rows, R, n)``; returns the final state, the phases
    (one per layer) and (if ``keep``) the states entering each later layer's unitary."""
    phases = layer_phases(x, unitaries.shape[1])
    state = v1.unsqueeze(1) * phases[0]
    entering = []
    for layer in range(unitaries.shape[1]):
        if layer > 0:
            state = state * phases[layer]
        if keep:
            entering.append(state)
        state = torch.bmm(state, unitaries[:, layer].transpose(1, 2))
    return state, phases, entering


class FusedDenseHeads(torch.autograd.Function):
    """``<Z_j>`` of H heads: x ``(H, B, n)`` or ``(H, B, R, n)`` real, v1 ``(H, D)`` complex, unitaries
    ``(H, R, D, D)``, signs ``(D, n)``."""

    @staticmethod
    def forward(ctx, x, v1, unitaries, signs):
        ctx.save_for_backward(x, v1, unitaries, signs)
        out = torch.empty_like(x if x.ndim == 3 else x[:, :, 0])  # (H, B, n), the layout of the angles
        return chunked_forward(ctx, x, 1, chunk_rows(x.shape[0] * v1.shape[1], x.device),
                               lambda chunk, keep: _run_chunk(chunk, v1, unitaries, signs, keep=keep),
                               lambda state: torch.view_as_real(state).square().sum(-1) @ signs, out)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, v1, unitaries, signs = ctx.saved_tensors
        n_heads, n_rows = x.shape[:2]
        per_layer = x.ndim == 4
        rows = chunk_rows(n_heads * v1.shape[1], x.device)
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_v1 = torch.zeros_like(v1)
        grad_u = torch.zeros_like(unitaries)
        for start in range(0, n_rows, rows):
            xc = x[:, start : start + rows]
            state, phases, entering = kept_or_rerun(ctx, _run_chunk, xc, v1, unitaries, signs, keep=True)
            # d<Z_j>/d|z_d|^2 = S[d, j], then d|z|^2 = 2 Re(conj(z) dz).
            g = (2 * grad_out[:, start : start + rows] @ signs.T) * state
            if per_layer:
                phase_conj = [p.conj().resolve_conj() for p in phases]
            else:
                phase_conj = [phases[0].conj().resolve_conj()] * len(phases)
            grad_angle = None
            for layer in range(unitaries.shape[1] - 1, -1, -1):
                y = entering[layer]
                grad_u[:, layer] += torch.bmm(g.transpose(1, 2), y.conj())  # z = y U^T
                g = torch.bmm(g, unitaries[:, layer].conj())
                # y = z_prev * p with p = exp(-i angle): dL/dangle = Im(conj(g) y); then g_prev = g conj(p).
                contribution = (g.conj() * y).imag
                if per_layer:  # each upload has its own angles: its own gradient
                    if grad_x is not None:
                        grad_x[:, start : start + rows, layer] = (contribution @ signs) / 2
                else:
                    grad_angle = contribution if grad_angle is None else grad_angle + contribution
                g = g * phase_conj[layer]
            grad_v1 += g.sum(1)
            if grad_x is not None and not per_layer:
                grad_x[:, start : start + rows] = (grad_angle @ signs) / 2
        return grad_x, grad_v1, grad_u, None


def layer_unitaries(weights: torch.Tensor, entangler: str) -> torch.Tensor:
    """One dense unitary per head and parameter layer, ``(H, R+1, D, D)``: the product of the layer's K blocks, every
    head's and layer's gates built in one batched pass (differentiable, twice)."""
    n_qubits, n_blocks = weights.shape[-2], weights.shape[-3]
    blocks = kron_chain(rot_matrices(weights))  # (H, R+1, K, D, D)
    rows = entangler_rows(n_qubits, n_blocks, entangler, weights.device)
    if entangler == "cz_ring":
        blocks = blocks * rows.to(blocks.real.dtype)  # diag(signs) @ block: scale the rows
    else:
        blocks = blocks[..., rows, :]  # permutation @ block: gather the rows
    unitary = blocks[:, :, 0]
    for block in range(1, n_blocks):
        unitary = blocks[:, :, block] @ unitary
    return unitary


def simulate_dense(x: torch.Tensor, weights: torch.Tensor, entangler: str, engine: str) -> torch.Tensor:
    """Heads as the batch of ``bmm``: x ``(H, B, n)`` or per-upload ``(H, B, R, n)`` -> ``(H, B, n)``."""
    n_qubits = x.shape[-1]
    unitaries = layer_unitaries(weights, entangler)  # (H, R+1, D, D)
    signs = z_signs(n_qubits, x.dtype, x.device)  # (D, n)
    if engine == "fused":
        return FusedDenseHeads.apply(x, unitaries[:, 0, :, 0], unitaries[:, 1:], signs)
    phases = layer_phases(x, unitaries.shape[1] - 1)  # RZ on every qubit: (H, B, D) per upload
    state = unitaries[:, 0, :, :1].transpose(1, 2) * phases[0]  # first layer acts on |0...0>: its first column
    for layer in range(1, unitaries.shape[1]):
        if layer > 1:
            state = state * phases[layer - 1]
        state = state @ unitaries[:, layer].transpose(1, 2)
    prob = torch.view_as_real(state).square().sum(-1)  # (H, B, D)
    return prob @ signs


__all__ = ["FusedDenseHeads", "layer_phases", "layer_unitaries", "simulate_dense"]
