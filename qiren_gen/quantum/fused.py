"""Chunked forward and hand-written backward of the re-uploading circuit (the fast engine).

Autograd over the plain simulator keeps every intermediate state of the whole batch alive and streams each through
memory several times; at large batches that is memory-bound. Here the batch is processed in chunks small enough to
stay in cache: the forward saves only its inputs, and the backward recomputes each chunk's states and applies the
adjoint rules by hand (GEMMs with ``A^H``, phase gradient ``Im(conj(g) * y)``). Not twice differentiable: use the
``"autograd"`` engine for higher-order gradients.

Gradient convention is torch's for complex tensors: ``g = dL/dRe + i dL/dIm``.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .state import permute_basis, readout

CPU_CHUNK_AMPLITUDES = 2**18
"""Amplitudes per chunk on the CPU: 2 MiB of complex64, which keeps a chunk's working set in L2/L3."""

GPU_CHUNK_AMPLITUDES = 2**26
"""On GPUs big launches win; chunk only to bound memory."""


def chunk_rows(n_amplitudes: int, device: torch.device) -> int:
    """Rows (samples) per chunk for a state of ``n_amplitudes`` on ``device``."""
    budget = CPU_CHUNK_AMPLITUDES if device.type == "cpu" else GPU_CHUNK_AMPLITUDES
    return max(1, budget // n_amplitudes)


def _phases(x: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, complex_dtype: torch.dtype) -> torch.Tensor:
    """``exp(-i/2 sum_j x_j s_j(b))`` laid out as ``(d1, rows, d2)``: an outer product of two small phase vectors."""
    half1 = (s1 @ x[:, : s1.shape[1]].T) / 2  # (d1, rows)
    half2 = (x[:, s1.shape[1] :] @ s2.T) / 2  # (rows, d2)
    p1 = torch.complex(torch.cos(half1), -torch.sin(half1)).to(complex_dtype)
    p2 = torch.complex(torch.cos(half2), -torch.sin(half2)).to(complex_dtype)
    return p1.unsqueeze(-1) * p2.unsqueeze(0)


def _shared_angles(x: torch.Tensor) -> bool:
    """True when every upload uses the same angles (an expanded view, stride 0): one phase serves all layers."""
    return x.shape[1] == 1 or x.stride(1) == 0


def run_layers(state: torch.Tensor, phases: list[torch.Tensor], n_blocks: int, block_step, keep: bool):
    """The layer loop of the chunked engines: each layer's encoding phase, then its ``n_blocks`` blocks through
    ``block_step(state, layer, block, last) -> (state, intermediate, tag)``. Returns the final state and, with
    ``keep``, the record the backward replays in reverse: ``("phase", layer, state)`` and ``("block", layer, block,
    state before, intermediate, tag)``."""
    record = []
    n_layers = len(phases)
    for layer in range(n_layers):
        state = state * phases[layer]
        if keep:
            record.append(("phase", layer, state))
        for block in range(n_blocks):
            before = state
            state, t, tag = block_step(state, layer, block, layer == n_layers - 1 and block == n_blocks - 1)
            if keep:
                record.append(("block", layer, block, before, t, tag))
    return state, record


def chunked_forward(ctx, x: torch.Tensor, dim: int, rows: int, run_chunk, readout, out: torch.Tensor) -> torch.Tensor:
    """The forward of the chunked engines: ``run_chunk(chunk, keep)`` on chunks of ``rows`` rows of ``x`` along
    ``dim``, ``readout(final state)`` written into ``out`` along the same axis. With a single chunk and a backward to
    come, its run is kept on ``ctx`` (`kept_or_rerun`) instead of being recomputed."""
    n_rows = x.shape[dim]
    keep = n_rows <= rows and any(ctx.needs_input_grad)
    ctx.kept = None
    for start in range(0, n_rows, rows):
        size = min(rows, n_rows - start)
        run = run_chunk(x.narrow(dim, start, size), keep)
        out.narrow(dim, start, size).copy_(readout(run[0]))
        if keep:
            ctx.kept = run
    return out


def kept_or_rerun(ctx, run_chunk, *args, **kwargs):
    """In a chunked backward: the run the forward kept (handed over once), else ``run_chunk(*args, **kwargs)`` anew."""
    kept, ctx.kept = ctx.kept, None
    return kept if kept is not None else run_chunk(*args, **kwargs)


def _run_chunk(x, v1, a, b, ent, s1, s2, keep: bool):
    """Forward of one chunk (``x``: ``(rows, R, n)``). Returns the final state, the phases and, if ``keep``, what
    the backward needs."""
    n_layers, n_blocks = a.shape[:2]
    permuting = ent.dtype == torch.long
    if _shared_angles(x):
        phases = [_phases(x[:, 0], s1, s2, v1.dtype)] * n_layers
    else:
        phases = [_phases(x[:, layer], s1, s2, v1.dtype) for layer in range(n_layers)]

    def block_step(state, layer, block, last):
        d1, rows, d2 = state.shape
        t = (state.reshape(d1 * rows, d2) @ b[layer, block].T).reshape(d1, rows, d2)
        state = (a[layer, block] @ t.reshape(d1, rows * d2)).reshape(d1, rows, d2)
        # A final CZ ring cannot change |psi|^2: skipped; a CNOT layer permutes it, so it stays.
        op = None if (last and not permuting) else ent[block]
        if op is not None:
            state = permute_basis(state, op) if permuting else state * op
        return state, t, op

    state, record = run_layers(v1, phases, n_blocks, block_step, keep)
    return state, phases, record


def _readout_grad(go: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, obs, d1: int, d2: int) -> torch.Tensor:
    """``dL/d|psi_b|^2`` laid out as ``(d1, rows, d2)`` from the output gradient ``go`` ``(rows, m)``."""
    if obs is None:
        first = s1.shape[1]
        return (s1 @ go[:, :first].T).unsqueeze(-1) + (go[:, first:] @ s2.T).unsqueeze(0)
    return (go @ obs.T).reshape(go.shape[0], d1, d2).transpose(0, 1)


class FusedReuploading(torch.autograd.Function):
    """Expectations of ``[phase(x_r); SEL blocks]`` repeated, starting from state ``v1``; chunked, memory-lean."""

    @staticmethod
    def forward(ctx, x, v1, a, b, ent, s1, s2, obs):
        """x: (B, R, n) real angles per upload; v1: (d1, 1, d2) complex; a: (R, K, d1, d1); b: (R, K, d2, d2);
        ent: CZ signs (K, d1, 1, d2) or CNOT gathers (K, 2**n) long; obs: None (every <Z_j>) or (2**n, m)."""
        ctx.save_for_backward(x, v1, a, b, ent, s1, s2, obs)
        n_out = x.shape[2] if obs is None else obs.shape[1]
        out = torch.empty(x.shape[0], n_out, dtype=x.dtype, device=x.device)
        return chunked_forward(ctx, x, 0, chunk_rows(v1.numel(), x.device),
                               lambda chunk, keep: _run_chunk(chunk, v1, a, b, ent, s1, s2, keep=keep),
                               lambda state: readout(state, s1, s2, obs), out)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, v1, a, b, ent, s1, s2, obs = ctx.saved_tensors
        first = s1.shape[1]
        d1, d2 = v1.shape[0], v1.shape[2]
        rows = chunk_rows(v1.numel(), x.device)
        permuting = ent.dtype == torch.long
        shared = _shared_angles(x)
        inverse = [torch.argsort(g) for g in ent] if permuting else None
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_v1 = torch.zeros_like(v1)
        grad_a = torch.zeros_like(a)
        grad_b = torch.zeros_like(b)
        for start in range(0, x.shape[0], rows):
            xc = x[start : start + rows]
            state, phases, record = kept_or_rerun(ctx, _run_chunk, xc, v1, a, b, ent, s1, s2, keep=True)
            conj = ([phases[0].conj().resolve_conj()] * len(phases) if shared
                    else [p.conj().resolve_conj() for p in phases])
            go = 2 * grad_out[start : start + rows]
            # d|psi|^2 = 2 Re(conj(psi) dpsi): the 2 is folded into go.
            g = _readout_grad(go, s1, s2, obs, d1, d2) * state
            grad_angle = {}
            for item in reversed(record):
                if item[0] == "block":
                    _, layer, block, before, t, op = item
                    if op is not None:
                        g = permute_basis(g, inverse[block]) if permuting else g * op
                    d1, n_rows, d2 = g.shape
                    g_flat = g.reshape(d1, n_rows * d2)
                    grad_a[layer, block] += g_flat @ t.reshape(d1, n_rows * d2).conj().T
                    g_t = (a[layer, block].conj().T @ g_flat).reshape(d1 * n_rows, d2)
                    grad_b[layer, block] += (before.reshape(d1 * n_rows, d2).conj().T @ g_t).T
                    g = (g_t @ b[layer, block].conj()).reshape(d1, n_rows, d2)
                else:  # y = s * phase with phase = exp(-i angle): dL/dangle = Im(conj(g_y) y)
                    _, layer, y = item
                    key = 0 if shared else layer  # shared angles: one sum, one readout GEMM below
                    contribution = (g.conj() * y).imag
                    grad_angle[key] = contribution if key not in grad_angle else grad_angle[key] + contribution
                    g = g * conj[layer]
            grad_v1 += g.sum(1, keepdim=True)
            if grad_x is not None:
                # angle = (s1 . x1 + s2 . x2) / 2 over the (d1, rows, d2) layout, for each upload.
                for layer, ga in grad_angle.items():
                    grad_x[start : start + rows, layer, :first] = (ga.sum(2).T @ s1) / 2
                    grad_x[start : start + rows, layer, first:] = (ga.sum(0) @ s2) / 2
        return grad_x, grad_v1, grad_a, grad_b, None, None, None, None
