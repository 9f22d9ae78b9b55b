"""Side-by-side training-step cost of the generative decoders (target: circuit features within 5x a SIREN step):
interleaved Adam steps of the circuit-feature decoder, its Fourier-feature control and a SIREN of the same width,
medians and ratios. Optional extra decoders: the circuit-feature decoder with ternary encoding scales (2 or 3
re-uploads), timed against the plain one.

Used by ``scripts/benchmarks/benchmark_decoder_step.py``. One auto-decoding step: 16 images x 25x25 points, latents
trained too.
"""
from __future__ import annotations

import statistics
import time

import torch

from qiren_gen.data import image_grid
from qiren_gen.functa import per_image_mse
from qiren_gen.models import FeatureSynthesisDecoder, LatentModulator, ModulatedSIREN

DECODERS = ("circuit_features", "circuit_features_ternary", "circuit_features_ternary_r3", "fourier_features", "siren")
"""Decoders the benchmark can time; the ``_ternary`` ones are ``circuit_features`` with ``encoding_scale="ternary"``
(``_r3``: 3 re-uploads). The hyphenated spellings of earlier commands (``circuit-features``) are read as these."""
DEFAULT_DECODERS = ("circuit_features", "fourier_features", "siren")


def benchmark_decoder(name: str) -> str:
    """The benchmark's name for ``name``, given in the current or the former hyphenated spelling."""
    return name.replace("-", "_")


def _decoder(name: str, width: int) -> torch.nn.Module:
    if name == "fourier_features":
        return FeatureSynthesisDecoder(features="fourier", hidden_features=width)
    if name == "siren":
        return ModulatedSIREN(hidden_features=width, hidden_layers=2)
    scaled = {"circuit_features": {}, "circuit_features_ternary": {"encoding_scale": "ternary"},
              "circuit_features_ternary_r3": {"encoding_scale": "ternary", "n_reuploads": 3}}[name]
    return FeatureSynthesisDecoder(features="circuit", hidden_features=width, frequency_init=2.0, **scaled)


def decoder_step_times(width: int = 128, steps: int = 21, batch: int = 16, size: int = 25,
                       latent_dim: int = 64, decoders: tuple[str, ...] = DEFAULT_DECODERS) -> dict:
    """Median seconds per training step of each decoder (steps interleaved, first one dropped) and the ratios."""
    decoders = tuple(benchmark_decoder(name) for name in decoders)
    unknown = [name for name in decoders if name not in DECODERS]
    if unknown or not decoders:
        raise ValueError(f"decoders must be names from {DECODERS}, got {list(decoders)!r}")
    torch.manual_seed(0)
    coords, targets = image_grid(size, size), torch.rand(batch, size * size, 1) * 2 - 1
    runs = {}
    for name in dict.fromkeys(decoders):
        decoder = _decoder(name, width)
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
    result = {"width": width, "median_step_seconds": medians}
    circuit = medians.get("circuit_features")
    if circuit is not None:
        for name, key in (("fourier_features", "circuit_over_fourier"), ("siren", "circuit_over_siren")):
            if name in medians:
                result[key] = circuit / medians[name]
        for name in medians:
            if name.startswith("circuit_features_"):
                result[f"{name}_over_circuit"] = medians[name] / circuit
    return result


__all__ = ["DECODERS", "DEFAULT_DECODERS", "benchmark_decoder", "decoder_step_times"]
