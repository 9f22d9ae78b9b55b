"""The latent denoiser (diffusion prior network) and the DDPM loss: shapes, save/load, normalisation, learning."""
import pytest
import torch

from qiren_gen.models import LatentDenoiser
from qiren_gen.training.prior import diffusion_loss, make_training_scheduler


def test_forward_shapes_and_timestep_forms():
    model = LatentDenoiser(latent_dim=6, hidden_dim=16, num_blocks=2, time_embed_dim=8)
    x = torch.randn(5, 6)
    a = model(x, torch.full((5,), 10)).sample
    b = model(x, 10).sample
    assert a.shape == (5, 6)
    torch.testing.assert_close(a, b)
    assert model(x, 10, return_dict=False)[0].shape == (5, 6)
    # blocks start as identity (zero last layer); once trained, the time embedding reaches the output
    for block in model.blocks:
        block.fc2.weight.data.normal_()
    assert not torch.allclose(model(x, 10).sample, model(x, 900).sample)


def test_bad_inputs_raise_value_error():
    model = LatentDenoiser(latent_dim=6, hidden_dim=16, num_blocks=1, time_embed_dim=8)
    with pytest.raises(ValueError, match="expected sample"):
        model(torch.randn(5, 7), 1)
    with pytest.raises(ValueError, match="expected timestep"):
        model(torch.randn(5, 6), torch.zeros(4))
    with pytest.raises(ValueError, match="time_embed_dim"):
        LatentDenoiser(latent_dim=6, time_embed_dim=7)
    with pytest.raises(ValueError, match="expected latents"):
        model.set_latent_statistics(torch.randn(10, 5))


def test_normalisation_round_trip_and_save_load(tmp_path):
    model = LatentDenoiser(latent_dim=4, hidden_dim=8, num_blocks=1, time_embed_dim=8, sample_size=25)
    latents = torch.randn(100, 4) * torch.tensor([1.0, 2.0, 0.1, 5.0]) + torch.tensor([0.0, -3.0, 1.0, 10.0])
    model.set_latent_statistics(latents)
    normed = model.normalize(latents)
    torch.testing.assert_close(normed.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(normed.std(0), torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(model.denormalize(normed), latents, atol=1e-4, rtol=1e-5)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = LatentDenoiser.from_pretrained(tmp_path, use_safetensors=True)
    assert loaded.config.sample_size == 25
    torch.testing.assert_close(loaded.latent_std, model.latent_std)  # statistics travel with the weights
    x = torch.randn(3, 4)
    torch.testing.assert_close(loaded(x, 7).sample, model(x, 7).sample)


def test_diffusion_loss_decreases_when_training():
    torch.manual_seed(0)
    model = LatentDenoiser(latent_dim=4, hidden_dim=32, num_blocks=2, time_embed_dim=16)
    sched = make_training_scheduler(100)
    data = torch.randn(256, 4) * 0.1 + torch.tensor([1.0, -1.0, 0.5, 0.0])  # a tight cluster: noise is predictable
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    first = torch.stack([diffusion_loss(model, sched, data, gen) for _ in range(5)]).mean().item()
    for _ in range(150):
        loss = diffusion_loss(model, sched, data[torch.randint(0, 256, (64,), generator=gen)], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = torch.stack([diffusion_loss(model, sched, data, gen) for _ in range(5)]).mean().item()
    assert last < 0.6 * first, (first, last)
