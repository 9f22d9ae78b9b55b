"""The fused synthesis layers equal the plain StyleGAN2 math, outputs and gradients, in float64.

The reference (``plain_synthesis`` in conftest) is written from the formulas (modulate, demodulate, einsum, times
sqrt(2), plus bias, ReLU), independently of the decoder's fused code.
"""
from __future__ import annotations

import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.models import FeatureSynthesisDecoder


@pytest.mark.parametrize("modulation", ["weight", "shift", "film"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-grid", "per-sample-coords"])
def test_fused_layers_match_the_plain_math_in_float64(modulation, shared, plain_synthesis):
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(out_channels=3, n_heads=4, n_qubits=2, hidden_features=16, hidden_layers=3,
                                      modulation=modulation).double()
    batch = 3
    coords = image_grid(5, 6, dtype=torch.float64)
    if not shared:
        coords = coords[None].repeat(batch, 1, 1) + 0.01 * torch.randn(batch, 30, 2, dtype=torch.float64)
    modulations = (0.5 * torch.randn(batch, decoder.modulation_dim, dtype=torch.float64)).requires_grad_(True)
    probe = torch.randn(batch, 30, 3, dtype=torch.float64)
    params = [modulations, *decoder.parameters()]

    out = decoder(coords, modulations)
    grads = torch.autograd.grad((out * probe).sum(), params, allow_unused=True)

    stats = decoder.reference_statistics()
    features = decoder._features(coords, stats)
    expected = plain_synthesis(decoder, features, modulations)
    expected_grads = torch.autograd.grad((expected * probe).sum(), params, allow_unused=True)

    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-12)
    named = [("modulations", None), *decoder.named_parameters()]
    for (name, _), got, want in zip(named, grads, expected_grads, strict=True):
        assert (got is None) == (want is None), name
        if got is not None:
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-12, msg=name)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-grid", "per-sample-coords"])
def test_cache_blocked_rendering_equals_the_batched_layers(shared, plain_synthesis):
    """Without gradients on the CPU the layers run block by block per image; same numbers, blocks cut mid-grid."""
    from qiren_gen.models import synthesis

    torch.manual_seed(1)
    decoder = FeatureSynthesisDecoder(out_channels=2, n_heads=4, n_qubits=2, hidden_features=16, hidden_layers=2,
                                      modulation="weight").double()
    coords = image_grid(9, 11, dtype=torch.float64)
    if not shared:
        coords = coords[None].repeat(2, 1, 1) + 0.01 * torch.randn(2, 99, 2, dtype=torch.float64)
    modulations = 0.5 * torch.randn(2, decoder.modulation_dim, dtype=torch.float64)
    with_grad = decoder(coords, modulations)
    block_bytes, synthesis.SYNTHESIS_BLOCK_BYTES = synthesis.SYNTHESIS_BLOCK_BYTES, 16 * 8 * 7  # 7-point blocks
    try:
        with torch.inference_mode():
            blocked = decoder(coords, modulations)
    finally:
        synthesis.SYNTHESIS_BLOCK_BYTES = block_bytes
    with torch.no_grad():
        expected = plain_synthesis(decoder, decoder._features(coords, decoder.reference_statistics()), modulations)
    torch.testing.assert_close(blocked, with_grad.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(blocked, expected, rtol=1e-5, atol=1e-12)
