"""The FFHQ recipe's stage-1 training step (64-wide latents, auto-decoded, Adam), built once for every benchmark that
times it: ``benchmark_floor.py`` on the CPU and ``gpu_check.py`` on a GPU."""
from __future__ import annotations

from collections.abc import Callable

import torch

from qiren_gen.data import image_grid
from qiren_gen.functa import per_image_mse
from qiren_gen.models import FeatureSynthesisDecoder, LatentModulator
from qiren_gen.training.functa_trainer import fused_adam


def recipe_step(size: int, batch: int, device: torch.device | str = "cpu",
                synthesis_dtype: torch.dtype | None = None) -> tuple[Callable[[], torch.Tensor], torch.nn.Module]:
    """``(step, decoder)``: ``step()`` runs one stage-1 step on random ``size x size`` RGB targets for ``batch`` rows
    of a 1000-row latent table and returns the per-image MSE (detached). Seeded, so two builds take the same steps."""
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(out_channels=3, n_heads=32, n_qubits=2, frequency_init=2.0,
                                      hidden_features=128, hidden_layers=3, modulation="weight").to(device)
    if synthesis_dtype is not None:
        decoder.synthesis_dtype = synthesis_dtype
    modulator = LatentModulator.for_decoder(decoder, 64, encoding="auto_decode").to(device)
    table = torch.nn.Parameter(torch.randn(1000, 64, device=device) * 0.01)
    model_params = [*decoder.parameters(), *modulator.parameters()]
    optimizer = fused_adam([{"params": model_params, "lr": 1e-3}, {"params": [table], "lr": 1e-2}], lr=1e-3)  # the
    # trainer's Adam
    coords = image_grid(size, size, device=device)
    targets = torch.rand(batch, size * size, 3, device=device) * 2 - 1

    def step() -> torch.Tensor:
        latents = table[torch.randint(0, table.shape[0], (batch,), device=device)]
        mse = per_image_mse(decoder, modulator, latents, coords, targets, decoder.reference_statistics())
        (mse.sum() + 1e-4 * latents.square().sum()).backward()
        torch.nn.utils.clip_grad_norm_(model_params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return mse.detach()

    return step, decoder
