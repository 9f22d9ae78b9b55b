"""Small gate and basis helpers shared by the fast simulator and its PennyLane twin.

Wire 0 is the most significant bit of a basis index, as in PennyLane.
"""
from __future__ import annotations

import functools

import torch

_ROT_CONSTANTS: dict = {}
"""``(dtype, device) -> (mix, entries)``: the two constant matrices of `rot_matrices` (`rot_constants`)."""

_ROT_ENTRIES = [(0, 0, 1), (1, 1, -1), (2, 2, -1), (3, 3, -1), (2, 4, 1), (3, 5, -1), (0, 6, 1), (1, 7, 1)]
"""``m00 = c e^{-ia}, m01 = -s e^{ib}, m10 = s e^{-ib}, m11 = c e^{ia}`` as (product, real/imaginary part of an entry,
sign) for the products ``(c cos a, c sin a, s cos b, s sin b)``."""


def rot_constants(dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``mix (3, 3)``: ``(phi, theta, omega) -> ((phi + omega) / 2, (phi - omega) / 2, theta / 2)``; ``entries (4, 8)``:
    the products ``(c cos a, c sin a, s cos b, s sin b) ->`` the real and imaginary parts of ``Rot``'s entries."""
    key = (dtype, torch.device(device))
    if key not in _ROT_CONSTANTS:
        with torch.inference_mode(False):  # plain tensors even when first built while rendering: training saves them
            mix = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.5], [0.5, -0.5, 0.0]], dtype=dtype, device=device)
            entries = torch.zeros(4, 8, dtype=dtype, device=device)
            for row, col, sign in _ROT_ENTRIES:
                entries[row, col] = sign
        _ROT_CONSTANTS[key] = (mix, entries)
    return _ROT_CONSTANTS[key]


def rot_matrices(angles: torch.Tensor) -> torch.Tensor:
    """PennyLane ``Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)`` for angles ``(..., 3)`` -> ``(..., 2, 2)``.

    ``Rot = [[c e^{-ia}, -s e^{ib}], [s e^{-ib}, c e^{ia}]]`` with ``a = (phi + omega) / 2``, ``b = (phi - omega) / 2``,
    ``c, s = cos, sin(theta / 2)``: a handful of batched ops (every head's and layer's gates at once), each entry a
    single product, so twice differentiable and exact to the last bit of each factor."""
    return rot_matrices_with_parts(angles)[0]


def rot_matrices_with_parts(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`rot_matrices` and its parts, for a hand-written backward: ``trig`` ``(..., 3, 2)`` (cos and sin of ``a``,
    ``b``, ``theta / 2``) and ``products`` ``(..., 2, 2)`` (``c (cos a, sin a)``, ``s (cos b, sin b)``)."""
    mix, entries = rot_constants(angles.dtype, angles.device)
    half = angles @ mix  # (..., 3): a, b, theta / 2
    trig = torch.stack([torch.cos(half), torch.sin(half)], -1)  # (..., 3, 2): (cos, sin) of a, b, theta / 2
    products = trig[..., :2, :] * trig[..., 2, :, None]  # (c cos a, c sin a), (s cos b, s sin b)
    parts = products.reshape(*angles.shape[:-1], 4) @ entries  # (..., 8): re, im of m00, m01, m10, m11
    return torch.view_as_complex(parts.reshape(*angles.shape[:-1], 2, 2, 2)), trig, products


def rot_backward(grad: torch.Tensor, trig: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
    """``dL/d(phi, theta, omega)`` ``(..., 3)`` from ``dL/dRot`` ``(..., 2, 2)`` (torch's convention for complex
    gradients) and the parts of `rot_matrices_with_parts`: the chain rule through its few ops, by hand."""
    mix, entries = rot_constants(trig.dtype, trig.device)
    grad_products = (torch.view_as_real(grad).reshape(*grad.shape[:-2], 8) @ entries.T).view(products.shape)
    # d/da of c (cos a, sin a) is c (-sin a, cos a); the same for b with s
    grad_ab = products[..., 0] * grad_products[..., 1] - products[..., 1] * grad_products[..., 0]
    along = (grad_products * trig[..., :2, :]).sum(-1)  # (..., 2): sum_j dL/dproduct[r, j] trig[r, j]
    grad_t = trig[..., 2, 0] * along[..., 1] - trig[..., 2, 1] * along[..., 0]  # dc/dt = -s, ds/dt = c
    return torch.cat([grad_ab, grad_t[..., None]], dim=-1) @ mix.T


def kron_chain(mats: torch.Tensor) -> torch.Tensor:
    """Kronecker product of ``mats[..., 0, :, :] x mats[..., 1, :, :] x ...`` (first factor most significant).

    ``mats`` has shape ``(..., m, 2, 2)``; with ``m = 0`` the result is the 1x1 identity.
    """
    batch = mats.shape[:-3]
    m = mats.shape[-3]
    if m == 0:
        return torch.ones(*batch, 1, 1, dtype=mats.dtype, device=mats.device)
    out = mats[..., 0, :, :]
    for q in range(1, m):
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


ENTANGLERS = ("cz_ring", "cnot_ring", "cnot_chain")
"""Two-qubit layers after each block of ``Rot`` gates: ``cz_ring`` is ``StronglyEntanglingLayers(imprimitive=CZ)``
(the paper's QIREN), ``cnot_ring`` the same template with ``CNOT``, ``cnot_chain`` ``CNOT(i, i+1)`` for
``i = 0..n-2`` (the authors' generator circuits)."""


def check_entangler(entangler: str) -> None:
    """``ValueError`` (one line) unless ``entangler`` is one of `ENTANGLERS`."""
    if entangler not in ENTANGLERS:  # runtime.values.check_choice's message (quantum cannot import runtime)
        raise ValueError(f"entangler must be one of {ENTANGLERS}, got {entangler!r}")


def entangler_pairs(n_qubits: int, n_blocks: int, entangler: str) -> list[list[tuple[int, int]]]:
    """(control, target) pairs of every block's two-qubit gates, in application order."""
    check_entangler(entangler)
    if n_qubits < 2:
        return [[] for _ in range(n_blocks)]
    if entangler == "cnot_chain":
        return [[(i, i + 1) for i in range(n_qubits - 1)] for _ in range(n_blocks)]
    return [[(i, (i + r) % n_qubits) for i in range(n_qubits)] for r in entangler_ranges(n_qubits, n_blocks)]


@functools.lru_cache(maxsize=32)
def entangler_rows(n_qubits: int, n_blocks: int, entangler: str, device: torch.device) -> torch.Tensor:
    """What each block's entangler does to the rows of the block's unitary: the CZ ring's signs ``(K, D, 1)`` (scale
    the rows) or the CNOT chain's gather index ``(D,)`` (permute them); constants, built once per shape (as plain
    tensors even when first built while rendering: training saves them)."""
    with torch.inference_mode(False):
        if entangler == "cz_ring":
            return torch.stack([cz_ring_signs(n_qubits, r, device=device)
                                for r in entangler_ranges(n_qubits, n_blocks)])[:, :, None]
        return cnot_chain_sources(n_qubits, device=device)


def cnot_permutation(n_qubits: int, pairs: list[tuple[int, int]], device=None) -> torch.Tensor:
    """Gather index ``g`` with ``new_state[b] = state[g[b]]`` for the CNOTs ``pairs`` applied in order; ``(2**n,)``."""
    idx = torch.arange(2**n_qubits, device=device)
    gather = idx.clone()
    for control, target in pairs:
        c_bit = 1 << (n_qubits - 1 - control)
        t_bit = 1 << (n_qubits - 1 - target)
        flipped = torch.where(idx & c_bit != 0, idx ^ t_bit, idx)  # CNOT is its own inverse
        gather = gather[flipped]
    return gather


OBSERVABLE_NAMES = ("z", "zz", "z+zz", "zzz", "z+zz+zzz")
"""Named readouts: every ``<Z_j>`` (the paper's), every ``<Z_i Z_j>`` with ``i < j``, or both (more features from
the same circuit)."""


def resolve_observables(observables, n_qubits: int) -> list[tuple[int, ...]]:
    """The Z-string observables as wire tuples: a name from ``OBSERVABLE_NAMES`` or a list of wire lists."""
    singles = [(j,) for j in range(n_qubits)]
    pairs = [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits)]
    triples = [(i, j, k) for i in range(n_qubits) for j in range(i + 1, n_qubits) for k in range(j + 1, n_qubits)]
    if isinstance(observables, str):
        if observables not in OBSERVABLE_NAMES:
            raise ValueError(f"observables must be one of {OBSERVABLE_NAMES} or a list of wire lists, "
                             f"got {observables!r}")
        need = 3 if "zzz" in observables else 1 if observables == "z" else 2
        if n_qubits < need:
            raise ValueError(f"observables={observables!r} needs at least {need} qubits, the circuit has {n_qubits}")
        return {"z": singles, "zz": pairs, "z+zz": singles + pairs, "zzz": triples,
                "z+zz+zzz": singles + pairs + triples}[observables]
    try:
        wires = [tuple(int(w) for w in obs) for obs in observables]
    except (TypeError, ValueError):
        raise ValueError(f"observables must be a name {OBSERVABLE_NAMES} or a list of wire lists, "
                         f"got {observables!r}") from None
    if not wires or any(not obs for obs in wires):
        raise ValueError("observables must be a non-empty list of non-empty wire lists")
    for obs in wires:
        if len(set(obs)) != len(obs) or min(obs) < 0 or max(obs) >= n_qubits:
            raise ValueError(f"observable on wires {list(obs)} does not fit a circuit of {n_qubits} qubits "
                             f"(wires must be distinct, in 0..{n_qubits - 1})")
    return wires


def observable_signs(n_qubits: int, observables: list[tuple[int, ...]], dtype=torch.float32,
                     device=None) -> torch.Tensor:
    """``O[b, k]``: eigenvalue of ``prod_{j in observables[k]} Z_j`` on basis state ``b``; shape ``(2**n, m)``."""
    s = z_signs(n_qubits, dtype, device)
    return torch.stack([s[:, list(obs)].prod(-1) for obs in observables], -1)


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
