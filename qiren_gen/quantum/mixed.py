"""Gate-by-gate simulation of the re-uploading circuits with noise: pure states, or exact density matrices.

The fast engines (:mod:`.simulator`, :mod:`.heads`) merge gates and skip what cannot change ``|psi|^2``; a noisy
device cannot: every gate is followed by its channels (:mod:`.noise`). This module applies the circuit one gate at
a time to a batch of circuits ``C`` (1 circuit, H heads, or S per-sample weight sets) times a batch of inputs ``B``:

* pure states ``(C, B, 2^n)`` when there is no gate noise (shots and readout error only act on the outcome
  distribution): ``~24 n`` elementwise passes over ``2^n`` amplitudes per input;
* density matrices ``(C, B, 4^n)`` otherwise. A ``Rot`` and the channels after it are one ``4x4`` superoperator on
  the wire's (row, column) pair, so a gate costs one pass over ``4^n`` entries: at 8 qubits 65,536 complex entries
  (1 MiB in complex128) per input, about ``2^n`` times the pure-state cost. Inputs are processed in chunks.

Outputs are basis-state probabilities ``(C, B, 2^n)`` (wire 0 the most significant bit, as in PennyLane), with the
readout error applied; plain torch ops, differentiable in inputs and weights.
"""
from __future__ import annotations

import torch

from .gates import cnot_permutation, entangler_pairs, rot_matrices
from .noise import NoiseModel, gate_superoperator

CHUNK_ENTRIES = 2**21
"""State entries (inputs x 2^n or x 4^n, over all circuits) held at once: 32 MiB of complex128."""


def _apply_1q(state: torch.Tensor, u: torch.Tensor, wire: int, n_wires: int) -> torch.Tensor:
    """``u`` ``(C, Bu, 2, 2)`` on ``wire`` of a ``(C, B, 2^n_wires)`` register (elementwise: no transposes)."""
    c, b, d = state.shape
    left = 2**wire
    s = state.reshape(c, b, left, 2, d // (2 * left))
    s0, s1 = s[:, :, :, 0], s[:, :, :, 1]
    u = u[:, :, None, None]  # (C, Bu, 1, 1, 2, 2)
    out = torch.stack([u[..., 0, 0] * s0 + u[..., 0, 1] * s1, u[..., 1, 0] * s0 + u[..., 1, 1] * s1], dim=3)
    return out.reshape(c, b, d)


def _apply_superop(rho: torch.Tensor, sup: torch.Tensor, wire: int, n_qubits: int) -> torch.Tensor:
    """A ``4x4`` superoperator ``(C, Bu, 4, 4)`` on wire ``wire`` of density matrices ``(C, B, 4^n)``."""
    c, b, dd = rho.shape
    left = 2**wire
    right = 2 ** (n_qubits - 1 - wire)
    r = rho.reshape(c, b, left, 2, right * left, 2, right)
    t = [r[:, :, :, i, :, j] for i in (0, 1) for j in (0, 1)]  # t_00, t_01, t_10, t_11: (C, B, L, M, R)
    sup = sup[:, :, None, None, None]
    rows = [sum(sup[..., k, m] * t[m] for m in range(4)) for k in range(4)]
    top = torch.stack([rows[0], rows[1]], dim=4)  # new row bit 0: column bit 0, 1 at dim 4 (after L, M)
    bottom = torch.stack([rows[2], rows[3]], dim=4)
    out = torch.stack([top, bottom], dim=3)  # (C, B, L, 2, M, 2, R)
    return out.reshape(c, b, dd)


def _unitary_superop(u: torch.Tensor) -> torch.Tensor:
    """``kron(U, conj(U))`` for batched ``U`` ``(..., 2, 2)``: ``rho -> U rho U^H`` on ``vec(rho)``."""
    return (u[..., :, None, :, None] * u.conj()[..., None, :, None, :]).reshape(*u.shape[:-2], 4, 4)


class _Register:
    """The batch of states being simulated and how to apply gates and channels to it."""

    def __init__(self, c: int, b: int, n: int, mixed: bool, dtype: torch.dtype, device, noise: NoiseModel | None):
        self.n, self.mixed = n, mixed
        d = 2**n
        self.state = torch.zeros(c, b, d * d if mixed else d, dtype=dtype, device=device)
        self.state[:, :, 0] = 1
        sup = gate_superoperator(noise) if (mixed and noise is not None) else None
        self.noise = None if sup is None else sup.to(dtype=dtype, device=device)[None, None]

    def channel(self, wire: int) -> None:
        if self.noise is not None:
            self.state = _apply_superop(self.state, self.noise, wire, self.n)

    def one_qubit(self, u: torch.Tensor, wire: int) -> None:
        """A one-qubit gate ``(C, Bu, 2, 2)`` followed by the wire's channels."""
        if not self.mixed:
            self.state = _apply_1q(self.state, u, wire, self.n)
            return
        sup = _unitary_superop(u)
        if self.noise is not None:
            sup = self.noise @ sup
        self.state = _apply_superop(self.state, sup, wire, self.n)

    def two_qubit(self, kind: str, control: int, target: int) -> None:
        """``CZ`` or ``CNOT`` on ``(control, target)``, then the channels on both wires."""
        n, d = self.n, 2**self.n
        device = self.state.device
        if kind == "cz":
            idx = torch.arange(d, device=device)
            both = ((idx >> (n - 1 - control)) & 1) & ((idx >> (n - 1 - target)) & 1)
            sign = (1 - 2 * both).to(self.state.real.dtype)
            if self.mixed:
                sign = (sign[:, None] * sign[None, :]).reshape(-1)
            self.state = self.state * sign
        else:
            gather = cnot_permutation(n, [(control, target)], device)
            if self.mixed:
                c, b, _ = self.state.shape
                rho = self.state.reshape(c, b, d, d)[:, :, gather][:, :, :, gather]
                self.state = rho.reshape(c, b, d * d)
            else:
                self.state = self.state[:, :, gather]
        self.channel(control)
        self.channel(target)

    def probabilities(self) -> torch.Tensor:
        if not self.mixed:
            return torch.view_as_real(self.state).square().sum(-1)
        c, b, _ = self.state.shape
        d = 2**self.n
        return self.state.reshape(c, b, d, d).diagonal(dim1=-2, dim2=-1).real


def apply_readout_error(prob: torch.Tensor, q: float) -> torch.Tensor:
    """Outcome probabilities ``(..., 2^n)`` after an independent bit flip with probability ``q`` on every wire."""
    if q == 0:
        return prob
    d = prob.shape[-1]
    n = d.bit_length() - 1
    lead = prob.shape[:-1]
    for wire in range(n):
        left = 2**wire
        p = prob.reshape(*lead, left, 2, d // (2 * left))
        p0, p1 = p[..., 0, :], p[..., 1, :]
        prob = torch.stack([(1 - q) * p0 + q * p1, q * p0 + (1 - q) * p1], dim=-2).reshape(*lead, d)
    return prob


def circuit_probabilities(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    entangler: str = "cz_ring",
    encoding_scales: torch.Tensor | None = None,
    noise: NoiseModel | None = None,
) -> torch.Tensor:
    """Basis-state probabilities ``(C, B, 2^n)`` of ``C`` re-uploading circuits on ``B`` inputs each.

    Args:
        inputs: real ``(C, B, n)`` (or ``(1, B, n)`` shared by all circuits): the encoding angles.
        weights: real ``(C, R + 1, K, n, 3)``: ``DataReuploadingCircuit.shape`` weights per circuit.
        entangler: one of ``gates.ENTANGLERS`` (``"cz_ring"`` uses CZ, the others CNOT).
        encoding_scales: ``None`` or ``(R, n)``: upload ``r`` applies ``RZ(scale[r, j] * x_j)``.
        noise: ``None`` or a ``NoiseModel``: gate noise switches to density matrices; readout error is applied to
            the result.
    """
    if inputs.ndim != 3 or weights.ndim != 5 or inputs.shape[-1] != weights.shape[3]:
        raise ValueError(f"need inputs (C, B, n) and weights (C, R+1, K, n, 3), got {tuple(inputs.shape)} and "
                         f"{tuple(weights.shape)}")
    n_circuits, n_layers, n_blocks, n, _ = weights.shape
    real = torch.promote_types(inputs.dtype, weights.dtype)
    mixed = noise is not None and noise.gate_noise
    per_input = 4**n if mixed else 2**n
    rows = max(1, CHUNK_ENTRIES // (per_input * n_circuits))
    if inputs.shape[1] > rows:
        chunks = [circuit_probabilities(inputs[:, i : i + rows], weights, entangler, encoding_scales, noise)
                  for i in range(0, inputs.shape[1], rows)]
        return torch.cat(chunks, dim=1)
    x = inputs.to(real)
    rots = rot_matrices(weights.to(real))  # (C, R+1, K, n, 2, 2)
    kind = "cz" if entangler == "cz_ring" else "cnot"
    pairs = entangler_pairs(n, n_blocks, entangler)
    reg = _Register(n_circuits, x.shape[1], n, mixed, rots.dtype, weights.device, noise)
    for layer in range(n_layers):
        for block in range(n_blocks):
            for j in range(n):
                reg.one_qubit(rots[:, layer, block, j][:, None], j)
            for control, target in pairs[block]:
                reg.two_qubit(kind, control, target)
        if layer == n_layers - 1:
            break
        theta = x if encoding_scales is None else x * encoding_scales.to(real)[layer]
        half = theta / 2
        e = torch.complex(torch.cos(half), -torch.sin(half))  # RZ(theta) = diag(e^{-i theta/2}, e^{i theta/2})
        zero = torch.zeros_like(e)
        rz = torch.stack([torch.stack([e, zero], -1), torch.stack([zero, e.conj()], -1)], -2)  # (C|1, B, n, 2, 2)
        for j in range(n):
            reg.one_qubit(rz[:, :, j], j)
    prob = reg.probabilities()
    return prob if noise is None else apply_readout_error(prob, noise.readout)


__all__ = ["CHUNK_ENTRIES", "apply_readout_error", "circuit_probabilities"]
