"""Finite-shot measurement and noisy execution of the circuit modules, as a device would run them.

``shots=None`` (default) is the exact expectation from the fast engines, unchanged. ``shots=N`` draws N basis
states from each circuit's exact outcome distribution (``|psi|^2``, or the diagonal of the noisy density matrix,
after readout error) and estimates *every* observable (``<Z_i>``, ``<Z_i Z_j>``, ...) from the same N samples, so the
readouts of one circuit are correlated as on hardware. Counts are drawn as a chain of binomials (exactly
multinomial), from the call's ``generator``.

Gradients: noise alone is differentiable (exact density matrices). Shots on a backward pass need ``train_shots=True``,
which uses a straight-through estimator: the forward value is the shot estimate, the gradient that of the exact
(noisy) expectation.
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .gates import observable_signs
from .mixed import circuit_probabilities
from .noise import as_noise_model

MAX_SHOTS = 10**9
"""Largest shot count accepted: beyond it the estimate equals the exact value to float32 precision anyway."""

_EPOCHS = itertools.count(1)


def check_shots(shots) -> int | None:
    """``None`` or an int in ``1..MAX_SHOTS``, else ``ValueError`` (one line)."""
    if shots is None:
        return None
    if isinstance(shots, np.integer):
        shots = int(shots)
    if isinstance(shots, bool) or not isinstance(shots, int):
        raise ValueError(f"shots must be None (exact) or an int >= 1, got {shots!r}")
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    if shots > MAX_SHOTS:
        raise ValueError(f"shots={shots} is over the limit of {MAX_SHOTS:.0e}; use shots=None for exact expectations")
    return shots


def sample_frequencies(prob: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Empirical frequencies ``counts / shots`` of ``shots`` draws from each row of ``prob`` ``(..., d)``.

    Multinomial counts as a chain of binomials, ``c_k ~ Bin(N - sum_{i<k} c_i, p_k / sum_{i>=k} p_i)``: ``d - 1``
    vectorised draws, cheap next to the simulation for any ``shots``.
    """
    p = prob.detach().to(torch.float64).clamp_min(0)
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-300)
    tail = p.flip(-1).cumsum(-1).flip(-1)  # sum_{i >= k} p_i
    remaining = torch.full(p.shape[:-1], float(shots), dtype=torch.float64, device=p.device)
    counts = []
    for k in range(p.shape[-1] - 1):
        q = torch.where(tail[..., k] > 0, p[..., k] / tail[..., k].clamp_min(1e-300), torch.zeros_like(remaining))
        c = torch.binomial(remaining, q.clamp(0, 1), generator=generator)
        counts.append(c)
        remaining = remaining - c
    counts.append(remaining)
    return (torch.stack(counts, -1) / shots).to(prob.dtype)


def observable_matrix(n_qubits: int, wires_read: list[tuple[int, ...]] | None, dtype, device) -> torch.Tensor:
    """``(2^n, m)`` eigenvalues of the read Z strings on every basis state (``None``: every ``<Z_j>``)."""
    wires = [(j,) for j in range(n_qubits)] if wires_read is None else wires_read
    return observable_signs(n_qubits, wires, dtype, device)


class MeasurementMixin:
    """Measurement settings of a circuit module (``shots``, ``noise``, ``generator``, ``train_shots``).

    Class-level defaults keep the exact path: a module measures only when `measurement` (or the attributes)
    say so. ``measured`` is the hook the modules' forwards call.
    """

    shots: int | None = None
    noise = None  # a noise.NoiseModel or None
    measurement_generator: torch.Generator | None = None
    train_shots: bool = False
    _measurement_epoch: int = 0

    @property
    def measuring(self) -> bool:
        """Whether the forward must leave the exact fast engine (finite shots or a noise model)."""
        return self.shots is not None or (self.noise is not None and not self.noise.is_noiseless)

    def measurement_key(self) -> tuple | None:
        """Identifies the current measurement setting (for caches): ``None`` when exact."""
        if not self.measuring:
            return None
        return (self.shots, self.noise, self._measurement_epoch)

    def measured(self, inputs: torch.Tensor, weights: torch.Tensor, exact: Callable[[], torch.Tensor] | None = None,
                 wires_read: list[tuple[int, ...]] | None = None, encoding_scales: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """Expectations ``(C, B, m)`` of circuits ``weights (C, R+1, K, n, 3)`` on ``inputs (C|1, B, n)``.

        ``exact`` returns the noiseless expectations from the fast engine in the same layout; it is used for the
        straight-through gradient of shots without gate noise.
        """
        grad = torch.is_grad_enabled() and (inputs.requires_grad or weights.requires_grad or (
            encoding_scales is not None and encoding_scales.requires_grad))
        noise = self.noise
        n = weights.shape[3]
        obs = observable_matrix(n, wires_read, torch.promote_types(inputs.dtype, weights.dtype), weights.device)
        gate_noise = noise is not None and noise.gate_noise
        if self.shots is None:  # noise only: exact (noisy) expectations, differentiable
            return circuit_probabilities(inputs, weights, self.entangler, encoding_scales, noise) @ obs
        with torch.no_grad():
            prob = circuit_probabilities(inputs, weights, self.entangler, encoding_scales, noise)
            estimate = sample_frequencies(prob, self.shots, self.measurement_generator) @ obs
        if not grad:
            return estimate
        if not self.train_shots:  # a forward is fine; a backward through it is refused (one line)
            tracked = [t for t in (inputs, weights, encoding_scales) if t is not None and t.requires_grad]
            return RefuseShotGradient.apply(estimate, *tracked)
        if gate_noise or exact is None:
            reference = circuit_probabilities(inputs, weights, self.entangler, encoding_scales, noise) @ obs
        else:
            reference = exact()
            if noise is not None and noise.readout > 0:
                reference = reference * (1 - 2 * noise.readout) ** torch.tensor(
                    [len(w) for w in (wires_read or [(j,) for j in range(n)])], dtype=reference.dtype,
                    device=reference.device)
        return reference + (estimate - reference).detach()


class RefuseShotGradient(torch.autograd.Function):
    """Passes shot estimates through; its backward raises: finite-shot gradients are opt-in (``train_shots``)."""

    @staticmethod
    def forward(ctx, estimate, *tracked):
        return estimate.clone()

    @staticmethod
    def backward(ctx, *grads):
        raise ValueError("finite-shot gradients need train_shots=True (--train_shots: a straight-through estimator, "
                         "shot-sampled values with exact-expectation gradients); shots=N alone is for evaluation")


def circuit_modules(model: torch.nn.Module) -> list[MeasurementMixin]:
    """Every circuit module (a `MeasurementMixin`) inside ``model`` (``model`` itself included)."""
    return [m for m in model.modules() if isinstance(m, MeasurementMixin)]


@contextlib.contextmanager
def measurement(model: torch.nn.Module, shots: int | None = None, noise=None,
                generator: torch.Generator | None = None, train_shots: bool = False) -> Iterator[None]:
    """Run every circuit of ``model`` with ``shots`` and ``noise`` inside the ``with`` block, then restore.

    ``shots=None`` and ``noise=None`` leave the exact fast path in place (the block is then a no-op).
    """
    shots = check_shots(shots)
    noise = as_noise_model(noise)
    modules = circuit_modules(model)
    saved = [(m.shots, m.noise, m.measurement_generator, m.train_shots, m._measurement_epoch) for m in modules]
    epoch = next(_EPOCHS)
    try:
        for m in modules:
            m.shots, m.noise, m.measurement_generator, m.train_shots = shots, noise, generator, bool(train_shots)
            m._measurement_epoch = epoch
        yield
    finally:
        for m, (s, nz, g, t, e) in zip(modules, saved, strict=True):
            m.shots, m.noise, m.measurement_generator, m.train_shots, m._measurement_epoch = s, nz, g, t, e


def set_measurement(model: torch.nn.Module, shots: int | None = None, noise=None,
                    generator: torch.Generator | None = None, train_shots: bool = False) -> None:
    """Set ``shots`` / ``noise`` on every circuit of ``model`` until changed (``None``, ``None``: exact again)."""
    shots = check_shots(shots)
    noise = as_noise_model(noise)
    epoch = next(_EPOCHS)
    for m in circuit_modules(model):
        m.shots, m.noise, m.measurement_generator, m.train_shots = shots, noise, generator, bool(train_shots)
        m._measurement_epoch = epoch


__all__ = ["MAX_SHOTS", "MeasurementMixin", "check_shots", "circuit_modules", "measurement", "observable_matrix",
           "sample_frequencies", "set_measurement"]


def measured_circuit_forward(circuit, inputs: torch.Tensor, simulate_reuploading: Callable) -> torch.Tensor:
    """``DataReuploadingCircuit.forward`` under its shots / noise settings: ``(..., n) -> (..., m)``
    (``simulate_reuploading``: the exact engine, for straight-through gradients)."""
    lead = inputs.shape[:-1]
    x = inputs.reshape(1, -1, circuit.n_qubits)

    def exact() -> torch.Tensor:
        return simulate_reuploading(x[0], circuit.weights, engine=circuit.engine, entangler=circuit.entangler,
                                    observables=circuit.simulator_observables(),
                                    encoding_scales=circuit.encoding_scales)[None]

    out = circuit.measured(x, circuit.weights[None], exact, circuit.wires_read, circuit.encoding_scales)
    return out[0].reshape(*lead, circuit.n_outputs)


def measured_heads_forward(heads, inputs: torch.Tensor, simulate_reuploading_heads: Callable) -> torch.Tensor:
    """``MultiHeadReuploadingCircuit.forward`` under its shots / noise settings: ``(..., H, n) -> (..., H, n)``
    (``simulate_reuploading_heads``: the exact engine, for straight-through gradients)."""
    lead = inputs.shape[:-2]
    x = inputs.reshape(-1, heads.n_heads, heads.n_qubits).transpose(0, 1)  # (H, B, n)

    def exact() -> torch.Tensor:
        return simulate_reuploading_heads(x.transpose(0, 1), heads.weights, heads.entangler, engine=heads.engine,
                                          encoding_scales=heads.encoding_scales).transpose(0, 1)

    out = heads.measured(x, heads.weights, exact, encoding_scales=heads.encoding_scales)
    return out.transpose(0, 1).reshape(*lead, heads.n_heads, heads.n_qubits)
