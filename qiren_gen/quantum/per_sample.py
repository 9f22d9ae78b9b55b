"""The QIREN circuit with per-sample weights: one set of rotation angles per sample (the ``angles`` modulation).

Same circuit and conventions as `simulate_reuploading`, but ``weights`` carry a leading sample axis, so each
sample has its own unitaries. Plain torch ops (twice differentiable); the state of sample ``s`` is a
``(d1, P, d2)`` tensor as in the shared simulator, stacked over samples.
"""
from __future__ import annotations

import torch

from .gates import cz_ring_signs, entangler_ranges, z_signs
from .simulator import group_factors, split_qubits


def _apply_blocks(state: torch.Tensor, a: torch.Tensor, b: torch.Tensor, signs: torch.Tensor | None) -> torch.Tensor:
    """``diag(signs) (A_s x B_s)`` on states ``(S, d1, P, d2)`` with per-sample ``A (S, d1, d1)``, ``B (S, d2, d2)``."""
    s, d1, p, d2 = state.shape
    state = state @ b.transpose(-1, -2).unsqueeze(1)  # (S, d1, P, d2)
    state = (a @ state.reshape(s, d1, p * d2)).reshape(s, d1, p, d2)
    return state if signs is None else state * signs


def simulate_reuploading_per_sample(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``<Z_j>`` for inputs ``(S, P, n)`` with per-sample weights ``(S, R + 1, K, n, 3)`` -> ``(S, P, n)``."""
    if inputs.ndim != 3 or weights.ndim != 5 or inputs.shape[0] != weights.shape[0]:
        raise ValueError(
            f"need inputs (S, P, n) and weights (S, R+1, K, n, 3) with the same S, got {tuple(inputs.shape)} "
            f"and {tuple(weights.shape)}"
        )
    n_samples, n_points, n_qubits = inputs.shape
    _, n_layers, n_blocks, wq, _ = weights.shape
    if wq != n_qubits or n_layers < 2:
        raise ValueError(f"weights {tuple(weights.shape)} do not fit inputs with {n_qubits} qubits")
    real = torch.promote_types(inputs.dtype, weights.dtype)
    device = weights.device
    x = inputs.to(real)
    first, second = split_qubits(n_qubits)
    d1, d2 = 2**first, 2**second
    a, b = group_factors(weights.to(real), first)  # (S, R+1, K, d1, d1), (S, R+1, K, d2, d2)
    signs = [cz_ring_signs(n_qubits, r, device=device).to(real).reshape(d1, 1, d2)
             for r in entangler_ranges(n_qubits, n_blocks)]
    s1 = z_signs(first, real, device)
    s2 = z_signs(second, real, device)

    state = torch.zeros(n_samples, d1, 1, d2, dtype=a.dtype, device=device)
    state[:, 0, 0, 0] = 1
    for block in range(n_blocks):
        state = _apply_blocks(state, a[:, 0, block], b[:, 0, block], signs[block])
    half1 = (x[..., :first] @ s1.T) / 2  # (S, P, d1)
    half2 = (x[..., first:] @ s2.T) / 2  # (S, P, d2)
    p1 = torch.complex(torch.cos(half1), -torch.sin(half1)).transpose(1, 2).unsqueeze(-1)  # (S, d1, P, 1)
    p2 = torch.complex(torch.cos(half2), -torch.sin(half2)).unsqueeze(1)  # (S, 1, P, d2)
    for layer in range(1, n_layers):
        state = state * p1 * p2
        for block in range(n_blocks):
            last = layer == n_layers - 1 and block == n_blocks - 1
            state = _apply_blocks(state, a[:, layer, block], b[:, layer, block], None if last else signs[block])
    prob = torch.view_as_real(state).square().sum(-1)  # (S, d1, P, d2)
    return torch.cat([prob.sum(3).transpose(1, 2) @ s1, prob.sum(1) @ s2], dim=-1)


__all__ = ["simulate_reuploading_per_sample"]
