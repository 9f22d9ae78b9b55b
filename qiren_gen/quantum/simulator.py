"""Batched exact state-vector simulation of the QIREN data re-uploading circuit in plain torch.

The circuit is ``[SEL(W_r); RZ(x_j) on every qubit] for r = 1..R``, then ``SEL(W_{R+1})``, reading ``<Z_j>``.
Structure used (docs/simulator.md explains it):

* the qubits are split into two groups, so a state is held as a ``(d1, B, d2)`` tensor; one block's
  ``Rot x ... x Rot`` is then two plain GEMMs (``d2 x d2`` on the last axis, ``d1 x d1`` on the first),
  never a dense ``2^n x 2^n`` unitary, and no transposes are needed;
* a CZ ring is a diagonal of +-1 (a broadcast multiply); the last layer's ring is skipped because it cannot change
  ``|psi|^2``;
* ``RZ`` encoding is diagonal and separable: the phase of basis state ``b`` is ``p1(b_group1) * p2(b_group2)``;
* the first layer acts on the fixed ``|0...0>`` and is computed once per call, not once per sample.
"""
from __future__ import annotations

import torch

from .fused import FusedReuploading
from .gates import (
    cnot_permutation,
    cz_ring_signs,
    entangler_pairs,
    entangler_ranges,
    kron_chain,
    observable_signs,
    rot_matrices,
    z_signs,
)
from .state import permute_basis, readout

MAX_QUBITS = 20
"""Largest supported register: one float32 state of 20 qubits is 8 MiB per sample, so larger is impractical."""

DEFAULT_MAX_STATE_ELEMENTS = 2**31
"""Amplitudes one call may hold at once (batch x 2^n); about 16 GiB in complex64. Larger calls must be chunked."""


def split_qubits(n_qubits: int) -> tuple[int, int]:
    """Qubits in the first (most significant) and second group of the ``(d1, B, d2)`` layout."""
    first = n_qubits // 2
    return first, n_qubits - first


def check_circuit_size(n_qubits: int, n_reuploads: int, n_blocks: int) -> None:
    """Raise ``ValueError`` for circuit sizes that are meaningless or cannot be simulated."""
    for name, value, low in (("n_qubits", n_qubits, 1), ("n_reuploads", n_reuploads, 1), ("n_blocks", n_blocks, 1)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if n_qubits > MAX_QUBITS:
        raise ValueError(
            f"n_qubits={n_qubits} is too large to simulate: memory grows as 2**n_qubits per sample "
            f"(supported: 1..{MAX_QUBITS})"
        )


def check_inputs(inputs: torch.Tensor, n_qubits: int, max_state_elements: int = DEFAULT_MAX_STATE_ELEMENTS) -> None:
    """Raise ``ValueError`` for inputs the circuit cannot encode: wrong last dimension, non-float, NaN/inf, too big."""
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise ValueError(f"inputs must be a real floating tensor (float32/float64), got dtype {inputs.dtype}")
    if inputs.ndim == 0 or inputs.shape[-1] != n_qubits:
        raise ValueError(
            f"inputs must have shape (..., {n_qubits}) (one angle per qubit), got {tuple(inputs.shape)}"
        )
    batch = inputs.numel() // n_qubits
    if batch * 2**n_qubits > max_state_elements:
        raise ValueError(
            f"a batch of {batch} states of {n_qubits} qubits needs {batch * 2**n_qubits} amplitudes, "
            f"over the limit of {max_state_elements}; split the batch into chunks"
        )
    if batch and not bool(torch.isfinite(inputs).all()):
        raise ValueError("inputs contain NaN or inf")


def group_factors(weights: torch.Tensor, first: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-block Kronecker factors ``A`` (the first ``first`` qubits) and ``B`` (the rest) of weights
    ``(..., R+1, K, n, 3)``: ``(..., R+1, K, d, d)`` each, every block's ``Rot`` gates in one batched pass."""
    rots = rot_matrices(weights)  # (..., R+1, K, n, 2, 2)
    return kron_chain(rots[..., :first, :, :]), kron_chain(rots[..., first:, :, :])


def _apply_block(state: torch.Tensor, a: torch.Tensor, b: torch.Tensor, signs: torch.Tensor | None) -> torch.Tensor:
    """Apply ``diag(signs) (A x B)`` to a ``(d1, B, d2)`` state with two GEMMs and one broadcast multiply."""
    d1, batch, d2 = state.shape
    state = (state.reshape(d1 * batch, d2) @ b.transpose(0, 1)).reshape(d1, batch, d2)
    state = (a @ state.reshape(d1, batch * d2)).reshape(d1, batch, d2)
    if signs is not None:
        state = state * signs
    return state


def _entangler_tensors(n_qubits: int, n_blocks: int, entangler: str, real: torch.dtype, device) -> torch.Tensor:
    """Per-block entangler: CZ-ring sign diagonals ``(K, d1, 1, d2)`` (real) or CNOT gather indices ``(K, 2**n)``
    (long)."""
    first, second = split_qubits(n_qubits)
    if entangler == "cz_ring":
        return torch.stack([cz_ring_signs(n_qubits, r, device=device).to(real).reshape(2**first, 1, 2**second)
                            for r in entangler_ranges(n_qubits, n_blocks)])
    return torch.stack([cnot_permutation(n_qubits, pairs, device)
                        for pairs in entangler_pairs(n_qubits, n_blocks, entangler)])


def apply_entangler(state: torch.Tensor, ent: torch.Tensor) -> torch.Tensor:
    """One block's entangler from ``_entangler_tensors``: a sign multiply (CZ) or a basis permutation (CNOT)."""
    return permute_basis(state, ent) if ent.dtype == torch.long else state * ent


ENGINES = ("fused", "autograd")
"""The simulator's engines: ``fused`` (chunked, hand-written backward) and ``autograd`` (plain torch ops); every
circuit and decoder that takes ``engine`` checks it with `check_engine`."""


def check_engine(engine: str) -> None:
    """``ValueError`` (one line) unless ``engine`` is one of `ENGINES`."""
    if engine not in ENGINES:  # runtime.values.check_choice's message (quantum cannot import runtime)
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def simulate_reuploading(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    engine: str = "fused",
    entangler: str = "cz_ring",
    observables: list[tuple[int, ...]] | None = None,
    encoding_scales: torch.Tensor | None = None,
) -> torch.Tensor:
    """Expectation values of the QIREN circuit for every row of ``inputs``.

    Args:
        inputs: real tensor ``(..., n)``: the RZ angle for each qubit (validated by the caller).
        weights: real tensor ``(R + 1, K, n, 3)`` in ``StronglyEntanglingLayers`` layout, ``R >= 1``.
        engine: ``"fused"`` (chunked, hand-written backward; fastest, once differentiable) or ``"autograd"``
            (plain torch ops; supports higher-order gradients, e.g. second-order meta-learning). Both support every
            option below.
        entangler: one of ``gates.ENTANGLERS`` (default ``"cz_ring"``, the paper's).
        observables: Z-string observables as wire tuples (``gates.resolve_observables``); ``None`` reads every
            ``<Z_j>`` (the paper's).
        encoding_scales: ``None`` (the paper's ``RZ(x_j)``) or a real tensor broadcastable to ``(R, n)``: upload
            ``r`` applies ``RZ(lambda[r, j] * x_j)`` (the encoding Hamiltonian's eigenvalues); differentiable.

    Returns:
        real tensor ``(..., m)`` (``m = n`` for ``<Z_j>``, else ``len(observables)``) in the promoted dtype of inputs
        and weights; differentiable in inputs, weights and scales.
    """
    check_engine(engine)
    n_layers, n_blocks, n_qubits, _ = weights.shape
    real = torch.promote_types(inputs.dtype, weights.dtype)
    device = weights.device
    lead = inputs.shape[:-1]
    x = inputs.reshape(-1, n_qubits).to(real)
    weights = weights.to(real)
    first, second = split_qubits(n_qubits)
    d1, d2 = 2**first, 2**second
    # Angles per upload: (B, R, n); the same x every upload unless scaled.
    if encoding_scales is None:
        angles = x.unsqueeze(1).expand(-1, n_layers - 1, -1)
    else:
        angles = x.unsqueeze(1) * encoding_scales.to(real).expand(n_layers - 1, n_qubits).unsqueeze(0)

    a, b = group_factors(weights, first)
    ent = _entangler_tensors(n_qubits, n_blocks, entangler, real, device)
    s1 = z_signs(first, real, device)  # (d1, first)
    s2 = z_signs(second, real, device)  # (d2, second)
    obs = None if observables is None else observable_signs(n_qubits, observables, real, device)
    n_out = n_qubits if obs is None else obs.shape[1]

    # Layer 1 acts on |0...0>: compute it once (it carries its entanglers, as more layers follow).
    v1 = torch.zeros(d1, 1, d2, dtype=a.dtype, device=device)
    v1[0, 0, 0] = 1
    for block in range(n_blocks):
        v1 = apply_entangler(_apply_block(v1, a[0, block], b[0, block], None), ent[block])

    if engine == "fused":
        out = FusedReuploading.apply(angles, v1, a[1:], b[1:], ent, s1, s2, obs)
        return out.reshape(*lead, n_out)

    state = v1
    for layer in range(1, n_layers):
        half1 = (angles[:, layer - 1, :first] @ s1.T) / 2  # (B, d1)
        half2 = (angles[:, layer - 1, first:] @ s2.T) / 2  # (B, d2)
        # RZ(x) on all qubits: phase exp(-i/2 sum_j x_j s_j(b)), separable over the two groups.
        p1 = torch.complex(torch.cos(half1), -torch.sin(half1)).T.unsqueeze(-1)  # (d1, B, 1)
        p2 = torch.complex(torch.cos(half2), -torch.sin(half2)).unsqueeze(0)  # (1, B, d2)
        state = state * p1 * p2
        for block in range(n_blocks):
            state = _apply_block(state, a[layer, block], b[layer, block], None)
            # A final CZ ring is diagonal, so it cannot change the measured probabilities: skipped.
            if not (layer == n_layers - 1 and block == n_blocks - 1 and ent.dtype != torch.long):
                state = apply_entangler(state, ent[block])
    return readout(state, s1, s2, obs).reshape(*lead, n_out)
