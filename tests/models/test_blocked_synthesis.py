"""Cache-blocked training synthesis (CPU, with gradients) equals the batched layers: outputs, gradients w.r.t. the
features, weights, biases and modulations, and second derivatives, in float64, with blocks cut mid-grid."""
from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.models import FeatureSynthesisDecoder, blocked_synthesis


def _decoder_and_inputs(shared: bool, seed: int = 0):
    torch.manual_seed(seed)
    decoder = FeatureSynthesisDecoder(out_channels=3, n_heads=4, n_qubits=2, hidden_features=16, hidden_layers=3,
                                      modulation="weight").double()
    batch, points = 3, 9 * 11
    coords = image_grid(9, 11, dtype=torch.float64)
    if not shared:
        coords = coords[None].repeat(batch, 1, 1) + 0.01 * torch.randn(batch, points, 2, dtype=torch.float64)
    modulations = (0.5 * torch.randn(batch, decoder.modulation_dim, dtype=torch.float64)).requires_grad_(True)
    return decoder, coords, modulations


def _batched(decoder: FeatureSynthesisDecoder, monkeypatch):
    """Run ``decoder`` through the batched layers (the CUDA path) instead of the blocked function."""
    monkeypatch.setattr(decoder, "_trains_in_blocks", lambda h, dtype: False)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-grid", "per-sample-coords"])
def test_blocked_training_layers_equal_the_batched_layers_in_float64(shared, monkeypatch):
    decoder, coords, modulations = _decoder_and_inputs(shared)
    coords = coords.requires_grad_(True)  # a gradient reaches the features, so they are recomputed with a graph
    params = [modulations, coords, *decoder.parameters()]
    probe = torch.randn(modulations.shape[0], coords.shape[-2], 3, dtype=torch.float64)
    calls = []
    original = blocked_synthesis.BlockedWeightModulatedSynthesis.forward
    monkeypatch.setattr(blocked_synthesis.BlockedWeightModulatedSynthesis, "forward",
                        staticmethod(lambda *args: calls.append(1) or original(*args)))
    monkeypatch.setattr(blocked_synthesis, "TRAINING_BLOCK_BYTES", 16 * 8 * 7)  # 7-point blocks: 99 points cut

    out = decoder(coords, modulations)
    grads = torch.autograd.grad((out * probe).sum(), params)
    assert calls, "the CPU training path did not run the blocked function"

    _batched(decoder, monkeypatch)
    expected = decoder(coords, modulations)
    expected_grads = torch.autograd.grad((expected * probe).sum(), params)

    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-12)
    names = ["modulations", "coords", *dict(decoder.named_parameters())]
    for name, got, want in zip(names, grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-12, msg=name)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-grid", "per-sample-coords"])
def test_blocked_function_gradients_w_r_t_features_and_weights(shared, monkeypatch):
    """The function alone, every input differentiable (features, per-image weights, biases, output layer)."""
    monkeypatch.setattr(blocked_synthesis, "TRAINING_BLOCK_BYTES", 7 * 8 * 4)  # 4-point blocks: 13 points cut
    torch.manual_seed(2)
    batch, points, widths = 2, 13, [5, 7, 6]
    h = torch.randn(*(() if shared else (batch,)), points, widths[0], dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(batch, o, i, dtype=torch.float64, requires_grad=True) for i, o in pairwise(widths)]
    biases = [torch.randn(o, dtype=torch.float64, requires_grad=True) for o in widths[1:]]
    out_weight = torch.randn(2, widths[-1], dtype=torch.float64, requires_grad=True)
    out_bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    inputs = (h, out_weight, out_bias, *[t for pair in zip(weights, biases, strict=True) for t in pair])
    torch.autograd.gradcheck(blocked_synthesis.BlockedWeightModulatedSynthesis.apply, inputs)


def test_second_derivatives_equal_the_batched_layers(monkeypatch):
    """Second-order meta-learning (``create_graph``) through the blocked function falls back to plain ops."""
    decoder, coords, modulations = _decoder_and_inputs(shared=True, seed=3)

    def meta_gradients():
        out = decoder(coords, modulations)
        (grad,) = torch.autograd.grad(out.square().sum(), modulations, create_graph=True)
        return torch.autograd.grad(grad.square().sum(), [modulations, *decoder.linears.parameters()])

    got = meta_gradients()
    _batched(decoder, monkeypatch)
    for g, want in zip(got, meta_gradients(), strict=True):
        torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-12)


def test_autocast_and_bf16_synthesis_keep_the_batched_layers(monkeypatch):
    """bf16 synthesis (what CUDA training sets) and CPU autocast run the batched layers, as on CUDA."""
    decoder, coords, modulations = _decoder_and_inputs(shared=True)
    decoder.float()
    modulations = modulations.detach().float().requires_grad_(True)
    coords = coords.float()
    monkeypatch.setattr(blocked_synthesis.BlockedWeightModulatedSynthesis, "forward",
                        staticmethod(lambda *args: pytest.fail("the blocked function ran under autocast")))
    decoder.synthesis_dtype = torch.bfloat16
    assert decoder(coords, modulations).dtype == torch.float32
    decoder.synthesis_dtype = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        decoder(coords, modulations).float().sum().backward()
    assert modulations.grad is not None


@pytest.mark.parametrize("upstream", [(1.0, 1.0, 1.0), (1.0, -0.5, 2.0)], ids=["sum", "per-image-factors"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-grid", "per-sample-coords"])
def test_per_image_mse_in_one_pass_equals_the_batched_layers_in_float64(shared, upstream, monkeypatch):
    """The decoder's ``per_image_mse`` (gradient computed in the forward pass, block by block) gives the errors and
    the gradients of the batched layers' ``(out - targets)^2`` means, for the sum of the errors and for upstream
    factors that differ per image (the shared features' gradient then takes a second pass), with blocks cut
    mid-grid."""
    decoder, coords, modulations = _decoder_and_inputs(shared)
    coords = coords.requires_grad_(True)
    params = [modulations, coords, *decoder.parameters()]
    targets = torch.rand(modulations.shape[0], coords.shape[-2], 3, dtype=torch.float64) * 2 - 1
    weights = torch.tensor(upstream, dtype=torch.float64)  # d loss / d mse_b
    calls = []
    original = blocked_synthesis.BlockedSynthesisMSE.forward
    monkeypatch.setattr(blocked_synthesis.BlockedSynthesisMSE, "forward",
                        staticmethod(lambda *args: calls.append(1) or original(*args)))
    monkeypatch.setattr(blocked_synthesis, "TRAINING_BLOCK_BYTES", 16 * 8 * 7)  # 7-point blocks: 99 points cut

    mse = decoder.per_image_mse(coords, modulations, targets)
    grads = torch.autograd.grad((mse * weights).sum(), params)
    assert calls, "the CPU training path did not run the one-pass function"

    _batched(decoder, monkeypatch)
    expected = (decoder(coords, modulations) - targets).square().mean(dim=(1, 2))
    expected_grads = torch.autograd.grad((expected * weights).sum(), params)

    torch.testing.assert_close(mse, expected, rtol=1e-10, atol=1e-14)
    names = ["modulations", "coords", *dict(decoder.named_parameters())]
    for name, got, want in zip(names, grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-14, msg=name)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-grid", "per-sample-coords"])
def test_one_pass_mse_gradients_w_r_t_every_input(shared, monkeypatch):
    """The one-pass function alone, every input differentiable (targets too), first and second derivatives."""
    monkeypatch.setattr(blocked_synthesis, "TRAINING_BLOCK_BYTES", 7 * 8 * 4)  # 4-point blocks: 13 points cut
    torch.manual_seed(4)
    batch, points, widths = 2, 13, [5, 7, 6]
    h = torch.randn(*(() if shared else (batch,)), points, widths[0], dtype=torch.float64, requires_grad=True)
    targets = torch.randn(batch, points, 2, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(batch, o, i, dtype=torch.float64, requires_grad=True) for i, o in pairwise(widths)]
    biases = [torch.randn(o, dtype=torch.float64, requires_grad=True) for o in widths[1:]]
    out_weight = torch.randn(2, widths[-1], dtype=torch.float64, requires_grad=True)
    out_bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    inputs = (h, targets, out_weight, out_bias, *[t for pair in zip(weights, biases, strict=True) for t in pair])
    torch.autograd.gradcheck(blocked_synthesis.BlockedSynthesisMSE.apply, inputs)
    torch.autograd.gradgradcheck(blocked_synthesis.BlockedSynthesisMSE.apply, inputs)


def test_second_order_inner_loop_keeps_the_two_pass_layers(monkeypatch):
    """Second-order meta-learning differentiates the inner gradients: its inner loop does not compute them in the
    forward pass (the plain-op backward would compute them again), its outer loss may."""
    from qiren_gen.functa import inner_loop
    from qiren_gen.models import LatentModulator

    decoder, coords, _ = _decoder_and_inputs(shared=True)
    modulator = LatentModulator.for_decoder(decoder, latent_dim=4).double()
    targets = torch.rand(2, coords.shape[0], 3, dtype=torch.float64)
    calls = []
    original = blocked_synthesis.BlockedSynthesisMSE.forward
    monkeypatch.setattr(blocked_synthesis.BlockedSynthesisMSE, "forward",
                        staticmethod(lambda *args: calls.append(1) or original(*args)))
    inner_loop(decoder, modulator, coords, targets, steps=2, first_order=False)
    assert not calls
    inner_loop(decoder, modulator, coords, targets, steps=2, first_order=True)
    assert len(calls) == 2
