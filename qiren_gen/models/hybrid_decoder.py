"""What every latent-modulated decoder shares: its input checks, the reference grid, and the hybrid-layer decoder.

``HybridLayerDecoder`` is the common base of `ModulatedQIREN` (one circuit per layer) and ``ModulatedWideQIREN``
(``n_heads`` circuits side by side): ``1 + hidden_layers`` hybrid layers ``Linear -> normalise (+ affine) -> modulate
-> circuits`` of ``width`` features, then ``Linear(width, out_channels)``. The two differ only in how their circuits
are built and run (``shared_circuit``, ``angles_circuit``); the layers, the reference-grid normalisation, the
modulation sizes and ``forward`` live here once.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..data.grids import axis_coordinates
from ..quantum.simulator import check_engine
from ..runtime.values import check_choice
from .config_checks import check_whole_numbers

MODULATIONS = ("shift", "film", "angles")
NORMALIZATIONS = ("reference", "none")
NORM_EPS = 1e-5
"""Added to the variance of the reference statistics before the square root (as BatchNorm's ``eps``)."""


def _check_coords_modulations(coords: torch.Tensor, modulations: torch.Tensor, in_features: int, dim: int):
    """Validate and broadcast: coords ``(B, P, in)`` or ``(P, in)``, modulations ``(B, dim)``, both floating point.

    Coordinates come back in the modulations' dtype (callers cast modulations to the weights' dtype first).
    """
    if modulations.ndim != 2 or modulations.shape[1] != dim or modulations.shape[0] < 1:
        raise ValueError(f"modulations must have shape (B >= 1, {dim}), got {tuple(modulations.shape)}")
    if not coords.is_floating_point() or not modulations.is_floating_point():
        raise ValueError(f"coords and modulations must be floating-point tensors, got {coords.dtype} and "
                         f"{modulations.dtype}")
    if not bool(torch.isfinite(modulations).all()):  # the angles path would turn them into NaN output silently
        raise ValueError("modulations contain NaN or inf")
    if not bool(torch.isfinite(coords).all()):  # e.g. float16 coordinates that overflowed to inf
        raise ValueError("coords contain NaN or inf")
    coords = coords.to(modulations.dtype)
    if coords.ndim == 2:
        coords = coords.unsqueeze(0).expand(modulations.shape[0], -1, -1)
    if coords.ndim != 3 or coords.shape[-1] != in_features or coords.shape[0] != modulations.shape[0]:
        raise ValueError(
            f"coords must have shape (B, P, {in_features}) with B={modulations.shape[0]}, got {tuple(coords.shape)}"
        )
    return coords


def decoder_inputs(model: nn.Module, coords: torch.Tensor, modulations: torch.Tensor):
    """A decoder's ``forward`` inputs, checked: modulations in the weights' dtype, coords ``(B, P, in)`` to match."""
    if modulations.is_floating_point():
        modulations = modulations.to(model.output.weight.dtype)
    coords = _check_coords_modulations(coords, modulations, model.config.in_features, model.modulation_dim)
    return coords, modulations


def reference_grid(in_features: int, size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Pixel-centre grid with ``size`` points per axis over ``[-1, 1]^in_features``: ``(size**in_features, in)``."""
    axes = [axis_coordinates(size, dtype=dtype, device=device)] * in_features
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, in_features)


class HybridLayerDecoder(ModelMixin, ConfigMixin):
    """Base of the modulated decoders built of hybrid layers (see the module docstring).

    A subclass's ``__init__`` (with ``register_to_config``) calls `build_hybrid_layers`, and defines ``width``
    (features per layer), ``shared_circuit(layer, features (..., width))`` (the layer's shared-weight circuits) and
    ``angles_circuit(layer, features (B, P, width), m (B, per_layer))`` (the circuits with per-sample weights, for
    ``modulation="angles"``).
    """

    def build_hybrid_layers(self, width: int, make_circuit: Callable[[], nn.Module]) -> None:
        """Check the shared options, then build the layers: ``linears``, ``norm_weight`` / ``norm_bias``, one
        ``make_circuit()`` per layer, ``output`` and the (unsaved) reference grid, in that order."""
        cfg = self.config
        check_choice("modulation", cfg.modulation, MODULATIONS)
        check_choice("normalization", cfg.normalization, NORMALIZATIONS)
        check_whole_numbers(cfg, in_features=1, out_channels=1, hidden_layers=0, reference_size=2)
        n_layers = 1 + cfg.hidden_layers
        self.linears = nn.ModuleList(nn.Linear(w, width) for w in [cfg.in_features] + [width] * cfg.hidden_layers)
        self.norm_weight = nn.Parameter(torch.ones(n_layers, width))
        self.norm_bias = nn.Parameter(torch.zeros(n_layers, width))
        self.circuits = nn.ModuleList(make_circuit() for _ in range(n_layers))
        self.output = nn.Linear(width, cfg.out_channels)
        grid = reference_grid(cfg.in_features, cfg.reference_size)
        self.register_buffer("reference_coords", grid, persistent=False)

    @property
    def n_layers(self) -> int:
        return 1 + self.config.hidden_layers

    @property
    def circuit_shape(self) -> tuple[int, ...]:
        """Shape of one layer's circuit weights."""
        return tuple(self.circuits[0].weights.shape)

    @property
    def modulation_dim(self) -> int:
        """Numbers per sample the hypernetwork must produce for this decoder."""
        per_layer = {"shift": self.width, "film": 2 * self.width, "angles": math.prod(self.circuit_shape)}
        return self.n_layers * per_layer[self.config.modulation]

    def set_engine(self, engine: str) -> None:
        """Simulator engine of the circuits: ``"fused"`` (fast) or ``"autograd"`` (second-order gradients)."""
        check_engine(engine)
        for circuit in self.circuits:
            circuit.engine = engine

    def reference_statistics(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Per-layer ``(mean, std)`` of the unmodulated pre-encoding features on the reference grid."""
        if self.config.normalization == "none":
            return None
        stats = []
        h = self.reference_coords.to(self.output.weight.dtype)
        for layer in range(self.n_layers):
            pre = self.linears[layer](h)
            mean, std = pre.mean(0), torch.sqrt(pre.var(0, unbiased=False) + NORM_EPS)
            stats.append((mean, std))
            h = self.shared_circuit(layer, (pre - mean) / std * self.norm_weight[layer] + self.norm_bias[layer])
        return stats

    # Every decoder's forward signature (FeatureSynthesisDecoder spells it alike): the interface pipelines call.
    def forward(
        self,
        coords: torch.Tensor,
        modulations: torch.Tensor,
        stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Signal values ``(B, P, out_channels)``; pass ``stats`` (from `reference_statistics`) to reuse them."""
        coords, modulations = decoder_inputs(self, coords, modulations)
        if stats is None:
            stats = self.reference_statistics()
        width, mode = self.width, self.config.modulation
        mods = modulations.reshape(coords.shape[0], self.n_layers, -1)
        h = coords
        for layer in range(self.n_layers):
            pre = self.linears[layer](h)
            if stats is not None:
                pre = (pre - stats[layer][0]) / stats[layer][1]
            pre = pre * self.norm_weight[layer] + self.norm_bias[layer]
            m = mods[:, layer]
            if mode == "shift":
                pre = pre + m[:, None, :]
            elif mode == "film":
                pre = pre * (1 + m[:, None, :width]) + m[:, None, width:]
            h = self.angles_circuit(layer, pre, m) if mode == "angles" else self.shared_circuit(layer, pre)
        return self.output(h)


__all__ = ["MODULATIONS", "NORMALIZATIONS", "NORM_EPS", "HybridLayerDecoder", "decoder_inputs", "reference_grid"]
