"""Side-by-side training-step cost of the generative decoders (target: circuit features within 5x a SIREN step):
interleaved Adam steps of the circuit-feature decoder, its Fourier-feature control and a SIREN of the same width,
medians and ratios.

Used by ``scripts/benchmark_decoder_step.py``. One auto-decoding step: 16 images x 25x25 points, latents trained too.
"""
from __future__ import annotations

import statistics
import time

import torch


def _decoders(width: int) -> dict:
    from ..models import FeatureSynthesisDecoder, ModulatedSIREN

    return {
        "circuit-features": FeatureSynthesisDecoder(features="quantum", hidden_features=width, frequency_init=2.0),
        "fourier-features": FeatureSynthesisDecoder(features="fourier", hidden_features=width),
        "siren": ModulatedSIREN(hidden_features=width, hidden_layers=2),
    }


def decoder_step_times(width: int = 128, steps: int = 21, batch: int = 16, size: int = 25,
                       latent_dim: int = 64) -> dict:
    """Median seconds per training step of each decoder (steps interleaved, first one dropped) and the ratios."""
    from ..data import image_grid
    from ..functa import per_image_mse
    from ..models import LatentModulator

    torch.manual_seed(0)
    coords, targets = image_grid(size, size), torch.rand(batch, size * size, 1) * 2 - 1
    runs = {}
    for name, decoder in _decoders(width).items():
        modulator = LatentModulator.for_decoder(decoder, latent_dim)
        latents = torch.nn.Parameter(torch.zeros(batch, latent_dim))
        params = [*decoder.parameters(), *modulator.parameters(), latents]
        runs[name] = (decoder, modulator, latents, torch.optim.Adam(params, 1e-3), [])
    for _ in range(steps):
        for decoder, modulator, latents, optimizer, times in runs.values():
            start = time.perf_counter()
            loss = per_image_mse(decoder, modulator, latents, coords, targets, decoder.reference_statistics()).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
    medians = {name: statistics.median(run[-1][1:]) for name, run in runs.items()}
    return {"width": width, "median_step_seconds": medians,
            "circuit_over_fourier": medians["circuit-features"] / medians["fourier-features"],
            "circuit_over_siren": medians["circuit-features"] / medians["siren"]}


__all__ = ["decoder_step_times"]
