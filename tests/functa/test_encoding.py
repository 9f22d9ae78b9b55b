"""One encoding loop: `encode_images` and `encode_area_consistent` find their latents through `encode_with_loss`,
which leaves decoder and modulator exactly as they were, for both ways of encoding."""
import pytest
import torch
from torch.nn import functional as F

from qiren_gen.data import image_grid
from qiren_gen.functa import encode_area_consistent, encode_images, encode_with_loss, images_to_targets, per_image_mse
from qiren_gen.models import LatentModulator, ModulatedQIREN


def decoder_and_modulator(encoding: str):
    torch.manual_seed(0)
    decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
    return decoder, LatentModulator.for_decoder(decoder, latent_dim=4, encoding=encoding, inner_steps=3)


@pytest.mark.parametrize("encoding", ["meta_sgd", "auto_decode"])
def test_encode_images_is_encode_with_loss_of_the_render_error(encoding):
    decoder, modulator = decoder_and_modulator(encoding)
    images = torch.rand(2, 1, 4, 4) * 2 - 1
    coords, targets = image_grid(4, 4), images_to_targets(images)
    with torch.no_grad():
        stats = decoder.reference_statistics()
    expected = encode_with_loss(decoder, modulator, lambda z: per_image_mse(decoder, modulator, z, coords, targets,
                                                                            stats), batch=2)
    torch.testing.assert_close(encode_images(decoder, modulator, images), expected, rtol=0, atol=0)
    assert expected.abs().sum() > 0  # the steps moved away from the zero latent


@pytest.mark.parametrize("encoding", ["meta_sgd", "auto_decode"])
def test_area_encoding_is_encode_with_loss_of_the_pooled_render_error(encoding):
    decoder, modulator = decoder_and_modulator(encoding)
    low = torch.rand(1, 1, 3, 3) * 2 - 1
    coords = image_grid(6, 6)

    def area_loss(z):
        render = decoder(coords, modulator(z)).reshape(1, 6, 6, 1).permute(0, 3, 1, 2)
        return (F.avg_pool2d(render, 2) - low).square().mean(dim=(1, 2, 3))

    torch.testing.assert_close(encode_area_consistent(decoder, modulator, low, factor=2),
                               encode_with_loss(decoder, modulator, area_loss, batch=1), rtol=0, atol=0)


@pytest.mark.parametrize("encoding", ["meta_sgd", "auto_decode"])
def test_encoding_leaves_the_models_untouched(encoding):
    decoder, modulator = decoder_and_modulator(encoding)
    modulator.inner_lr.requires_grad_(False)  # a parameter frozen by the caller stays frozen
    before = {name: p.detach().clone() for name, p in [*decoder.named_parameters(), *modulator.named_parameters()]}
    flags = {name: p.requires_grad for name, p in [*decoder.named_parameters(), *modulator.named_parameters()]}
    latents = encode_area_consistent(decoder, modulator, torch.rand(1, 1, 2, 2) * 2 - 1, factor=2)
    assert not latents.requires_grad
    for name, p in [*decoder.named_parameters(), *modulator.named_parameters()]:
        assert p.grad is None, name
        assert p.requires_grad == flags[name], name
        assert torch.equal(p, before[name]), name


def test_negative_steps_are_refused_by_every_encoding():
    decoder, modulator = decoder_and_modulator("meta_sgd")
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        encode_area_consistent(decoder, modulator, torch.zeros(1, 1, 2, 2), factor=2, steps=-1)
