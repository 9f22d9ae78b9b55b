"""The dense heads' Fourier coefficients from their weights, with a hand-written backward (training's series).

A training step needs the series coefficients of every head and their gradient into the weights: ``S = prod_j
(2 L_j + 1)`` exact circuit runs per head (a few dozen states of ``D = 2^n`` amplitudes), read out and transformed by
one GEMM. The arithmetic is tiny; under autograd its cost is the graph (gates, Kronecker products, entanglers, runs:
over a hundred backward ops). `series_coefficients` runs the same ops without a graph and replays their adjoints by
hand: the runs' (``grad_U = g^T conj(y)``, ``g <- g conj(U)``), the block products', the Kronecker factors' and the
``Rot`` gates' (`gates.rot_backward`). Float64 and exact: the gradients are the simulator's. Gradient convention is
torch's for complex tensors, ``g = dL/dRe + i dL/dIm``.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .gates import entangler_rows, kron_chain, rot_backward, rot_matrices_with_parts


def series_coefficients(weights: torch.Tensor, entangler: str, phases: torch.Tensor,
                        readout: torch.Tensor) -> torch.Tensor:
    """``(H, n 2K)``: the probabilities of the exact runs of dense heads with weights ``(H, R+1, K, n, 3)`` (float64)
    at the sample points whose RZ phases per upload are ``phases`` ``(R, S, D)``, times ``readout`` ``(S D, n 2K)``
    (every ``<Z_j>`` and its half-spectrum DFT); differentiable in the weights (once)."""
    return _SeriesCoefficients.apply(weights, entangler, phases, readout)


def _kron_backward(rots: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``dL/dR_q`` ``(..., n, 2, 2)`` of ``B = R_0 x .. x R_{n-1}`` from ``dL/dB`` ``(..., D, D)``: with
    ``B = L x R_q x R'`` (the factors before and after),
    ``dL/dR_q[a, b] = sum G[(i a j), (i' b j')] conj(L[i, i'] R'[j, j'])``."""
    n = rots.shape[-3]
    if n == 1:
        return grad.unsqueeze(-3)
    lead = grad.shape[:-2]
    out = []
    for q in range(n):
        before, after = kron_chain(rots[..., :q, :, :]), kron_chain(rots[..., q + 1 :, :, :])
        d_before, d_after = before.shape[-1], after.shape[-1]
        shaped = grad.reshape(*lead, d_before, 2, d_after, d_before, 2, d_after)
        shaped = shaped.movedim((-5, -2), (-6, -5)).reshape(*lead, 4, -1)  # (a, b) by (i, j, i', j')
        others = before[..., :, None, :, None] * after[..., None, :, None, :]  # (i, j, i', j')
        out.append((shaped @ others.reshape(*lead, -1, 1).conj()).view(*lead, 2, 2))
    return torch.stack(out, dim=-3)


class _SeriesCoefficients(torch.autograd.Function):
    """`series_coefficients`: the forward without a graph, the backward by hand (once differentiable)."""

    @staticmethod
    def forward(ctx, weights, entangler, phases, readout):
        n_heads, n_layers, n_blocks, n_qubits = weights.shape[:4]
        rots, trig, products = rot_matrices_with_parts(weights)  # (H, R+1, K, n, 2, 2)
        rows = entangler_rows(n_qubits, n_blocks, entangler, weights.device)
        blocks = kron_chain(rots)  # (H, R+1, K, D, D)
        blocks = blocks * rows.to(blocks.real.dtype) if entangler == "cz_ring" else blocks[..., rows, :]
        partial = [blocks[:, :, 0]]  # X_b .. X_0 of every layer
        for block in range(1, n_blocks):
            partial.append(blocks[:, :, block] @ partial[-1])
        unitaries = partial[-1]  # (H, R+1, D, D)
        state = unitaries[:, 0, None, :, 0] * phases[0]  # the first layer acts on |0...0>: its first column
        entering = []
        for layer in range(1, n_layers):
            if layer > 1:
                state = state * phases[layer - 1]
            entering.append(state)
            state = torch.bmm(state, unitaries[:, layer].transpose(1, 2))
        probabilities = torch.view_as_real(state).square().sum(-1)  # (H, S, D)
        ctx.entangler, ctx.n_blocks = entangler, n_blocks
        ctx.save_for_backward(phases, readout, rots, trig, products, blocks, unitaries, state, rows, *partial,
                              *entering)
        return probabilities.reshape(n_heads, -1) @ readout

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        phases, readout, rots, trig, products, blocks, unitaries, state, rows, *rest = ctx.saved_tensors
        partial, entering = rest[: ctx.n_blocks], rest[ctx.n_blocks :]
        n_layers = unitaries.shape[1]
        grad_probabilities = (grad @ readout.T).view(state.shape)  # (H, S, D)
        g = (2 * grad_probabilities) * state  # d|z|^2 = 2 Re(conj(z) dz)
        grad_u = []
        for layer in range(n_layers - 1, 0, -1):
            grad_u.append(torch.bmm(g.transpose(1, 2), entering[layer - 1].conj()))  # z = y U^T
            g = torch.bmm(g, unitaries[:, layer].conj())
            if layer > 1:
                g = g * phases[layer - 1].conj()
        first = torch.zeros_like(unitaries[:, 0])
        first[:, :, 0] = (g * phases[0].conj()).sum(1)  # the first layer's first column
        grad_u = torch.stack([first, *reversed(grad_u)], dim=1)  # (H, R+1, D, D)
        # U = X_{K-1} .. X_0: C = A B gives dA = dC B^H, dB = A^H dC.
        grad_blocks = []
        for block in range(ctx.n_blocks - 1, 0, -1):
            grad_blocks.append(grad_u @ partial[block - 1].conj().transpose(-1, -2))
            grad_u = blocks[:, :, block].conj().transpose(-1, -2) @ grad_u
        grad_x = torch.stack([grad_u, *reversed(grad_blocks)], dim=2)  # (H, R+1, K, D, D)
        if ctx.entangler == "cz_ring":  # X = diag(signs) B
            grad_b = grad_x * rows.to(grad_x.real.dtype)
        else:  # X = B[rows]: the rows go back where they came from
            grad_b = grad_x.index_select(-2, torch.argsort(rows))
        return rot_backward(_kron_backward(rots, grad_b), trig, products), None, None, None


__all__ = ["series_coefficients"]
