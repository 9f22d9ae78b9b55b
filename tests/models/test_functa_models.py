"""Modulated decoders, the hypernetwork, per-sample circuits and the functa encode / decode facade."""
import pytest
import torch
import torch.nn.functional as F

from qiren_gen.data import image_grid
from qiren_gen.functa import decode_latents, encode_images, per_image_mse
from qiren_gen.metrics import psnr
from qiren_gen.models import LatentModulator, ModulatedQIREN, ModulatedSIREN
from qiren_gen.quantum import simulate_reuploading
from qiren_gen.quantum.per_sample import simulate_reuploading_per_sample


def _pair(mode: str, latent_dim: int = 8, channels: int = 1, siren: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    if siren:
        decoder = ModulatedSIREN(out_channels=channels, hidden_features=16, modulation=mode)
    else:
        decoder = ModulatedQIREN(out_channels=channels, n_qubits=4, hidden_layers=1, modulation=mode)
    return decoder, LatentModulator.for_decoder(decoder, latent_dim)


def test_per_sample_circuit_matches_shared_simulator():
    torch.manual_seed(0)
    weights = torch.rand(3, 2, 5, 3, dtype=torch.float64) * 6
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    shared = simulate_reuploading(x, weights, engine="autograd")
    per_sample = simulate_reuploading_per_sample(x, weights.expand(3, *weights.shape))
    torch.testing.assert_close(per_sample, shared, rtol=0, atol=1e-12)
    distinct = torch.rand(3, 3, 2, 5, 3, dtype=torch.float64) * 6
    out = simulate_reuploading_per_sample(x, distinct)
    for s in range(3):
        torch.testing.assert_close(out[s], simulate_reuploading(x[s], distinct[s]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode,channels,siren", [("shift", 1, False), ("film", 3, False), ("angles", 1, False),
                                                 ("shift", 3, True), ("film", 1, True)])
def test_forward_shapes_and_save_load_roundtrip(tmp_path, mode, channels, siren):
    decoder, modulator = _pair(mode, channels=channels, siren=siren)
    coords = torch.rand(2, 5, 2) * 2 - 1
    latents = torch.randn(2, 8)
    out = decoder(coords, modulator(latents))
    assert out.shape == (2, 5, channels)
    decoder.save_pretrained(tmp_path / "decoder")
    modulator.save_pretrained(tmp_path / "modulator")
    cls = ModulatedSIREN if siren else ModulatedQIREN
    decoder2 = cls.from_pretrained(tmp_path / "decoder")
    modulator2 = LatentModulator.from_pretrained(tmp_path / "modulator")
    assert decoder2.config.modulation == mode and modulator2.config.inner_steps == modulator.config.inner_steps
    torch.testing.assert_close(decoder2(coords, modulator2(latents)), out)
    torch.testing.assert_close(modulator2.inner_lr, modulator.inner_lr)


@pytest.mark.parametrize("mode", ["shift", "film", "angles"])
def test_render_is_resolution_and_batch_independent(mode):
    decoder, modulator = _pair(mode)
    with torch.no_grad():  # give the untrained decoder some structure to resolve
        for linear in decoder.linears:
            linear.weight.mul_(3)
    latents = torch.randn(3, 8) * 2
    with torch.no_grad():
        base = decode_latents(decoder, modulator, latents, 8, 8)
        big = decode_latents(decoder, modulator, latents, 32, 32, chunk_size=37)
        alone = decode_latents(decoder, modulator, latents[1:2], 8, 8)
    assert base.shape == (3, 1, 8, 8) and big.shape == (3, 1, 32, 32)
    assert base.std() > 0.05  # a non-trivial image, so the PSNR below means something
    assert psnr(F.avg_pool2d(big, 4), base, data_range=2.0) > 30
    torch.testing.assert_close(alone[0], base[1])


def test_chunking_does_not_change_the_render():
    decoder, modulator = _pair("shift")
    latents = torch.randn(2, 8)
    with torch.no_grad():
        whole = decode_latents(decoder, modulator, latents, 5, 7, chunk_size=1000)
        chunked = decode_latents(decoder, modulator, latents, 5, 7, chunk_size=3)
    torch.testing.assert_close(whole, chunked)


@pytest.mark.parametrize("mode,siren,lr", [("shift", False, 0.1), ("angles", False, 0.1), ("shift", True, 0.003)])
def test_encode_reduces_error_and_is_per_sample(mode, siren, lr):
    decoder, modulator = _pair(mode, siren=siren)
    with torch.no_grad():
        modulator.inner_lr.fill_(lr)  # small enough for an untrained decoder (SIREN's omega_0 = 30 scales grads)
    torch.manual_seed(1)
    images = torch.rand(3, 1, 6, 6) * 2 - 1
    latents = encode_images(decoder, modulator, images, steps=3)
    assert latents.shape == (3, 8) and not latents.requires_grad
    coords = image_grid(6, 6)
    targets = images.permute(0, 2, 3, 1).reshape(3, 36, 1)
    with torch.no_grad():
        before = per_image_mse(decoder, modulator, torch.zeros(3, 8), coords, targets)
        after = per_image_mse(decoder, modulator, latents, coords, targets)
    assert bool((after < before).all())
    alone = encode_images(decoder, modulator, images[2:], steps=3)
    torch.testing.assert_close(alone[0], latents[2], rtol=1e-4, atol=1e-5)
    assert all(p.grad is None for p in decoder.parameters())


def test_bad_inputs_raise_clear_errors():
    decoder, modulator = _pair("shift")
    with pytest.raises(ValueError, match="modulation must be one of"):
        ModulatedQIREN(modulation="scale")
    with pytest.raises(ValueError, match="channel"):
        encode_images(decoder, modulator, torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        encode_images(decoder, modulator, torch.zeros(4, 4))
    with pytest.raises(ValueError, match="finite"):
        encode_images(decoder, modulator, torch.full((1, 1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="latents must have shape"):
        decode_latents(decoder, modulator, torch.zeros(2, 5), 4, 4)
    with pytest.raises(ValueError, match="height must be >= 1"):
        decode_latents(decoder, modulator, torch.zeros(2, 8), 0, 4)
    with pytest.raises(ValueError, match="modulations must have shape"):
        decoder(torch.zeros(2, 3, 2), torch.zeros(2, 5))
