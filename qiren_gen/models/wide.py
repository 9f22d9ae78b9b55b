"""``ModulatedWideQIREN``: the modulated QIREN decoder with wide hybrid layers (many circuits side by side).

``ModulatedQIREN`` is as wide as one circuit has qubits (8 features), which caps what a latent can draw. Here each
hybrid layer feeds ``n_heads`` independent ``n_qubits``-qubit re-uploading circuits, so the width is
``n_heads * n_qubits`` (e.g. 32 x 4 = 128) while every circuit stays small and cheap to simulate; all heads run as
one batched operation (`MultiHeadReuploadingCircuit`). Normalisation and modulation work
as in `ModulatedQIREN` (reference-grid statistics: per-sample, resolution independent).
"""
from __future__ import annotations

import torch
from diffusers.configuration_utils import register_to_config

from ..quantum import MultiHeadReuploadingCircuit, simulate_reuploading_heads
from ..quantum.gates import check_entangler
from ..quantum.heads import check_head_count
from ..quantum.simulator import check_circuit_size
from .hybrid_decoder import HybridLayerDecoder


def check_wide_config(n_heads: int, n_qubits: int, hidden_width: int | None) -> None:
    """Raise ``ValueError`` naming the field when heads, qubits and width do not fit together."""
    check_head_count(n_heads)
    check_circuit_size(n_qubits, 1, 1)
    if hidden_width is not None and hidden_width != n_heads * n_qubits:
        raise ValueError(
            f"hidden_width must equal n_heads * n_qubits = {n_heads} * {n_qubits} = {n_heads * n_qubits}, "
            f"got {hidden_width}"
        )


class ModulatedWideQIREN(HybridLayerDecoder):
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
        >>> decoder = ModulatedWideQIREN(n_heads=3, n_qubits=2, hidden_layers=1, entangler="cnot_chain")
        >>> decoder.width, decoder.modulation_dim  # 3 circuits of 2 qubits side by side; shifts for 2 layers
        (6, 12)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> decoder(torch.rand(3, 5, 2) * 2 - 1, modulator(torch.randn(3, 4))).shape  # 5 points of 3 images
        torch.Size([3, 5, 1])
    """

    # register_to_config signature (a config.json key per argument): ModulatedQIREN's, plus heads and entangler
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
        check_entangler(entangler)
        self.build_hybrid_layers(
            n_heads * n_qubits,
            lambda: MultiHeadReuploadingCircuit(n_heads, n_qubits, n_reuploads, n_blocks, entangler, engine=engine),
        )

    @property
    def width(self) -> int:
        """Features per hybrid layer: ``n_heads * n_qubits``."""
        return self.config.n_heads * self.config.n_qubits

    def shared_circuit(self, layer: int, features: torch.Tensor) -> torch.Tensor:
        """Shared-weight heads on ``(..., H*n)`` features, in full precision (bf16/fp16 phases are far too coarse)."""
        heads, n = self.config.n_heads, self.config.n_qubits
        dtype = features.dtype
        with torch.autocast(features.device.type, enabled=False):
            if features.dtype in (torch.float16, torch.bfloat16):
                features = features.float()
            out = self.circuits[layer](features.reshape(*features.shape[:-1], heads, n))
        return out.reshape(*features.shape).to(dtype)  # back to the layer's dtype (a model cast with .to(float16))

    def angles_circuit(self, layer: int, features: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
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
