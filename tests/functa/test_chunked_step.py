"""Training steps in chunks of points: the same gradient as one full-grid backward, bounded memory at any size."""
import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.functa import (
    STEP_MEMORY_BUDGET,
    backward_per_image_mse,
    images_to_targets,
    per_image_mse,
    step_chunk_points,
)
from qiren_gen.models import FeatureSynthesisDecoder, LatentModulator, ModulatedQIREN
from qiren_gen.training.functa_trainer import FunctaTrainingConfig, train_functa


def _decoders():
    torch.manual_seed(0)
    yield "circuit-weight", FeatureSynthesisDecoder(n_heads=2, n_qubits=2, hidden_features=8, hidden_layers=2,
                                                    modulation="weight", out_channels=3)
    torch.manual_seed(1)
    yield "hybrid-shift", ModulatedQIREN(n_qubits=3, hidden_layers=2, reference_size=4, out_channels=3)


def _grads(decoder, modulator, latents, run) -> list[torch.Tensor]:
    for p in [*decoder.parameters(), *modulator.parameters()]:
        p.grad = None
    leaf = latents.detach().clone().requires_grad_(True)
    mse = run(leaf)
    grads = [p.grad.clone() for p in [*decoder.parameters(), *modulator.parameters()] if p.grad is not None]
    return [mse.detach(), leaf.grad.clone(), *grads]


@pytest.mark.parametrize("name,decoder", list(_decoders()), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("chunk_points", [7, 32, 63])
def test_chunked_gradient_equals_full_grid_backward(name, decoder, chunk_points):
    decoder = decoder.double()
    modulator = LatentModulator.for_decoder(decoder, latent_dim=5).double()
    coords = image_grid(8, 8, dtype=torch.float64)
    targets = images_to_targets(torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1)
    latents = torch.randn(3, 5, dtype=torch.float64) * 0.3

    def full(z):
        mse = per_image_mse(decoder, modulator, z, coords, targets)
        (mse.sum() + 0.1 * z.square().sum()).backward()
        return mse

    def chunked(z):
        return backward_per_image_mse(decoder, modulator, z, coords, targets, chunk_points=chunk_points,
                                      penalty=0.1 * z.square().sum())

    expected, got = _grads(decoder, modulator, latents, full), _grads(decoder, modulator, latents, chunked)
    assert len(expected) == len(got) > 3  # the decoder's and the modulator's parameters got gradients
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_one_chunk_is_exactly_the_full_grid_step():
    decoder = next(_decoders())[1]
    modulator = LatentModulator.for_decoder(decoder, latent_dim=5)
    coords, targets = image_grid(8, 8), images_to_targets(torch.rand(2, 3, 8, 8) * 2 - 1)
    latents = torch.randn(2, 5)

    def full(z):
        mse = per_image_mse(decoder, modulator, z, coords, targets).float()
        (mse.sum() + 0.1 * z.square().sum()).backward()
        return mse

    expected = _grads(decoder, modulator, latents, full)
    got = _grads(decoder, modulator, latents, lambda z: backward_per_image_mse(
        decoder, modulator, z, coords, targets, penalty=0.1 * z.square().sum()))
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(g, e)


def test_chunk_size_follows_the_memory_budget():
    decoder = FeatureSynthesisDecoder(n_heads=2, n_qubits=2, hidden_features=128, hidden_layers=1)
    assert step_chunk_points(decoder, 16) == STEP_MEMORY_BUDGET // (16 * 128 * 4) >= 64 * 64  # the FFHQ recipe: 1 chunk
    assert step_chunk_points(decoder, 16) < 256 * 256  # 256x256 at batch 16: chunked
    with pytest.raises(ValueError, match="chunk_points must be >= 1"):
        backward_per_image_mse(decoder, LatentModulator.for_decoder(decoder, 4), torch.zeros(1, 4),
                               image_grid(2, 2), torch.zeros(1, 4, 3), chunk_points=0)


def test_trainer_with_a_small_step_budget_trains_like_the_full_grid(tmp_path):
    """A 1 MiB budget cuts each 32x32 step of width 256 into 2 chunks; the run stays the full-grid run."""
    from accelerate.state import AcceleratorState

    y, x = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    images = [{"image": (torch.sin(3 * x * (i + 1) + y) * 0.8).numpy()} for i in range(4)]
    from datasets import Dataset
    from PIL import Image

    dataset = Dataset.from_list([{"image": Image.fromarray(((im["image"] + 1) * 127.5).astype("uint8"))}
                                 for im in images])
    losses = {}
    for budget in (1, 64):
        AcceleratorState._reset_state(True)
        cfg = FunctaTrainingConfig(
            output_dir=str(tmp_path / f"budget-{budget}"), resolution=32, channels=1, decoder="circuit_features",
            modulation="weight", n_heads=2, n_qubits=2, hidden_features=256, hidden_layers=1, latent_dim=4,
            encoding="auto_decode", train_batch_size=2, max_train_steps=4, checkpointing_steps=4,
            table_eval_images=None, step_memory_budget_mb=budget)
        assert step_chunk_points(FeatureSynthesisDecoder(hidden_features=256), 2, budget * 2**20) == (
            512 if budget == 1 else 32768)
        summary = train_functa(cfg, dataset=dataset)
        losses[budget] = torch.tensor([row["loss"] for row in summary["history"]])
    AcceleratorState._reset_state(True)
    # Adam turns float rounding in near-zero gradient entries into lr-sized steps, so parameters are compared
    # through the losses they give (the gradients themselves are compared exactly in float64 above).
    assert len(losses[1]) == 4 and bool((losses[1][1:] != losses[1][0]).all())
    torch.testing.assert_close(losses[1], losses[64], rtol=1e-4, atol=0)
