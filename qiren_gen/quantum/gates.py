"""Small gate and basis helpers shared by the fast simulator and its PennyLane twin.

Wire 0 is the most significant bit of a basis index, as in PennyLane.
"""
from __future__ import annotations

import torch


def rot_matrices(angles: torch.Tensor) -> torch.Tensor:
    """PennyLane ``Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)`` for angles ``(..., 3)`` -> ``(..., 2, 2)``."""
    phi, theta, omega = angles.unbind(-1)
    c = torch.cos(theta / 2)
    s = torch.sin(theta / 2)
    plus = (phi + omega) / 2
    minus = (phi - omega) / 2
    # exp(i a) with a real built without complex autograd quirks: cos + i sin.
    def expi(a: torch.Tensor) -> torch.Tensor:
        return torch.complex(torch.cos(a), torch.sin(a))

    zero = torch.zeros_like(c)
    cc = torch.complex(c, zero)
    sc = torch.complex(s, zero)
    m00 = expi(-plus) * cc
    m01 = -expi(minus) * sc
    m10 = expi(-minus) * sc
    m11 = expi(plus) * cc
    return torch.stack([torch.stack([m00, m01], -1), torch.stack([m10, m11], -1)], -2)


def kron_chain(mats: torch.Tensor) -> torch.Tensor:
    """Kronecker product of ``mats[..., 0, :, :] x mats[..., 1, :, :] x ...`` (first factor most significant).

    ``mats`` has shape ``(..., m, 2, 2)``; with ``m = 0`` the result is the 1x1 identity.
    """
    batch = mats.shape[:-3]
    m = mats.shape[-3]
    out = torch.ones(*batch, 1, 1, dtype=mats.dtype, device=mats.device)
    for q in range(m):
        f = mats[..., q, :, :]
        out = (out[..., :, None, :, None] * f[..., None, :, None, :]).reshape(
            *batch, out.shape[-2] * 2, out.shape[-1] * 2
        )
    return out


def z_signs(n_qubits: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``S[b, j] = 1 - 2 * bit_j(b)``: the eigenvalue of ``Z_j`` on basis state ``b``; shape ``(2**n, n)``."""
    idx = torch.arange(2**n_qubits, device=device)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=device)
    bits = (idx[:, None] >> shifts[None, :]) & 1
    return (1 - 2 * bits).to(dtype)


def entangler_ranges(n_qubits: int, n_blocks: int) -> list[int]:
    """PennyLane's default ``StronglyEntanglingLayers`` ranges: ``(l mod (n - 1)) + 1`` (none for one qubit)."""
    if n_qubits < 2:
        return [0] * n_blocks
    return [(block % (n_qubits - 1)) + 1 for block in range(n_blocks)]


def cz_ring_signs(n_qubits: int, ring_range: int, device=None) -> torch.Tensor:
    """Diagonal of ``prod_i CZ(i, (i + r) mod n)`` as a ``(2**n,)`` tensor of +-1 (all ones for one qubit)."""
    if n_qubits < 2:
        return torch.ones(2**n_qubits, device=device)
    idx = torch.arange(2**n_qubits, device=device)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=device)
    bits = (idx[:, None] >> shifts[None, :]) & 1
    partner = bits[:, [(i + ring_range) % n_qubits for i in range(n_qubits)]]
    parity = (bits * partner).sum(-1) % 2
    return (1 - 2 * parity).float()


def cnot_chain_sources(n_qubits: int, device=None) -> torch.Tensor:
    """Gather index of ``CNOT(0,1) CNOT(1,2) ... CNOT(n-2,n-1)``: ``new_state = state[..., index]``; shape ``(2**n,)``.

    The chain maps basis bits ``b`` to their prefix parities ``b'_k = b_0 ^ ... ^ b_k``, so the source of output
    ``b'`` is ``b_k = b'_k ^ b'_{k-1}``.
    """
    idx = torch.arange(2**n_qubits, device=device)
    return idx ^ (idx >> 1)  # bit k of (b' >> 1) is b'_{k-1} (wire 0 is the most significant bit)


def encoding_phase(x: torch.Tensor) -> torch.Tensor:
    """``exp(-i (x @ S^T) / 2)`` for ``x (..., n)`` -> ``(..., 2^n)``, built as a Kronecker product of per-qubit phases.

    RZ on every qubit is separable: the phase of basis state ``b`` is ``prod_j exp(-i s_j(b) x_j / 2)``, so only
    ``n`` cosines and sines per row are needed instead of ``2^n``.
    """
    if x.shape[-1] == 0:  # no qubits (an empty group): the phase is 1
        one = x.new_ones(*x.shape[:-1], 1)
        return torch.complex(one, torch.zeros_like(one))
    half = x / 2
    e = torch.complex(torch.cos(half), -torch.sin(half))  # bit 0 of qubit j: exp(-i x_j / 2); bit 1: its conjugate
    factors = torch.stack([e, e.conj()], -1)  # (..., n, 2)
    phase = factors[..., 0, :]
    for j in range(1, x.shape[-1]):  # wire 0 is the most significant bit
        phase = (phase.unsqueeze(-1) * factors[..., j, None, :]).flatten(-2)
    return phase
