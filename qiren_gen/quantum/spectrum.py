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

import itertools
import math
import weakref
from dataclasses import dataclass, field
from fractions import Fraction

import torch

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
        device = rows.device
        freqs = self.frequencies.to(device)
        g = self.bases.to(device)
        row_w = (row_slope.to(device, torch.float64) * g) @ freqs.T  # (H, K): k . (g a_h)
        col_w = (col_slope.to(device, torch.float64) * g) @ freqs.T
        shift = (offset.to(device, torch.float64) * g) @ freqs.T
        coefficients = self.half_coefficients.to(device)
        n_heads, m, n_rows = coefficients.shape[0], coefficients.shape[1], rows.numel()
        if torch.is_grad_enabled() and any(t.requires_grad for t in (coefficients, row_w, col_w, shift)):
            out = _GridProduct.apply(coefficients.real, coefficients.imag, row_w, col_w, shift, rows, cols, dtype)
        else:
            out = torch.bmm(_row_factor(coefficients.real, coefficients.imag, row_w, shift, rows, dtype),
                            self._column_factor(col_w, cols, dtype))
        return out.reshape(n_heads, m, n_rows, -1).permute(2, 3, 0, 1)

    def _column_factor(self, col_w: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``[cos; sin](col_w x cols)`` ``(H, 2K, V)``, remembered for the last column vector (every full-row chunk
        of an image has the same columns)."""
        for w, c, d, factor in self._columns:
            if d == dtype and w.shape == col_w.shape and c.shape == cols.shape and torch.equal(w, col_w) \
                    and torch.equal(c, cols):
                return factor
        factor = _column_factor(col_w, cols, dtype)
        self._columns = [*self._columns[-1:], (col_w, cols.clone(), dtype, factor)]
        return factor


def _row_factor(c_re: torch.Tensor, c_im: torch.Tensor, row_w: torch.Tensor, shift: torch.Tensor, rows: torch.Tensor,
                dtype: torch.dtype) -> torch.Tensor:
    """``c exp(i (shift + row_w rows[u]))`` with the coefficients ``c`` (``(H, m, K)`` real and imaginary parts)
    folded in, as its real part and minus its imaginary part side by side: ``(H, m U, 2K)`` in ``dtype``."""
    row_phase = shift[:, None, :] + row_w[:, None, :] * rows.to(torch.float64)[None, :, None]  # (H, U, K)
    cos, sin = torch.cos(row_phase)[:, None], torch.sin(row_phase)[:, None]  # (H, 1, U, K)
    c_re, c_im = c_re[:, :, None], c_im[:, :, None]  # (H, m, 1, K)
    left = torch.cat([c_re * cos - c_im * sin, -(c_re * sin + c_im * cos)], dim=-1)
    return left.reshape(left.shape[0], -1, left.shape[-1]).to(dtype)


def _column_factor(col_w: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[cos; sin](col_w cols[v])``: ``(H, 2K, V)`` in ``dtype``."""
    angle = col_w[:, :, None] * cols.to(torch.float64)[None, None, :]  # (H, K, V)
    return torch.cat([torch.cos(angle), torch.sin(angle)], dim=1).to(dtype)


class _GridProduct(torch.autograd.Function):
    """``Re(sum_k c_k exp(i (shift_k + row_w_k rows[u] + col_w_k cols[v])))`` per head and output, ``(H, m U, V)``:
    the row factor times the column factor (the very ops of the no-gradient path), with a hand-written backward:
    two GEMMs and a few passes over the small factors instead of autograd's graph of some forty nodes (training
    evaluates the series at every step). Gradients w.r.t. ``c`` (real and imaginary parts), ``row_w``, ``col_w`` and
    ``shift``; float64 factors, the GEMMs in the requested dtype."""

    @staticmethod
    def forward(ctx, c_re, c_im, row_w, col_w, shift, rows, cols, dtype):
        left = _row_factor(c_re, c_im, row_w, shift, rows, dtype)
        right = _column_factor(col_w, cols, dtype)
        ctx.save_for_backward(c_re, c_im, row_w, col_w, shift, rows, cols, left, right)
        return torch.bmm(left, right)

    @staticmethod
    def backward(ctx, grad):
        c_re, c_im, row_w, col_w, shift, rows, cols, left, right = ctx.saved_tensors
        n_heads, m, k = c_re.shape
        rows64, cols64 = rows.to(torch.float64), cols.to(torch.float64)
        grad_left = torch.bmm(grad, right.transpose(1, 2)).to(torch.float64).reshape(n_heads, m, -1, 2 * k)
        grad_right = torch.bmm(left.transpose(1, 2), grad).to(torch.float64)  # (H, 2K, V)
        # Columns: right = [cos; sin](psi), psi = col_w cols.
        psi = col_w[:, :, None] * cols64[None, None, :]
        grad_psi = torch.cos(psi) * grad_right[:, k:] - torch.sin(psi) * grad_right[:, :k]
        grad_col_w = grad_psi @ cols64
        # Rows: left = [Re L, -Im L] with L = c P, P = exp(i phi), phi = shift + row_w rows.
        g_re, g_im = grad_left[..., :k], -grad_left[..., k:]  # dL/dRe L, dL/dIm L: (H, m, U, K)
        phi = shift[:, None, :] + row_w[:, None, :] * rows64[None, :, None]  # (H, U, K)
        p_re, p_im = torch.cos(phi), torch.sin(phi)
        grad_c_re = (g_re * p_re[:, None] + g_im * p_im[:, None]).sum(2)  # Re L = c_re p_re - c_im p_im, ...
        grad_c_im = (g_im * p_re[:, None] - g_re * p_im[:, None]).sum(2)  # ... Im L = c_re p_im + c_im p_re
        grad_p_re = (g_re * c_re[:, :, None] + g_im * c_im[:, :, None]).sum(1)  # (H, U, K)
        grad_p_im = (g_im * c_re[:, :, None] - g_re * c_im[:, :, None]).sum(1)
        grad_phi = p_re * grad_p_im - p_im * grad_p_re
        grad_shift = grad_phi.sum(1)
        grad_row_w = (grad_phi * rows64[None, :, None]).sum(1)
        return grad_c_re, grad_c_im, grad_row_w, grad_col_w, grad_shift, None, None, None


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
    # Complex: the n-dimensional DFT; index i of axis j is the frequency i (i <= L) or i - D.
    spectrum = torch.fft.fftn(values, dim=tuple(range(n_qubits))) / math.prod(values.shape[:n_qubits])
    half, weights, index = [], [], []
    for flat, idx in enumerate(itertools.product(*(range(2 * L + 1) for L in multiples))):
        k = tuple(i if i <= L else i - (2 * L + 1) for i, L in zip(idx, multiples, strict=False))
        first = next((v for v in k if v != 0), 0)
        if first >= 0:
            half.append(k)
            weights.append(1.0 if first == 0 else 2.0)  # k and -k are conjugates: one term, twice its real part
            index.append(flat)
    # One gather of the half spectrum (row-major flat indices), (K, H, m) -> (H, m, K): one graph node, not K.
    flat_spectrum = spectrum.reshape(-1, *spectrum.shape[n_qubits:])
    picked = flat_spectrum[torch.tensor(index, device=values.device)].movedim(0, -1)
    picked = picked * torch.tensor(weights, dtype=torch.float64, device=values.device)
    return HeadSeries(bases=torch.tensor(bases, dtype=torch.float64), multiples=list(multiples), real_coefficients=real,
                      frequencies=torch.tensor(half, dtype=torch.float64), half_coefficients=picked, key=key)


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
    """`head_series` with the graph kept: the coefficients are a DFT of the ``prod_j (2 L_j + 1)`` circuit runs
    through the module's own differentiable forward, so a loss on the series reaches the circuit weights exactly as
    through the simulator. Built anew at every call (the weights change every training step); ``None`` where no
    series applies and also for noise models (training keeps the simulator for those)."""
    if heads.measuring:
        return None
    spectrum = _series_spectrum(heads)
    if spectrum is None:
        return None
    return fit_series(_sampled_heads(heads, *spectrum), *spectrum, real_basis=False)  # grids only: no real basis


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
