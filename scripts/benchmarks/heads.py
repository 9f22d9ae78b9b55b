"""Side-by-side timings of the multi-head circuits and the wide decoder (used by
``scripts/benchmarks/benchmark_heads.py``).

Everything is measured interleaved in one process: repeat ``i`` times every contender once before repeat ``i + 1``,
so that a noisy, shared machine slows all of them alike and the ratios stay meaningful.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from qiren_gen.data import image_grid
from qiren_gen.quantum import DataReuploadingCircuit, MultiHeadReuploadingCircuit


@dataclass
class HeadsTiming:
    n_heads: int
    n_qubits: int
    batch: int
    batched_ms: float
    loop_ms: float
    max_abs_diff: float

    @property
    def speedup(self) -> float:
        return self.loop_ms / self.batched_ms


@dataclass
class StepTiming:
    name: str
    width: int
    parameters: int
    modulation_dim: int
    step_ms: float


def interleaved_medians(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each zero-argument callable, after one warm-up each, timed round-robin ``repeats`` times."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


class LoopOfCircuits(nn.Module):
    """The baseline: H separate ``DataReuploadingCircuit`` modules called one after another (a Python loop)."""

    def __init__(self, heads: MultiHeadReuploadingCircuit) -> None:
        super().__init__()
        self.circuits = nn.ModuleList()
        for h in range(heads.n_heads):
            circuit = DataReuploadingCircuit(heads.n_qubits, heads.n_reuploads, heads.n_blocks)
            with torch.no_grad():
                circuit.weights.copy_(heads.weights[h])
            self.circuits.append(circuit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([c(x[..., h, :]) for h, c in enumerate(self.circuits)], -2)


def _forward_backward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward and backward with gradients for the weights and the inputs, as in a hybrid layer."""
    module.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    out = module(x)
    out.sum().backward()
    return out.detach()


def time_heads(n_heads: int, n_qubits: int, batch: int, repeats: int, seed: int = 0) -> HeadsTiming:
    """Forward+backward of H batched heads versus a loop over H single circuits holding the same weights."""
    torch.manual_seed(seed)
    heads = MultiHeadReuploadingCircuit(n_heads, n_qubits)
    loop = LoopOfCircuits(heads)
    x = torch.randn(batch, n_heads, n_qubits)
    diff = (_forward_backward(heads, x) - _forward_backward(loop, x)).abs().max().item()
    medians = interleaved_medians(
        {"batched": lambda: _forward_backward(heads, x), "loop": lambda: _forward_backward(loop, x)}, repeats
    )
    return HeadsTiming(n_heads, n_qubits, batch, medians["batched"] * 1e3, medians["loop"] * 1e3, diff)


def _training_step(decoder: nn.Module, coords: torch.Tensor, targets: torch.Tensor, modulations: torch.Tensor,
                   optimizer: torch.optim.Optimizer) -> None:
    """One step of the usual functa objective: MSE of the modulated render, gradients for decoder and modulations."""
    optimizer.zero_grad(set_to_none=True)
    loss = (decoder(coords, modulations) - targets).square().mean()
    loss.backward()
    optimizer.step()


def time_decoder_steps(decoders: dict[str, nn.Module], images: int, side: int, repeats: int,
                       seed: int = 0) -> list[StepTiming]:
    """Adam step time of each decoder on ``images`` images of ``side x side`` points, with per-image modulations
    trained alongside (as auto-decoded latents would be)."""
    torch.manual_seed(seed)
    coords = image_grid(side, side)
    targets = torch.rand(images, side * side, 1) * 2 - 1
    steps = {}
    for name, decoder in decoders.items():
        modulations = nn.Parameter(torch.zeros(images, decoder.modulation_dim))
        optimizer = torch.optim.Adam([*decoder.parameters(), modulations], lr=1e-4)
        steps[name] = (lambda d=decoder, m=modulations, o=optimizer: _training_step(d, coords, targets, m, o))
    medians = interleaved_medians(steps, repeats)
    return [StepTiming(name, decoder_width(d), sum(p.numel() for p in d.parameters()), d.modulation_dim,
                       medians[name] * 1e3) for name, d in decoders.items()]


def decoder_width(decoder: nn.Module) -> int:
    """Features per hidden layer of a modulated decoder (wide QIREN: H*n; SIREN: hidden_features; QIREN: qubits)."""
    if hasattr(decoder, "width"):
        return decoder.width
    return decoder.config.get("hidden_features") or decoder.config["n_qubits"]


__all__ = ["HeadsTiming", "LoopOfCircuits", "StepTiming", "decoder_width", "interleaved_medians", "time_decoder_steps",
           "time_heads"]
