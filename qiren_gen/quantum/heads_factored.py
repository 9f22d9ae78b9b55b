"""Many heads in the factored layout: the shared simulator's two-qubit-group state with a head axis (larger registers).

A state is ``(H, d1, B, d2)``; one block is ``Rot x ... x Rot = A x B`` (two ``bmm`` over heads) followed by the
entangler: the CZ ring is a diagonal of +-1 (skipped at the very end, where it cannot change ``|psi|^2``), the CNOT
chain a permutation (a row gather, then a gather of columns that depends on the row). Angles are ``(H, B, n)`` (one
phase for every upload) or ``(H, B, R, n)`` (one per upload, e.g. scaled encodings). ``FusedFactoredHeads`` is the
chunked engine with a hand-written backward, as `fused` for one circuit; gradient convention is torch's for
complex tensors: ``g = dL/dRe + i dL/dIm``.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .fused import chunk_rows, chunked_forward, kept_or_rerun, run_layers
from .gates import encoding_phase, entangler_rows, z_signs
from .simulator import group_factors, split_qubits


class Entangler:
    """The entangling step after each block on an ``(H, d1, B, d2)`` state, and its adjoint for the backward."""

    def __init__(self, kind: str, n_qubits: int, n_blocks: int, dtype: torch.dtype, device) -> None:
        first, _ = split_qubits(n_qubits)
        self.d1, self.d2 = 2**first, 2 ** (n_qubits - first)
        self.kind = kind
        rows = entangler_rows(n_qubits, n_blocks, kind, device)
        if kind == "cz_ring":
            self.signs = [signs.to(dtype).reshape(self.d1, 1, self.d2) for signs in rows]
        else:
            sources = rows
            inverse = torch.empty_like(sources)
            inverse[sources] = torch.arange(sources.numel(), device=device)
            self.forward_index = self._split(sources)
            self.adjoint_index = self._split(inverse)

    def _split(self, sources: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A flat gather index as (source row per row, source column per row and column); the chain keeps rows whole."""
        sources = sources.reshape(self.d1, self.d2)
        return sources[:, 0] // self.d2, sources % self.d2

    @staticmethod
    def _gather(state: torch.Tensor, index: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        rows, cols = index
        state = state.index_select(1, rows)
        return torch.gather(state, 3, cols.view(1, cols.shape[0], 1, cols.shape[1]).expand_as(state))

    def apply(self, state: torch.Tensor, block: int, last: bool) -> torch.Tensor:
        if self.kind == "cz_ring":
            return state if last else state * self.signs[block]
        return self._gather(state, self.forward_index)

    def adjoint(self, grad: torch.Tensor, block: int, last: bool) -> torch.Tensor:
        if self.kind == "cz_ring":
            return grad if last else grad * self.signs[block]
        return self._gather(grad, self.adjoint_index)


def _apply_rotations(state: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A_h x B_h)`` on ``(H, d1, B, d2)``: returns the new state and the intermediate ``state B^T``."""
    n_heads, d1, rows, d2 = state.shape
    t = torch.bmm(state.reshape(n_heads, d1 * rows, d2), b.transpose(1, 2)).reshape(n_heads, d1, rows, d2)
    return torch.bmm(a, t.reshape(n_heads, d1, rows * d2)).reshape(n_heads, d1, rows, d2), t


def _phases(x: torch.Tensor, first: int) -> torch.Tensor:
    """RZ encoding of rows ``x (H, rows, n)`` laid out as ``(H, d1, rows, d2)``."""
    return encoding_phase(x[..., :first]).transpose(1, 2).unsqueeze(-1) * encoding_phase(x[..., first:]).unsqueeze(1)


def _layer_phases(x: torch.Tensor, first: int, n_layers: int) -> list[torch.Tensor]:
    """The phase entering each layer: one shared for ``x (H, rows, n)``, one per layer for ``(H, rows, R, n)``."""
    if x.ndim == 3:
        return [_phases(x, first)] * n_layers
    return [_phases(x[:, :, layer], first) for layer in range(n_layers)]


def _readout(state: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    prob = torch.view_as_real(state).square().sum(-1)  # (H, d1, rows, d2)
    return torch.cat([prob.sum(3).transpose(1, 2) @ s1, prob.sum(1) @ s2], dim=-1)


def _run_chunk(x, v1, a, b, entangler: Entangler, first: int, keep: bool):
    """Layers 2..R+1 on rows ``x (H, rows, n)`` or ``(H, rows, R, n)`` from the state ``v1`` after layer 1; ``keep``
    records the backward's needs."""
    n_layers, n_blocks = a.shape[1], a.shape[2]
    phases = _layer_phases(x, first, n_layers)

    def block_step(state, layer, block, last):
        state, t = _apply_rotations(state, a[:, layer, block], b[:, layer, block])
        return entangler.apply(state, block, last), t, last

    state, record = run_layers(v1, phases, n_blocks, block_step, keep)
    return state, phases, record


class FusedFactoredHeads(torch.autograd.Function):
    """x ``(H, B, n)`` or ``(H, B, R, n)``; v1 ``(H, d1, 1, d2)`` (after layer 1); a ``(H, R, K, d1, d1)``;
    b ``(H, R, K, d2, d2)``."""

    @staticmethod
    def forward(ctx, x, v1, a, b, entangler, s1, s2):
        ctx.save_for_backward(x, v1, a, b, s1, s2)
        ctx.entangler = entangler
        out = torch.empty_like(x if x.ndim == 3 else x[:, :, 0])  # (H, B, n), the layout of the angles
        return chunked_forward(ctx, x, 1, chunk_rows(v1.numel(), x.device),  # amplitudes per row, over all heads
                               lambda chunk, keep: _run_chunk(chunk, v1, a, b, entangler, s1.shape[1], keep),
                               lambda state: _readout(state, s1, s2), out)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, v1, a, b, s1, s2 = ctx.saved_tensors
        entangler, first = ctx.entangler, s1.shape[1]
        n_heads, n_rows = x.shape[:2]
        per_layer = x.ndim == 4
        rows = chunk_rows(v1.numel(), x.device)  # amplitudes per row, over all heads
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_v1, grad_a, grad_b = torch.zeros_like(v1), torch.zeros_like(a), torch.zeros_like(b)
        for start in range(0, n_rows, rows):
            xc = x[:, start : start + rows]
            state, phases, record = kept_or_rerun(ctx, _run_chunk, xc, v1, a, b, entangler, first, True)
            go = 2 * grad_out[:, start : start + rows]  # d|psi|^2 = 2 Re(conj(psi) dpsi): the 2 is folded in here
            grad_prob = (go[..., :first] @ s1.T).transpose(1, 2).unsqueeze(-1) + (go[..., first:] @ s2.T).unsqueeze(1)
            g = grad_prob * state
            if per_layer:
                phase_conj = [p.conj().resolve_conj() for p in phases]
            else:
                phase_conj = [phases[0].conj().resolve_conj()] * len(phases)
            grad_angle = None
            for item in reversed(record):
                if item[0] == "block":
                    _, layer, block, before, t, last = item
                    g = entangler.adjoint(g, block, last)
                    _, d1, n, d2 = g.shape
                    g_flat = g.reshape(n_heads, d1, n * d2)
                    grad_a[:, layer, block] += torch.bmm(g_flat, t.reshape(n_heads, d1, n * d2).conj().transpose(1, 2))
                    g_t = torch.bmm(a[:, layer, block].conj().transpose(1, 2), g_flat).reshape(n_heads, d1 * n, d2)
                    grad_b[:, layer, block] += torch.bmm(
                        before.reshape(n_heads, d1 * n, d2).conj().transpose(1, 2), g_t).transpose(1, 2)
                    g = torch.bmm(g_t, b[:, layer, block].conj()).reshape(n_heads, d1, n, d2)
                else:  # y = s * phase, phase = exp(-i angle): dL/dangle = Im(conj(g) y)
                    _, layer, y = item
                    contribution = (g.conj() * y).imag
                    if per_layer:  # each upload has its own angles: its own gradient
                        if grad_x is not None:
                            _angle_grad(grad_x[:, start : start + rows, layer], contribution, s1, s2)
                    else:
                        grad_angle = contribution if grad_angle is None else grad_angle + contribution
                    g = g * phase_conj[layer]
            grad_v1 += g.sum(2, keepdim=True)
            if grad_x is not None and not per_layer:
                _angle_grad(grad_x[:, start : start + rows], grad_angle, s1, s2)
        return grad_x, grad_v1, grad_a, grad_b, None, None, None


def _angle_grad(out: torch.Tensor, grad_angle: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor) -> None:
    """Write ``dL/dx`` ``(H, rows, n)`` into ``out`` from ``dL/dangle`` on the ``(H, d1, rows, d2)`` layout."""
    first = s1.shape[1]
    out[..., :first] = (grad_angle.sum(3).transpose(1, 2) @ s1) / 2
    out[..., first:] = (grad_angle.sum(1) @ s2) / 2


def simulate_factored(x: torch.Tensor, weights: torch.Tensor, entangler: str, engine: str) -> torch.Tensor:
    """The two-group layout with a head axis: x ``(H, B, n)`` or per-upload ``(H, B, R, n)`` -> ``(H, B, n)``."""
    n_heads, n_qubits = x.shape[0], x.shape[-1]
    n_blocks = weights.shape[2]
    real, device = x.dtype, x.device
    first, second = split_qubits(n_qubits)
    d1, d2 = 2**first, 2**second
    a, b = group_factors(weights, first)  # (H, R+1, K, d1, d1), (H, R+1, K, d2, d2)
    ent = Entangler(entangler, n_qubits, n_blocks, real, device)
    s1, s2 = z_signs(first, real, device), z_signs(second, real, device)

    # Layer 1 acts on |0...0>: computed once per call (plain autograd), not once per row.
    v1 = torch.zeros(n_heads, d1, 1, d2, dtype=a.dtype, device=device)
    v1[:, 0, 0, 0] = 1
    for block in range(n_blocks):
        v1 = ent.apply(_apply_rotations(v1, a[:, 0, block], b[:, 0, block])[0], block, False)
    if engine == "fused":
        return FusedFactoredHeads.apply(x, v1, a[:, 1:], b[:, 1:], ent, s1, s2)
    state, _, _ = _run_chunk(x, v1, a[:, 1:], b[:, 1:], ent, first, keep=False)
    return _readout(state, s1, s2)


__all__ = ["FusedFactoredHeads", "simulate_factored"]
