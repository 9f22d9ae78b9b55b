"""Exact Fourier series of re-uploading heads: evaluate the circuits as the finite trigonometric sums they are.

With ``RZ(s_r x_j)`` encodings and input-independent gates, every expectation a head reads is a finite Fourier series
in its input angles (Schuld, Sweke & Meyer 2021): upload ``r`` shifts the phase of qubit ``j`` by ``s_{r,j} x_j``
times a difference of two ``Z`` eigenvalues over two, ``k_r in {-1, 0, 1}``, so qubit ``j`` carries the frequencies
``sum_r s_{r,j} k_r``. Input-independent noise channels (linear maps between the encodings) and readout error add no
frequency, so the same holds for exact noisy expectations; finite shots are random and do not.

When a qubit's scales are integer multiples ``m_r`` of one base ``g_j`` (exactly, as rationals: the default ``RZ(x)``
and ``"ternary"`` are), its frequencies are ``k g_j`` with integer ``|k| <= L_j = sum_r m_r``. Sampling the circuit
at ``2 L_j + 1`` equispaced angles per qubit then determines the series without aliasing: one n-dimensional DFT of
``prod_j (2 L_j + 1)`` circuit runs per head gives every coefficient. `head_series` does that once per set of
weights (float64, through the module's own forward, noise included), `HeadSeries.evaluate` sums the series at
any angles, and `HeadSeries.evaluate_grid` evaluates it on a product grid of two affine coordinates, where
``exp(i w . theta)`` splits into a row factor times a column factor: one real GEMM of rank about ``D^n`` per head
instead of a simulation per point. `differentiable_head_series` keeps the graph of the circuit runs (a DFT is
linear), so a loss on the series reaches the circuit weights as through the simulator (training).
"""
from __future__ import annotations

import functools
import itertools
import math
import weakref
from dataclasses import dataclass, field
from fractions import Fraction

import torch

from .gates import encoding_phase, z_signs
from .heads import DENSE_MAX_QUBITS
from .series_runs import series_coefficients

MAX_SERIES_TERMS = 1024
"""Most terms ``prod_j (2 L_j + 1)`` a head's series may have (also its circuit runs per head for the fit); beyond
it the simulator is the cheaper evaluation and the series is not built."""

MAX_BASE_DENOMINATOR = 12
"""Largest ``q`` tried for a common base ``g = min(s) / q`` of a qubit's encoding scales."""

_EVALUATE_ENTRIES = 2**21
"""Intermediate entries (points x heads x terms) of one per-point evaluation chunk: 8 MiB of float32."""


def spectrum_bases(scales: torch.Tensor | None, n_reuploads: int, n_qubits: int
                   ) -> tuple[list[float], list[int]] | None:
    """Per qubit, the base frequency ``g_j`` and the largest multiple ``L_j`` of the circuit's spectrum, or ``None``
    when some qubit's scales are not integer multiples of one base (then the series has no common period).

    Args:
        scales: ``None`` (``RZ(x)`` at every upload: ``g = 1``, ``L = R``) or the ``(R, n)`` encoding scales.
        n_reuploads: ``R``.
        n_qubits: ``n``.
    """
    if scales is None:
        return [1.0] * n_qubits, [n_reuploads] * n_qubits
    values = scales.detach().to("cpu", torch.float64).reshape(n_reuploads, n_qubits)
    bases, multiples = [], []
    for j in range(n_qubits):
        column = [Fraction(float(v)) for v in values[:, j]]  # exact: a float is a dyadic rational
        if min(column) <= 0:
            return None
        smallest = min(column)
        for q in range(1, MAX_BASE_DENOMINATOR + 1):
            base = smallest / q
            ratios = [s / base for s in column]
            if all(r.denominator == 1 for r in ratios):
                bases.append(float(base))
                multiples.append(int(sum(ratios)))
                break
        else:
            return None
    return bases, multiples


@dataclass
class HeadSeries:
    """The exact Fourier series of ``H`` heads of ``n`` qubits reading ``m`` expectations each.

    ``head(theta)[h, o] = sum_d real_coefficients[h, d_1, .., d_n, o] prod_j t_{d_j}(g_j theta_j)`` in the real
    basis ``t = (1, cos(phi), .., cos(L phi), sin(phi), .., sin(L phi))`` per qubit, and equally
    ``Re sum_k half_coefficients[h, o, k] exp(i sum_j k_j g_j theta_j)`` over the frequencies ``k`` whose first
    non-zero entry is positive, and zero (``frequencies``; the other half are their conjugates, folded in).
    """

    bases: torch.Tensor  # (n,) float64: g_j
    multiples: list[int]  # L_j
    real_coefficients: torch.Tensor | None  # (H, D_1, ..., D_n, m) float64, in the real basis (None: not built)
    frequencies: torch.Tensor  # (K, n) float64 integer frequency vectors of the half spectrum
    half_coefficients: torch.Tensor  # (H, m, K) complex128, of the half spectrum (doubled where paired)
    key: tuple = ()
    _columns: list = field(default_factory=list)  # memo of the last column factors (grid evaluation)
    _frequency_bases: list = field(default_factory=list)  # [(device, frequencies * bases)]

    @property
    def n_heads(self) -> int:
        return self.half_coefficients.shape[0]

    @property
    def n_terms(self) -> int:
        return math.prod(2 * L + 1 for L in self.multiples)

    # ------------------------------------------------------------------------------------------ any angles
    def evaluate(self, angles: torch.Tensor) -> torch.Tensor:
        """The heads' expectations ``(..., H, m)`` at angles ``(..., H, n)``, in the angles' dtype (float32 or
        float64)."""
        lead, (n_heads, n_qubits) = angles.shape[:-2], angles.shape[-2:]
        x = angles.reshape(-1, n_heads, n_qubits)
        dtype = x.dtype
        coef = self.real_coefficients.to(device=x.device, dtype=dtype)
        m = coef.shape[-1]
        rest = coef[0, 0].numel()  # D_2 ... D_n m
        rows = max(1, _EVALUATE_ENTRIES // (n_heads * max(rest, 1)))
        out = x.new_empty(x.shape[0], n_heads, m)
        for start in range(0, x.shape[0], rows):
            out[start : start + rows] = self._evaluate_rows(x[start : start + rows], coef)
        return out.reshape(*lead, n_heads, m)

    def _evaluate_rows(self, x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        """Points on the last axis throughout, so that every elementwise pass and the GEMM run over long rows."""
        n_heads, n_qubits, n_points = x.shape[1], x.shape[2], x.shape[0]
        phi = x.permute(1, 2, 0) * self.bases.to(device=x.device, dtype=x.dtype)[:, None]  # (H, n, P)
        acc = None
        for j in range(n_qubits):
            basis = _real_basis(phi[:, j], self.multiples[j], dim=1)  # (H, D_j, P)
            if acc is None:  # the first qubit's sum: one batched GEMM over the heads
                lead = coef.reshape(n_heads, basis.shape[1], -1).transpose(1, 2)  # (H, D_2 .. D_n m, D_1)
                acc = torch.bmm(lead, basis)  # (H, D_2 .. D_n m, P)
            else:  # later qubits: weight the leading axis by the basis and sum it out
                acc = acc.reshape(n_heads, basis.shape[1], -1, n_points)
                acc = (acc * basis.unsqueeze(2)).sum(1)
        return acc.permute(2, 0, 1)  # (P, H, m)

    # ------------------------------------------------------------------------------------------ product grids
    def evaluate_grid(self, row_slope: torch.Tensor, col_slope: torch.Tensor, offset: torch.Tensor,
                      rows: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The expectations ``(U, V, H, m)`` at the angles ``offset + row_slope * rows[u] + col_slope * cols[v]``.

        ``row_slope``, ``col_slope``, ``offset`` are ``(H, n)``; ``rows`` ``(U,)``, ``cols`` ``(V,)``. The factors are
        built in float64 (phases can reach tens of radians); the rank-``2K`` GEMM per head runs in ``dtype``.
        """
        affine = torch.stack([row_slope, col_slope, offset], dim=-1)  # (H, n, 3)
        grid = self.evaluate_affine_grid(affine, rows, cols, dtype)
        return grid.reshape(*grid.shape[:2], self.n_heads, -1)

    def evaluate_affine_grid(self, affine: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                             dtype: torch.dtype) -> torch.Tensor:
        """`evaluate_grid` with the angle map as one ``(H, n, 3)`` tensor (row slope, column slope, offset per angle),
        returned point-major and contiguous, ``(U, V, H*m)``: the layout the synthesis layers read. Differentiable in
        the coefficients and the map (training) through `_GridProduct`'s hand-written backward."""
        device = rows.device
        if len(self._frequency_bases) != 1 or self._frequency_bases[0][0] != device:
            self._frequency_bases = [(device, (self.frequencies * self.bases).to(device))]
        # (H, 3, K): the phase of term k along the rows, the columns and at the origin, k . (g a_h)
        phase_map = affine.to(device, torch.float64).transpose(1, 2) @ self._frequency_bases[0][1].T
        coefficients = torch.view_as_real(self.half_coefficients.to(device))  # (H, m, K, 2)
        if torch.is_grad_enabled() and (coefficients.requires_grad or phase_map.requires_grad):
            return _GridProduct.apply(coefficients, phase_map, rows, cols, dtype)
        left = _row_factor(coefficients, phase_map, rows, dtype)[0]
        return _point_major(torch.bmm(left, self._column_factor(phase_map[:, 1], cols, dtype)), rows.numel())

    def _column_factor(self, col_w: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """`_column_factor` ``(H, 2K, V)``, remembered for the last column vector (every full-row chunk of an image
        has the same columns)."""
        for w, c, d, factor in self._columns:
            if d == dtype and w.shape == col_w.shape and c.shape == cols.shape and torch.equal(w, col_w) \
                    and torch.equal(c, cols):
                return factor
        factor = _column_factor(col_w, cols, dtype)[0]
        self._columns = [*self._columns[-1:], (col_w, cols.clone(), dtype, factor)]
        return factor


def _row_factor(coefficients: torch.Tensor, phase_map: torch.Tensor, rows: torch.Tensor, dtype: torch.dtype
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``L = c exp(i (shift + row_w rows[u]))`` with the coefficients ``c`` (``(H, m, K, 2)``: real and imaginary
    parts) folded in, its real and imaginary parts interleaved: ``(H, m U, 2K)`` in ``dtype``; also ``exp(i phi)``
    ``(H, U, K)`` (complex128, for the backward)."""
    phi = torch.addcmul(phase_map[:, None, 2], phase_map[:, None, 0], rows.to(torch.float64)[:, None])  # (H, U, K)
    phase = torch.complex(torch.cos(phi), torch.sin(phi))
    c = torch.view_as_complex(coefficients)
    if dtype == torch.float32:  # the product rounded as the float32 GEMM reads it: half the passes
        product = c.to(torch.complex64)[:, :, None] * phase.to(torch.complex64)[:, None]  # (H, m, U, K)
    else:
        product = c[:, :, None] * phase[:, None]
    left = torch.view_as_real(product).to(dtype)
    return left.reshape(left.shape[0], -1, 2 * left.shape[3]), phase


def _column_factor(col_w: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``[cos; -sin](col_w cols[v])`` interleaved per term, ``(H, 2K, V)`` in ``dtype`` (so that the GEMM with the
    row factor sums ``Re L cos - Im L sin = Re(L exp(i psi))``), and the same in float64 ``(H, K, 2, V)``."""
    psi = col_w[:, :, None] * cols.to(torch.float64)  # (H, K, V)
    factor = torch.empty(*psi.shape[:2], 2, psi.shape[2], dtype=torch.float64, device=psi.device)
    torch.cos(psi, out=factor[:, :, 0])
    torch.sin(psi, out=factor[:, :, 1]).neg_()
    return factor.reshape(psi.shape[0], -1, psi.shape[2]).to(dtype), factor


def _point_major(grid: torch.Tensor, n_rows: int) -> torch.Tensor:
    """``(H, m U, V)`` -> contiguous ``(U, V, H*m)``: one 2-D transpose (torch's blocked copy; a 4-D permute is
    several times slower)."""
    n_heads, rows_m, n_cols = grid.shape
    features = n_heads * rows_m // n_rows
    return grid.reshape(features, n_rows * n_cols).t().contiguous().view(n_rows, n_cols, features)


class _GridProduct(torch.autograd.Function):
    """``Re(sum_k c_k exp(i (shift_k + row_w_k rows[u] + col_w_k cols[v])))`` per head and output, point-major
    ``(U, V, H*m)``: the row factor times the column factor (the very ops of the no-gradient path), with a hand-written
    backward: two GEMMs and a few passes over the small factors, saved from the forward, instead of autograd's graph
    (training evaluates the series at every step). Inputs: ``c`` ``(H, m, K, 2)`` (real and imaginary parts), the
    phase map ``(H, 3, K)`` (``row_w``, ``col_w``, ``shift``); float64 factors, the GEMMs in the requested dtype."""

    @staticmethod
    def forward(ctx, coefficients, phase_map, rows, cols, dtype):
        coefficients = coefficients.contiguous()
        rows, cols = rows.to(torch.float64), cols.to(torch.float64)
        left, phase = _row_factor(coefficients, phase_map, rows, dtype)
        right, right64 = _column_factor(phase_map[:, 1], cols, dtype)
        ctx.save_for_backward(rows, cols, coefficients, left, right, phase, right64)
        return _point_major(torch.bmm(left, right), rows.numel())

    @staticmethod
    def backward(ctx, grad):
        rows, cols, coefficients, left, right, phase, right64 = ctx.saved_tensors
        n_heads, m, k = coefficients.shape[:3]
        n_rows, n_cols = rows.numel(), cols.numel()
        grad = grad.reshape(n_rows * n_cols, -1).t().contiguous().view(n_heads, m * n_rows, n_cols)  # feature-major
        # dL/d(Re L, Im L) term-major, (H, K, 2, m, U): the faster of the two GEMM orders for these shapes
        grad_left = torch.bmm(right, grad.transpose(1, 2)).to(torch.float64).view(n_heads, k, 2, m, n_rows)
        grad_right = torch.bmm(left.transpose(1, 2), grad).to(torch.float64).view(n_heads, k, 2, n_cols)
        # Columns: right = [cos; -sin](psi), psi = col_w cols.
        grad_psi = grad_right[:, :, 0] * right64[:, :, 1] - grad_right[:, :, 1] * right64[:, :, 0]  # (H, K, V)
        # Rows: L = c P, P = exp(i phi), phi = shift + row_w rows; torch's convention g = dL/dRe + i dL/dIm.
        grad_product = torch.complex(grad_left[:, :, 0], grad_left[:, :, 1])  # (H, K, m, U)
        phase = phase.transpose(1, 2)  # (H, K, U)
        grad_c = (grad_product * phase.conj()[:, :, None]).sum(-1)  # (H, K, m)
        c = torch.view_as_complex(coefficients).transpose(1, 2)  # (H, K, m)
        grad_phase = (grad_product * c.conj()[..., None]).sum(2)  # (H, K, U)
        grad_phi = (grad_phase * phase.conj()).imag  # dL/dphi = Im(g_P conj(P))
        grad_map = torch.stack([grad_phi @ rows, grad_psi @ cols, grad_phi.sum(-1)], dim=1)  # (H, 3, K), float64
        return torch.view_as_real(grad_c.transpose(1, 2).contiguous()), grad_map, None, None, None


def _real_basis(phi: torch.Tensor, multiple: int, dim: int = -1) -> torch.Tensor:
    """``(1, cos(k phi) for k=1..L, sin(k phi) for k=1..L)`` along a new axis ``dim`` (0 <= dim <= phi.ndim, or -1:
    the last), written into one buffer."""
    dim = phi.ndim if dim == -1 else dim
    out = phi.new_empty(*phi.shape[:dim], 2 * multiple + 1, *phi.shape[dim:])
    out.narrow(dim, 0, 1).fill_(1)
    if multiple:
        k = torch.arange(1, multiple + 1, dtype=phi.dtype, device=phi.device)
        angle = phi.unsqueeze(dim) * k.reshape(-1, *[1] * (phi.ndim - dim))
        torch.cos(angle, out=out.narrow(dim, 1, multiple))
        torch.sin(angle, out=out.narrow(dim, 1 + multiple, multiple))
    return out


def sample_angles(bases: list[float], multiples: list[int]) -> list[torch.Tensor]:
    """Per qubit, the ``2 L + 1`` equispaced angles ``2 pi i / (g (2 L + 1))`` over one period (float64)."""
    return [torch.arange(2 * L + 1, dtype=torch.float64) * (2 * math.pi / (g * (2 * L + 1)))
            for g, L in zip(bases, multiples, strict=False)]


def fit_series(values: torch.Tensor, bases: list[float], multiples: list[int], key: tuple = (),
               real_basis: bool = True) -> HeadSeries:
    """The series of expectations ``values`` ``(D_1, ..., D_n, H, m)`` sampled at `sample_angles` (float64);
    ``real_basis=False`` leaves out the real-basis coefficients (``evaluate`` needs them, ``evaluate_grid`` not)."""
    n_qubits = len(multiples)
    values = values.to(torch.float64)
    real = values if real_basis else None
    # Real basis: solve with each qubit's (D, D) basis matrix at its sample angles (a real DFT), axis by axis.
    per_qubit = zip(sample_angles(bases, multiples), multiples, strict=True) if real_basis else ()
    for j, (angles, L) in enumerate(per_qubit):
        basis = _real_basis(angles.to(values.device) * bases[j], L)  # (D samples, D terms)
        real = torch.tensordot(torch.linalg.inv(basis), real, dims=([1], [j]))  # the term axis comes first
        real = real.movedim(0, j)
    if real_basis:
        real = real.movedim(tuple(range(n_qubits)), tuple(range(1, n_qubits + 1)))  # (H, D_1 .. D_n, m)
    samples = values.reshape(math.prod(values.shape[:n_qubits]), -1).T  # (H*m, S)
    return _half_series(samples.reshape(*values.shape[n_qubits:], -1), bases, multiples, key, real)


@functools.lru_cache(maxsize=16)
def _half_dft(multiples: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The half-spectrum DFT as one real matrix ``(S, 2K)`` (float64, CPU) and its frequencies ``k`` (the first
    non-zero entry positive, or all zero): ``samples (.., S) @ matrix`` gives each term's coefficient, real and
    imaginary part interleaved, ``k`` and ``-k`` folded into one term of twice its weight. Row ``s`` is the
    row-major sample index ``(i_1, .., i_n)``; the n-dimensional DFT's ``exp(-2 pi i sum_j i_j k_j / D_j) / S``."""
    with torch.inference_mode(False):  # plain tensors even when first built while rendering: training saves them
        return _build_half_dft(multiples)


def _build_half_dft(multiples: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    sizes = [2 * L + 1 for L in multiples]
    half = [k for k in itertools.product(*(range(-L, L + 1) for L in multiples))
            if next((v for v in k if v != 0), 0) >= 0]
    samples = torch.tensor(list(itertools.product(*(range(d) for d in sizes))), dtype=torch.float64)  # (S, n)
    freqs = torch.tensor(half, dtype=torch.float64)  # (K, n)
    turns = torch.remainder(samples[:, None, :] * freqs, torch.tensor(sizes, dtype=torch.float64))
    angle = 2 * math.pi * (turns / torch.tensor(sizes, dtype=torch.float64)).sum(-1)  # (S, K)
    weight = torch.tensor([1.0 if not any(k) else 2.0 for k in half], dtype=torch.float64) / math.prod(sizes)
    matrix = torch.stack([torch.cos(angle) * weight, -torch.sin(angle) * weight], dim=-1)  # (S, K, 2)
    return matrix.reshape(matrix.shape[0], -1), freqs


def _half_series(samples: torch.Tensor, bases: list[float], multiples: list[int], key: tuple = (),
                 real_coefficients: torch.Tensor | None = None) -> HeadSeries:
    """The series from the expectations ``samples`` ``(H, m, S)`` at the row-major grid of `sample_angles`: one GEMM
    with `_half_dft`'s matrix (one graph node, differentiable)."""
    n_heads, m = samples.shape[:2]
    parts = samples.reshape(n_heads * m, -1) @ _half_dft(tuple(multiples))[0].to(samples.device)  # (H*m, 2K)
    return _series_of_parts(parts.view(n_heads, m, -1), bases, multiples, key, real_coefficients)


def _series_of_parts(parts: torch.Tensor, bases: list[float], multiples: list[int], key: tuple = (),
                     real_coefficients: torch.Tensor | None = None) -> HeadSeries:
    """The series whose half-spectrum coefficients are ``parts`` ``(H, m, 2K)`` (real, imaginary interleaved)."""
    return HeadSeries(bases=torch.tensor(bases, dtype=torch.float64), multiples=list(multiples),
                      real_coefficients=real_coefficients, frequencies=_half_dft(tuple(multiples))[1],
                      half_coefficients=torch.view_as_complex(parts.reshape(*parts.shape[:2], -1, 2)), key=key)


_SERIES_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Each heads module's last series, keyed by the module (kept here, not on the module: it goes with the module)."""


def head_series(heads) -> HeadSeries | None:
    """The exact Fourier series of a `MultiHeadReuploadingCircuit`'s current weights,
    measurement settings and encoding scales, or ``None`` where none applies (finite shots; scales without a common
    base; more than ``MAX_SERIES_TERMS`` terms). Built once per set of weights (compared exactly) and kept on the
    module; the circuits run in float64 through the module's own forward, so noise models are honoured.
    """
    if heads.shots is not None:
        return None
    scales = heads.encoding_scales
    key = (heads.weights.detach().clone(), None if scales is None else scales.detach().clone(), heads.noise,
           heads.entangler)
    cached = _SERIES_CACHE.get(heads)
    if cached is not None and _same_key(cached.key, key):
        return cached
    spectrum = _series_spectrum(heads)
    if spectrum is None:
        return None
    with torch.no_grad():
        series = fit_series(_sampled_heads(heads, *spectrum), *spectrum, key)
    _SERIES_CACHE[heads] = series
    return series


def differentiable_head_series(heads) -> HeadSeries | None:
    """`head_series` with the graph kept: the coefficients are a DFT (one GEMM) of the ``prod_j (2 L_j + 1)`` exact
    circuit runs of every head (`series_runs.series_coefficients`: the dense layout's unitaries, differentiable by a
    hand-written backward), so a loss on the series reaches the circuit weights exactly as through the simulator.
    Built anew at every call (the weights change every training step); ``None`` where no series applies and also for
    noise models (training keeps the simulator for those)."""
    if heads.measuring:
        return None
    spectrum = _series_spectrum(heads)
    if spectrum is None:
        return None
    if heads.n_qubits > DENSE_MAX_QUBITS:  # larger registers: the module's own (factored) simulation
        return fit_series(_sampled_heads(heads, *spectrum), *spectrum, real_basis=False)  # grids only: no real basis
    bases, multiples = spectrum
    device = heads.weights.device
    phases = _sample_phases(bases, multiples, heads.encoding_scales, heads.n_reuploads, device)  # (R, S, D)
    readout = _readout_dft(tuple(multiples), heads.n_qubits, device)  # (S D, n 2K): every <Z_j>, its DFT
    parts = series_coefficients(heads.weights.to(torch.float64), heads.entangler, phases, readout)
    return _series_of_parts(parts.view(heads.n_heads, heads.n_qubits, -1), bases, multiples)


@functools.lru_cache(maxsize=8)
def _readout_dft(multiples: tuple[int, ...], n_qubits: int, device: torch.device) -> torch.Tensor:
    """``W[(s, d), (j, t)] = Z_j(d) M[s, t]``: the probabilities of the sample runs ``(.., S D)`` to every ``<Z_j>``'s
    half-spectrum coefficients ``(.., n 2K)`` (`_half_dft`'s ``M``) in one GEMM."""
    with torch.inference_mode(False):  # plain tensors even when first built while rendering: training saves them
        matrix = _half_dft(multiples)[0].to(device)  # (S, 2K)
        signs = z_signs(n_qubits, torch.float64, device)  # (D, n)
        return (matrix[:, None, None, :] * signs[None, :, :, None]).reshape(matrix.shape[0] * signs.shape[0], -1)


_PHASES: dict = {}
"""`_sample_phases` memo: ``key -> (R, S, D)`` complex128 constants (a few, one per spectrum and set of scales)."""


def _sample_phases(bases: list[float], multiples: list[int], scales: torch.Tensor | None, n_reuploads: int,
                   device: torch.device) -> torch.Tensor:
    """The RZ encoding phase of each upload at the row-major grid of `sample_angles`, ``(R, S, D)`` complex128; as
    the simulator builds it (angles times the upload's scales, in float64)."""
    scale_key = None if scales is None else tuple(scales.detach().to("cpu", torch.float64).flatten().tolist())
    key = (tuple(bases), tuple(multiples), scale_key, n_reuploads, str(device))
    if key not in _PHASES:
        _PHASES[key] = _build_sample_phases(bases, multiples, scales, n_reuploads, device)
    return _PHASES[key]


def _build_sample_phases(bases, multiples, scales, n_reuploads: int, device) -> torch.Tensor:
    with torch.inference_mode(False):
        axes = [a.to(device) for a in sample_angles(bases, multiples)]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(axes))  # (S, n)
        if scales is None:
            phases = encoding_phase(grid).expand(n_reuploads, -1, -1)
        else:
            upload = scales.detach().to(device, torch.float64).expand(n_reuploads, len(axes))
            phases = torch.stack([encoding_phase(grid * upload[r]) for r in range(n_reuploads)])
    if len(_PHASES) >= 8:
        _PHASES.clear()
    return phases


def _series_spectrum(heads) -> tuple[list[float], list[int]] | None:
    """The heads' ``(bases, multiples)``, or ``None`` without a common base or past ``MAX_SERIES_TERMS`` terms."""
    spectrum = spectrum_bases(heads.encoding_scales, heads.n_reuploads, heads.n_qubits)
    if spectrum is None or math.prod(2 * L + 1 for L in spectrum[1]) > MAX_SERIES_TERMS:
        return None
    return spectrum


def _sampled_heads(heads, bases: list[float], multiples: list[int]) -> torch.Tensor:
    """The heads' expectations ``(D_1, .., D_n, H, m)`` at `sample_angles`, in float64 (the weights are
    promoted), through the module's own forward."""
    axes = [a.to(heads.weights.device) for a in sample_angles(bases, multiples)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (D_1, .., D_n, n)
    inputs = grid.unsqueeze(-2).expand(*grid.shape[:-1], heads.n_heads, heads.n_qubits)
    return heads(inputs.contiguous())


def _same_key(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=False):
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dtype == y.dtype
                    and x.device == y.device and x.shape == y.shape and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


__all__ = ["MAX_SERIES_TERMS", "HeadSeries", "differentiable_head_series", "fit_series", "head_series", "sample_angles",
           "spectrum_bases"]
