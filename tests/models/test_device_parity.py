"""The same numbers on every available device: the circuit simulator, the face decoder (fp32 and bf16 synthesis)
and the bundled pipeline's rendering, each against a float64 CPU reference.

Parametrized over the devices this machine has: the CPU case always runs; a CUDA case runs where torch sees a GPU
(``scripts/gpu_check.sh`` runs those). Tolerances are those of float32 (bf16 where the synthesis runs in bf16).
"""
from __future__ import annotations

import copy

import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.functa import decode_latents
from qiren_gen.models import FeatureSynthesisDecoder
from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.quantum import DataReuploadingCircuit

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("engine", ["fused", "autograd"])
def test_circuit_forward_and_backward_match_float64_cpu(device, engine, one_thread):
    torch.manual_seed(0)
    circuit = DataReuploadingCircuit(5, 2, 2, engine=engine)
    x = torch.randn(64, 5)
    reference = copy.deepcopy(circuit).double()
    x64 = x.double().requires_grad_(True)
    want = reference(x64)
    want_grads = torch.autograd.grad(want.square().sum(), [x64, reference.weights])

    moved = circuit.to(device)
    xd = x.to(device).requires_grad_(True)
    got = moved(xd)
    got_grads = torch.autograd.grad(got.square().sum(), [xd, moved.weights])
    torch.testing.assert_close(got.cpu().double(), want, rtol=1e-4, atol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g.cpu().double(), w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_face_decoder_step_matches_float64_cpu(device, precision, one_thread):
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(out_channels=3, n_heads=8, n_qubits=2, hidden_features=32, hidden_layers=3,
                                      modulation="weight")
    modulations = 0.3 * torch.randn(4, decoder.modulation_dim)
    coords = image_grid(12, 12)
    reference = copy.deepcopy(decoder).double()
    want = reference(coords.double(), modulations.double())
    (want_grad,) = torch.autograd.grad(want.square().mean(), [reference.linears[1].weight])

    moved = decoder.to(device)
    moved.synthesis_dtype = torch.bfloat16 if precision == "bf16" else None
    got = moved(coords.to(device), modulations.to(device))
    (got_grad,) = torch.autograd.grad(got.square().mean(), [moved.linears[1].weight])
    assert got.dtype == torch.float32
    tol = dict(rtol=1e-4, atol=1e-5) if precision == "fp32" else dict(rtol=5e-2, atol=5e-2)
    torch.testing.assert_close(got.detach().cpu().double(), want.detach(), **tol)
    scale = want_grad.abs().max()
    torch.testing.assert_close(got_grad.cpu().double() / scale, want_grad / scale, **tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("chunk_size", [50, 160], ids=["series-per-point", "series-on-grid"])
def test_bundled_rendering_matches_float64_cpu(device, chunk_size, one_thread):
    """The device renders from the circuits' Fourier series (summed per point in small chunks, on the grid in chunks
    of whole rows); the reference simulates every point in float64 on the CPU."""
    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    latents = torch.randn(3, pipe.modulator.config.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = copy.deepcopy(pipe.decoder).double()
        reference.set_feature_evaluation("simulate")
        want = decode_latents(reference, copy.deepcopy(pipe.modulator).double(), latents.double(), 16, 20)
        pipe.to(device)
        got = decode_latents(pipe.decoder, pipe.modulator, latents.to(device), 16, 20, chunk_size=chunk_size)
    assert got.device.type == device
    torch.testing.assert_close(got.cpu().double(), want, rtol=1e-4, atol=1e-5)
