"""The training series' coefficients (a lean dense run of the sample points, its own graph) equal the DFT of the
heads' own simulation, and so do their gradients into the weights, in float64, for both entanglers and several
shapes."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.quantum import MultiHeadReuploadingCircuit
from qiren_gen.quantum.spectrum import differentiable_head_series, fit_series, spectrum_bases

# (heads, qubits, re-uploads, blocks, entangler, encoding_scale)
SHAPES = [
    (3, 2, 2, 2, "cnot_chain", None),
    (3, 2, 2, 2, "cz_ring", None),
    (2, 3, 2, 3, "cz_ring", None),
    (2, 3, 1, 1, "cnot_chain", "ternary"),
    (4, 1, 3, 2, "cz_ring", None),
    (2, 4, 1, 2, "cnot_chain", [[2.0, 1.0, 3.0, 1.0]]),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s[:5])))
def test_coefficients_and_their_gradients_equal_the_simulated_heads(shape):
    n_heads, n_qubits, n_reuploads, n_blocks, entangler, scale = shape
    torch.manual_seed(0)
    heads = MultiHeadReuploadingCircuit(n_heads, n_qubits, n_reuploads, n_blocks, entangler=entangler,
                                        encoding_scale=scale).double()
    bases, multiples = spectrum_bases(heads.encoding_scales, n_reuploads, n_qubits)
    axes = torch.meshgrid(*[torch.arange(2 * L + 1, dtype=torch.float64) * (2 * torch.pi / (g * (2 * L + 1)))
                            for g, L in zip(bases, multiples, strict=True)], indexing="ij")
    angles = torch.stack(axes, -1).unsqueeze(-2).expand(*axes[0].shape, n_heads, n_qubits).contiguous()
    reference = fit_series(heads(angles), bases, multiples, real_basis=False).half_coefficients  # the engine's own
    series = differentiable_head_series(heads)
    torch.testing.assert_close(series.half_coefficients, reference, rtol=0, atol=1e-12)
    probe = torch.randn(reference.shape, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    want = torch.autograd.grad((reference * probe).real.sum(), heads.weights)[0]
    got = torch.autograd.grad((series.half_coefficients * probe).real.sum(), heads.weights)[0]
    assert want.abs().max() > 1e-3  # a gradient to compare
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
