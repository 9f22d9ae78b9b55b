"""Gate-by-gate simulation of the re-uploading circuits with noise: pure states, or exact density matrices.

The fast engines (`simulator`, `heads`) merge gates and skip what cannot change ``|psi|^2``; a noisy
device cannot: every gate is followed by its channels (`noise`). This module applies the circuit one gate at
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

from .gates import cnot_permutation, encoding_phase, entangler_pairs, rot_matrices
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


def _apply_row_op(state: torch.Tensor, u: torch.Tensor, wire: int, n_wires: int) -> torch.Tensor:
    """``u`` ``(C, 1, 2, 2)`` (input-independent) on ``wire`` of ``(C, B, 2^n_wires)``: one batched GEMM when the
    trailing block is long enough, else elementwise."""
    c, b, d = state.shape
    left = 2**wire
    right = d // (2 * left)
    if right < 16:
        return _apply_1q(state, u, wire, n_wires)
    out = torch.matmul(u.reshape(c, 1, 2, 2), state.reshape(c, b * left, 2, right))
    return out.reshape(c, b, d)


def channel_form(sup: torch.Tensor) -> tuple[float, tuple[float, float, float, float]]:
    """A phase-covariant one-qubit channel (depolarizing, damping, dephasing and their compositions) as
    ``(s, M)``: off-diagonal entries of the wire's 2x2 block scale by ``s``, the diagonal pair mixes by ``M``."""
    diag = [0, 3]
    off = [1, 2]
    m = sup[diag][:, diag]
    rest = sup.clone()
    rest[diag, :] = 0
    rest[:, diag] = 0
    scale = sup[1, 1]
    if (sup[diag][:, off].abs().max() > 1e-12 or sup[off][:, diag].abs().max() > 1e-12
            or (rest - torch.diag(torch.stack([rest[0, 0], scale, scale, rest[3, 3]]))).abs().max() > 1e-12):
        raise ValueError("channel is not phase covariant")  # never for the channels of noise.NoiseModel
    return float(scale.real), tuple(float(v) for v in m.real.reshape(-1))


def _apply_channel(rho: torch.Tensor, form, wire: int, n_qubits: int) -> torch.Tensor:
    """A phase-covariant channel ``(s, M)`` on wire ``wire`` of density matrices ``(C, B, 4^n)``."""
    scale, (m00, m01, m10, m11) = form
    c, b, dd = rho.shape
    left = 2**wire
    right = 2 ** (n_qubits - 1 - wire)
    r = rho.reshape(c, b, left, 2, right * left, 2, right)
    d0, d1 = r[:, :, :, 0, :, 0], r[:, :, :, 1, :, 1]
    if torch.is_grad_enabled() and rho.requires_grad:  # differentiable form
        top = torch.stack([m00 * d0 + m01 * d1, scale * r[:, :, :, 0, :, 1]], dim=4)
        bottom = torch.stack([scale * r[:, :, :, 1, :, 0], m10 * d0 + m11 * d1], dim=4)
        return torch.stack([top, bottom], dim=3).reshape(c, b, dd)
    out = torch.empty_like(rho)
    o = out.view(c, b, left, 2, right * left, 2, right)
    torch.mul(r[:, :, :, 0, :, 1], scale, out=o[:, :, :, 0, :, 1])
    torch.mul(r[:, :, :, 1, :, 0], scale, out=o[:, :, :, 1, :, 0])
    torch.add(d0 * m00, d1, alpha=m01, out=o[:, :, :, 0, :, 0])
    torch.add(d1 * m11, d0, alpha=m10, out=o[:, :, :, 1, :, 1])
    return out


def _dagger(rho: torch.Tensor, d: int) -> torch.Tensor:
    """Conjugate transpose of every ``d x d`` matrix of a ``(C, B, d*d)`` batch."""
    c, b, _ = rho.shape
    return rho.reshape(c, b, d, d).transpose(-1, -2).conj().reshape(c, b, d * d)


class _Register:
    """The batch of states being simulated and how to apply gates and channels to it."""

    def __init__(self, c: int, b: int, n: int, mixed: bool, dtype: torch.dtype, device, noise: NoiseModel | None):
        self.n, self.mixed = n, mixed
        d = 2**n
        self.state = torch.zeros(c, b, d * d if mixed else d, dtype=dtype, device=device)
        self.state[:, :, 0] = 1
        sup = gate_superoperator(noise) if (mixed and noise is not None) else None
        self.form = None if sup is None else channel_form(sup)

    def channel(self, wire: int) -> None:
        if self.form is not None:
            self.state = _apply_channel(self.state, self.form, wire, self.n)

    def one_qubit(self, u: torch.Tensor, wire: int, diagonal: bool = False) -> None:
        """A one-qubit gate ``(C, Bu, 2, 2)`` followed by the wire's channels (``diagonal``: only ``u[..., k, k]``)."""
        if diagonal:  # RZ: one broadcast multiply on rows (and the conjugate on columns)
            phase = self._diagonal_phase(u[..., 0, 0], u[..., 1, 1], wire)
            self.state = self.state * phase
        elif not self.mixed:
            self.state = _apply_row_op(self.state, u, wire, self.n) if u.shape[1] == 1 else \
                _apply_1q(self.state, u, wire, self.n)
        else:
            n = self.n
            if u.shape[1] == 1:
                self.state = _apply_row_op(self.state, u, wire, 2 * n)
                self.state = _apply_row_op(self.state, u.conj(), n + wire, 2 * n)
            else:
                self.state = _apply_1q(self.state, u, wire, 2 * n)
                self.state = _apply_1q(self.state, u.conj(), n + wire, 2 * n)
        self.channel(wire)

    def rot_layer(self, us: torch.Tensor) -> None:
        """``Rot`` on every wire (``us`` ``(C, n, 2, 2)``), each followed by its wire's channels.

        Density matrices: ``rho -> U (U rho)^H`` with ``U`` the layer's Kronecker product, applied wire by wire on
        rows only (contiguous batched GEMMs), then the channels (they commute with gates on other wires)."""
        n = self.n
        if not self.mixed:
            for j in range(n):
                self.state = _apply_row_op(self.state, us[:, None, j], j, n)
            return
        for j in range(n):
            self.state = _apply_row_op(self.state, us[:, None, j], j, 2 * n)
        self.state = _dagger(self.state, 2**n)  # (U rho)^H = rho U^H, as rho is Hermitian
        for j in range(n):
            self.state = _apply_row_op(self.state, us[:, None, j], j, 2 * n)
        for j in range(n):
            self.channel(j)

    def phase_layer(self, phase: torch.Tensor) -> None:
        """The encoding ``RZ`` on every wire as one diagonal ``(C|1, B, 2^n)``, then every wire's channels."""
        if not self.mixed:
            self.state = self.state * phase
            return
        d = 2**self.n
        self.state = self.state * (phase[..., :, None] * phase.conj()[..., None, :]).reshape(*phase.shape[:-1], d * d)
        for j in range(self.n):
            self.channel(j)

    def _diagonal_phase(self, e0: torch.Tensor, e1: torch.Tensor, wire: int) -> torch.Tensor:
        """``(C, B, D)`` multiplier of the diagonal gate ``diag(e0, e1)`` (``(C, B)`` each) on ``wire``."""
        n, d = self.n, 2**self.n
        bit = ((torch.arange(d, device=e0.device) >> (n - 1 - wire)) & 1).bool()
        row = torch.where(bit, e1[..., None], e0[..., None])  # (C, B, d)
        if not self.mixed:
            return row
        return (row[..., :, None] * row.conj()[..., None, :]).reshape(*row.shape[:-1], d * d)

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


DENSE_MAX_QUBITS = 8
"""Noiseless registers up to this size are simulated with one dense unitary per parameter layer (batched GEMMs)."""


def _pure_dense(x: torch.Tensor, rots: torch.Tensor, kind: str, pairs, encoding_scales) -> torch.Tensor:
    """Noiseless ``|psi|^2`` with each parameter layer multiplied out once into a ``(C, 2^n, 2^n)`` matrix."""
    n_circuits, n_layers, n_blocks, n = rots.shape[:4]
    d = 2**n
    eye = torch.eye(d, dtype=rots.dtype, device=rots.device).expand(n_circuits, d, d).contiguous()
    mats = []
    for layer in range(n_layers):  # rows of M are U e_k: psi_row @ M applies U
        reg = _Register(n_circuits, d, n, False, rots.dtype, rots.device, None)
        reg.state = eye
        for block in range(n_blocks):
            reg.rot_layer(rots[:, layer, block])
            for control, target in pairs[block]:
                reg.two_qubit(kind, control, target)
        mats.append(reg.state)
    psi = mats[0][:, :1, :].expand(n_circuits, x.shape[1], d)  # U_1 |0>
    for layer in range(1, n_layers):
        theta = x if encoding_scales is None else x * encoding_scales.to(x.dtype)[layer - 1]
        psi = torch.bmm(psi * encoding_phase(theta).to(rots.dtype), mats[layer])
    return torch.view_as_real(psi).square().sum(-1)


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
    if not mixed and n <= DENSE_MAX_QUBITS:
        prob = _pure_dense(x, rots, kind, pairs, encoding_scales)
        return prob if noise is None else apply_readout_error(prob, noise.readout)
    reg = _Register(n_circuits, x.shape[1], n, mixed, rots.dtype, weights.device, noise)
    for layer in range(n_layers):
        for block in range(n_blocks):
            reg.rot_layer(rots[:, layer, block])
            for control, target in pairs[block]:
                reg.two_qubit(kind, control, target)
        if layer == n_layers - 1:
            break
        theta = x if encoding_scales is None else x * encoding_scales.to(real)[layer]
        reg.phase_layer(encoding_phase(theta).to(rots.dtype))
    prob = reg.probabilities()
    return prob if noise is None else apply_readout_error(prob, noise.readout)


__all__ = ["CHUNK_ENTRIES", "apply_readout_error", "circuit_probabilities"]
