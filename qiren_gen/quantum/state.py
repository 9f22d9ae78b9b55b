"""Operations on a split state vector, held as a ``(d1, B, d2)`` tensor (qubits in two groups, batch between).

The lowest layer of the simulators: both engines (``simulator`` and its chunked twin ``fused``) and the multi-head
engines apply CNOT layers and read expectations through these two functions.
"""
from __future__ import annotations

import torch


def permute_basis(state: torch.Tensor, gather: torch.Tensor) -> torch.Tensor:
    """``new[b] = state[gather[b]]`` over the basis of a ``(d1, B, d2)`` state (a CNOT layer)."""
    d1, batch, d2 = state.shape
    flat = state.transpose(0, 1).reshape(batch, d1 * d2)[:, gather]
    return flat.reshape(batch, d1, d2).transpose(0, 1)


def readout(state: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, obs: torch.Tensor | None) -> torch.Tensor:
    """Expectations from a ``(d1, B, d2)`` state: every ``<Z_j>`` (``obs`` None, separable) or ``|psi|^2 @ obs``."""
    prob = torch.view_as_real(state).square().sum(-1)  # (d1, B, d2)
    if obs is None:
        return torch.cat([prob.sum(2).T @ s1, prob.sum(0) @ s2], dim=-1)
    return prob.transpose(0, 1).reshape(prob.shape[1], -1) @ obs
