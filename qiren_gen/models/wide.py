"""``ModulatedWideQIREN``: the modulated QIREN decoder with wide hybrid layers (many circuits side by side).

``ModulatedQIREN`` is as wide as one circuit has qubits (8 features), which caps what a latent can draw. Here each
hybrid layer feeds ``n_heads`` independent ``n_qubits``-qubit re-uploading circuits, so the width is
``n_heads * n_qubits`` (e.g. 32 x 4 = 128) while every circuit stays small and cheap to simulate; all heads run as
one batched operation (`MultiHeadReuploadingCircuit`). Normalisation and modulation work
as in `ModulatedQIREN` (reference-grid statistics: per-sample, resolution independent).
"""
from __future__ import annotations

import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..quantum import MultiHeadReuploadingCircuit, simulate_reuploading_heads
from ..quantum.gates import check_entangler
from ..quantum.heads import check_head_count
from ..quantum.simulator import check_circuit_size, check_engine
from ..runtime.values import check_choice
from .modulated import (
    MODULATIONS,
    NORMALIZATIONS,
    decoder_inputs,
    hybrid_reference_statistics,
    reference_grid,
)


def check_wide_config(n_heads: int, n_qubits: int, hidden_width: int | None) -> None:
    """Raise ``ValueError`` naming the field when heads, qubits and width do not fit together."""
    check_head_count(n_heads)
    check_circuit_size(n_qubits, 1, 1)
    if hidden_width is not None and hidden_width != n_heads * n_qubits:
        raise ValueError(
            f"hidden_width must equal n_heads * n_qubits = {n_heads} * {n_qubits} = {n_heads * n_qubits}, "
            f"got {hidden_width}"
        )


class ModulatedWideQIREN(ModelMixin, ConfigMixin):
    """Wide QIREN decoder with per-sample modulations: ``forward(coords (B, P, in), modulations (B, D)) -> (B, P, C)``.

    ``1 + hidden_layers`` hybrid layers ``Linear(in, H*n) -> normalise (+ affine) -> modulate -> H circuits of n
    qubits``, then ``Linear(H*n, out_channels)``. Same interface as ``ModulatedQIREN`` (``modulation_dim``,
    ``reference_statistics``, ``set_engine``), so the trainers, ``encode_images`` and the pipelines take it as is.

    Args:
        in_features: Coordinate dimensions (2 for images).
        out_channels: Image channels produced.
        n_heads: Circuits side by side in each hybrid layer.
        n_qubits: Qubits per circuit.
        hidden_width: Width of the hidden layers: ``None`` or ``n_heads * n_qubits`` (the only width it supports).
        hidden_layers: Hybrid layers after the first.
        n_reuploads: Times each circuit uploads its input.
        n_blocks: ``Rot`` + entangler blocks per parameter layer.
        entangler: ``"cz_ring"`` or ``"cnot_chain"`` (what the multi-head simulator runs).
        modulation: How latents act on the hybrid layers: ``"shift"``, ``"film"`` or ``"angles"``.
        normalization: ``"reference"`` or ``"none"``, as in `ModulatedQIREN`.
        reference_size: Side of the reference grid.
        engine: Circuit simulator engine, ``"fused"`` or ``"autograd"``.

    Examples:
        >>> import torch
        >>> from qiren_gen.models import LatentModulator, ModulatedWideQIREN
        >>> decoder = ModulatedWideQIREN(n_heads=2, n_qubits=2, hidden_layers=1, entangler="cnot_chain")
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> coords = torch.rand(3, 5, 2) * 2 - 1  # 5 points (y, x) in [-1, 1] for each of 3 images
        >>> decoder(coords, modulator(torch.randn(3, 4))).shape
        torch.Size([3, 5, 1])
    """

    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_channels: int = 1,
        n_heads: int = 32,
        n_qubits: int = 4,
        hidden_width: int | None = None,
        hidden_layers: int = 2,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        entangler: str = "cz_ring",
        modulation: str = "shift",
        normalization: str = "reference",
        reference_size: int = 16,
        engine: str = "fused",
    ) -> None:
        super().__init__()
        check_wide_config(n_heads, n_qubits, hidden_width)
        check_choice("modulation", modulation, MODULATIONS)
        check_choice("normalization", normalization, NORMALIZATIONS)
        check_entangler(entangler)
        if out_channels < 1 or hidden_layers < 0 or in_features < 1 or reference_size < 2:
            raise ValueError("need out_channels >= 1, hidden_layers >= 0, in_features >= 1, reference_size >= 2")
        width = n_heads * n_qubits
        n_layers = 1 + hidden_layers
        self.linears = nn.ModuleList(nn.Linear(w, width) for w in [in_features] + [width] * hidden_layers)
        self.norm_weight = nn.Parameter(torch.ones(n_layers, width))
        self.norm_bias = nn.Parameter(torch.zeros(n_layers, width))
        self.circuits = nn.ModuleList(
            MultiHeadReuploadingCircuit(n_heads, n_qubits, n_reuploads, n_blocks, entangler, engine=engine)
            for _ in range(n_layers)
        )
        self.output = nn.Linear(width, out_channels)
        self.register_buffer("reference_coords", reference_grid(in_features, reference_size), persistent=False)

    @property
    def width(self) -> int:
        return self.config.n_heads * self.config.n_qubits

    @property
    def n_layers(self) -> int:
        return 1 + self.config.hidden_layers

    @property
    def circuit_shape(self) -> tuple[int, ...]:
        """Shape of one layer's circuit weights ``(H, R+1, K, n, 3)``."""
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
        return hybrid_reference_statistics(self)

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
        batch, points, _ = coords.shape
        width, mode = self.width, self.config.modulation
        mods = modulations.reshape(batch, self.n_layers, -1)
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
            h = self._angles_circuit(layer, pre, m) if mode == "angles" else self.shared_circuit(layer, pre)
        return self.output(h)

    def shared_circuit(self, layer: int, features: torch.Tensor) -> torch.Tensor:
        """Shared-weight heads on ``(..., H*n)`` features, in full precision (bf16/fp16 phases are far too coarse)."""
        heads, n = self.config.n_heads, self.config.n_qubits
        dtype = features.dtype
        with torch.autocast(features.device.type, enabled=False):
            if features.dtype in (torch.float16, torch.bfloat16):
                features = features.float()
            out = self.circuits[layer](features.reshape(*features.shape[:-1], heads, n))
        return out.reshape(*features.shape).to(dtype)  # back to the layer's dtype (a model cast with .to(float16))

    def _angles_circuit(self, layer: int, features: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Per-sample circuit weights (shared weights + modulation): every (sample, head) pair is a head of its own."""
        batch, points, _ = features.shape
        heads, n = self.config.n_heads, self.config.n_qubits
        circuit = self.circuits[layer]
        real = torch.float32 if features.dtype in (torch.float16, torch.bfloat16) else features.dtype
        with torch.autocast(features.device.type, enabled=False):
            weights = circuit.weights.to(real) + m.to(real).reshape(batch, *self.circuit_shape)
            x = features.to(real).transpose(0, 1).reshape(points, batch * heads, n)
            if circuit.measuring:  # shots / noise: quantum.shots, circuits (B*H, P, n)
                out = circuit.measured(x.transpose(0, 1), weights.flatten(0, 1)).transpose(0, 1)
            else:
                out = simulate_reuploading_heads(x, weights.flatten(0, 1), circuit.entangler, engine=circuit.engine)
        return out.reshape(points, batch, heads * n).transpose(0, 1)


__all__ = ["ModulatedWideQIREN", "check_wide_config"]
