"""Latent-modulated INR decoders (Functa-style) and the latent -> modulation hypernetwork.

A shared decoder becomes one image's function through per-sample ``modulations`` (a flat ``(B, modulation_dim)``
tensor) produced by `LatentModulator` from a small latent:

* ``shift``: added to every hybrid layer's normalised pre-encoding features (circuits stay shared: fastest);
* ``film``: ``h * (1 + scale) + shift`` on the same features;
* ``angles``: added to every circuit's rotation angles (per-sample unitaries; see ``quantum.per_sample``).

Normalisation. The paper's BatchNorm over all points of a batch would make an image's render depend on the other
images in the batch and on the render grid. Here each hybrid layer is normalised with statistics of the
*unmodulated* decoder on a fixed pixel-centre reference grid (``normalization="reference"``): still computed
with gradients every forward pass (BatchNorm's reparametrisation and conditioning kept), but a function of the
parameters only, so renders are per-sample and resolution independent.
"""
from __future__ import annotations

import math
from functools import partial

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..data.grids import axis_coordinates
from ..quantum import DataReuploadingCircuit
from ..quantum.per_sample import simulate_reuploading_per_sample
from ..runtime.values import check_choice
from .baselines import Sine, siren_linear

MODULATIONS = ("shift", "film", "angles")
ENCODINGS = ("meta_sgd", "auto_decode")
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


def hybrid_reference_statistics(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Per-layer ``(mean, std)`` of a hybrid-layer decoder's unmodulated pre-encoding features on its reference grid.

    Shared by every decoder built of ``linears -> normalise (norm_weight, norm_bias) -> shared_circuit(layer, .)``
    layers.
    """
    if model.config.normalization == "none":
        return None
    stats = []
    h = model.reference_coords.to(model.output.weight.dtype)
    for layer in range(model.n_layers):
        pre = model.linears[layer](h)
        mean, std = pre.mean(0), torch.sqrt(pre.var(0, unbiased=False) + NORM_EPS)
        stats.append((mean, std))
        h = model.shared_circuit(layer, (pre - mean) / std * model.norm_weight[layer] + model.norm_bias[layer])
    return stats


class ModulatedQIREN(ModelMixin, ConfigMixin):
    """QIREN decoder taking per-sample modulations: ``forward(coords (B, P, 2), modulations (B, D)) -> (B, P, C)``.

    ``1 + hidden_layers`` hybrid layers ``Linear -> normalise (+ affine) -> modulate -> circuit``, then
    ``Linear(n_qubits, out_channels)``. ``modulation_dim`` tells the hypernetwork how many numbers to produce.

    Args:
        in_features: Coordinate dimensions (2 for images).
        out_channels: Image channels produced (1 grayscale, 3 RGB).
        n_qubits: Qubits of each hybrid layer's circuit (also the layers' width).
        hidden_layers: Hybrid layers after the first.
        n_reuploads: Times each circuit uploads its input.
        n_blocks: ``Rot`` + CZ-ring blocks per parameter layer of the circuits.
        modulation: How latents act: ``"shift"``, ``"film"`` or ``"angles"`` (see ``MODULATIONS``).
        normalization: ``"reference"`` normalises each layer's pre-activations with statistics of a fixed reference
            grid (resolution-independent renders); ``"none"`` leaves them as they are.
        reference_size: Side of the reference grid.
        engine: Circuit simulator engine, ``"fused"`` or ``"autograd"``.

    Examples:
        >>> import torch
        >>> from qiren_gen.models import LatentModulator, ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, reference_size=4)
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
        n_qubits: int = 8,
        hidden_layers: int = 2,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        modulation: str = "shift",
        normalization: str = "reference",
        reference_size: int = 16,
        engine: str = "fused",
    ) -> None:
        super().__init__()
        check_choice("modulation", modulation, MODULATIONS)
        check_choice("normalization", normalization, NORMALIZATIONS)
        if out_channels < 1 or hidden_layers < 0 or in_features < 1 or reference_size < 2:
            raise ValueError("need out_channels >= 1, hidden_layers >= 0, in_features >= 1, reference_size >= 2")
        n_layers = 1 + hidden_layers
        widths = [in_features] + [n_qubits] * hidden_layers
        self.linears = nn.ModuleList(nn.Linear(w, n_qubits) for w in widths)
        self.norm_weight = nn.Parameter(torch.ones(n_layers, n_qubits))
        self.norm_bias = nn.Parameter(torch.zeros(n_layers, n_qubits))
        self.circuits = nn.ModuleList(
            DataReuploadingCircuit(n_qubits, n_reuploads, n_blocks, engine=engine) for _ in range(n_layers)
        )
        self.output = nn.Linear(n_qubits, out_channels)
        self.register_buffer("reference_coords", reference_grid(in_features, reference_size), persistent=False)

    @property
    def n_layers(self) -> int:
        return 1 + self.config.hidden_layers

    @property
    def circuit_shape(self) -> tuple[int, ...]:
        return tuple(self.circuits[0].weights.shape)

    @property
    def modulation_dim(self) -> int:
        """Numbers per sample the hypernetwork must produce for this decoder."""
        n, mode = self.config.n_qubits, self.config.modulation
        per_layer = {"shift": n, "film": 2 * n, "angles": math.prod(self.circuit_shape)}[mode]
        return self.n_layers * per_layer

    def set_engine(self, engine: str) -> None:
        """Simulator engine of the shared-weight circuits: ``"fused"`` (fast) or ``"autograd"`` (2nd-order grads)."""
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
        n, mode = self.config.n_qubits, self.config.modulation
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
                pre = pre * (1 + m[:, None, :n]) + m[:, None, n:]
            if mode == "angles":
                with torch.autocast(pre.device.type, enabled=False):
                    weights = self.circuits[layer].weights + m.float().reshape(batch, *self.circuit_shape)
                    if self.circuits[layer].measuring:  # shots / noise: quantum.shots
                        angles = pre.float()
                        exact = partial(simulate_reuploading_per_sample, angles, weights)
                        h = self.circuits[layer].measured(angles, weights, exact).to(pre.dtype)
                    else:
                        h = simulate_reuploading_per_sample(pre.float(), weights).to(pre.dtype)
            else:
                h = self.shared_circuit(layer, pre.reshape(-1, n)).reshape(batch, points, n)
        return self.output(h)

    def shared_circuit(self, layer: int, angles: torch.Tensor) -> torch.Tensor:
        """Shared-weight circuit in full precision: under autocast, phases in bf16/fp16 would be far too coarse."""
        with torch.autocast(angles.device.type, enabled=False):
            low = angles.dtype in (torch.float16, torch.bfloat16)
            out = self.circuits[layer](angles.float() if low else angles)
        return out.to(angles.dtype)  # back to the layer's dtype: a model cast with .to(float16) stays consistent


class ModulatedSIREN(ModelMixin, ConfigMixin):
    """SIREN with per-sample ``shift`` (Functa's choice) or ``film`` modulations of every sine layer's pre-activation.

    The Functa baseline: same ``forward(coords, modulations)`` and ``modulation_dim`` interface as
    `ModulatedQIREN`.

    Args:
        in_features: Coordinate dimensions (2 for images).
        out_channels: Image channels produced.
        hidden_features: Width of the sine layers.
        hidden_layers: Sine layers after the first.
        modulation: ``"shift"`` or ``"film"``.
        first_omega_0: Frequency factor of the first sine layer.
        hidden_omega_0: Frequency factor of the other sine layers.

    Examples:
        >>> import torch
        >>> from qiren_gen.models import LatentModulator, ModulatedSIREN
        >>> decoder = ModulatedSIREN(hidden_features=8, hidden_layers=1)
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
        hidden_features: int = 16,
        hidden_layers: int = 2,
        modulation: str = "shift",
        first_omega_0: float = 30.0,
        hidden_omega_0: float = 30.0,
    ) -> None:
        super().__init__()
        check_choice("modulation", modulation, ("shift", "film"))
        widths = [in_features] + [hidden_features] * (hidden_layers + 1)
        self.linears = nn.ModuleList()
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            omega = first_omega_0 if i == 0 else hidden_omega_0
            self.linears.append(siren_linear(fan_in, fan_out, omega, first=i == 0))
        self.sines = nn.ModuleList(Sine(first_omega_0 if i == 0 else hidden_omega_0) for i in range(len(self.linears)))
        self.output = nn.Linear(hidden_features, out_channels)

    @property
    def n_layers(self) -> int:
        return self.config.hidden_layers + 1

    @property
    def modulation_dim(self) -> int:
        per_layer = self.config.hidden_features * (2 if self.config.modulation == "film" else 1)
        return self.n_layers * per_layer

    def set_engine(self, engine: str) -> None:
        """No circuits here; kept so training code can treat every decoder alike."""

    def reference_statistics(self) -> None:
        return None

    def forward(self, coords: torch.Tensor, modulations: torch.Tensor, stats=None) -> torch.Tensor:
        """Signal values ``(B, P, out_channels)``."""
        coords, modulations = decoder_inputs(self, coords, modulations)
        width = self.config.hidden_features
        mods = modulations.reshape(modulations.shape[0], self.n_layers, -1)
        h = coords
        for layer, (linear, sine) in enumerate(zip(self.linears, self.sines, strict=True)):
            pre = linear(h)
            m = mods[:, layer, None, :]
            if self.config.modulation == "film":
                pre = pre * (1 + m[..., :width]) + m[..., width:]
            else:
                pre = pre + m
            h = sine(pre)
        return self.output(h)


class LatentModulator(ModelMixin, ConfigMixin):
    """Hypernetwork ``latents (B, latent_dim) -> modulations (B, modulation_dim)``, plus how images are encoded.

    ``hidden_layers = 0`` is Functa's linear latent-to-modulation map; more layers give a ReLU MLP. The output bias
    is the zero latent's modulation (the shared base function). ``config.encoding`` says how
    ``qiren_gen.functa.encode_images`` finds an image's latent, from a zero latent, in ``config.inner_steps`` steps:

    * ``"meta_sgd"`` (default, Functa): SGD with the learned per-dimension step sizes ``inner_lr``;
    * ``"auto_decode"`` (DeepSDF-style auto-decoded latents): Adam (``encode_lr``) on the latent with the decoder
      frozen, minimising MSE + ``latent_l2 * ||z||^2``, the objective the latents were trained with.

    So decoder + modulator are all that is needed to encode and decode.

    Args:
        latent_dim: Numbers per image latent.
        modulation_dim: Numbers the decoder takes per image (its ``modulation_dim``; `for_decoder` reads it).
        hidden_features: Width of the hidden layers (with ``hidden_layers > 0``).
        hidden_layers: Hidden ReLU layers; 0 is a linear map.
        inner_steps: Encoding steps.
        inner_lr_init: Initial meta-SGD step size of every latent dimension.
        encoding: ``"meta_sgd"`` or ``"auto_decode"``.
        encode_lr: Adam learning rate of ``"auto_decode"`` encoding.
        latent_l2: Latent penalty of ``"auto_decode"`` encoding.

    Examples:
        >>> import torch
        >>> from qiren_gen.models import LatentModulator
        >>> modulator = LatentModulator(latent_dim=4, modulation_dim=6)
        >>> modulator(torch.zeros(2, 4)).shape
        torch.Size([2, 6])
    """

    @register_to_config
    def __init__(
        self,
        latent_dim: int = 64,
        modulation_dim: int = 24,
        hidden_features: int = 64,
        hidden_layers: int = 0,
        inner_steps: int = 3,
        inner_lr_init: float = 1.0,
        encoding: str = "meta_sgd",
        encode_lr: float = 1e-2,
        latent_l2: float = 1e-4,
    ) -> None:
        super().__init__()
        if latent_dim < 1 or modulation_dim < 1 or inner_steps < 0 or hidden_layers < 0:
            raise ValueError("need latent_dim >= 1, modulation_dim >= 1, inner_steps >= 0, hidden_layers >= 0")
        check_choice("encoding", encoding, ENCODINGS)
        if not encode_lr > 0 or not latent_l2 >= 0:
            raise ValueError(f"need encode_lr > 0 and latent_l2 >= 0, got {encode_lr!r} and {latent_l2!r}")
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_features), nn.ReLU()]
            width = hidden_features
        last = nn.Linear(width, modulation_dim)
        nn.init.zeros_(last.bias)  # zero latent -> zero modulation -> the unmodulated decoder
        layers.append(last)
        self.net = nn.Sequential(*layers)
        self.inner_lr = nn.Parameter(torch.full((latent_dim,), float(inner_lr_init)))

    @classmethod
    def for_decoder(cls, decoder: nn.Module, latent_dim: int, **kwargs) -> LatentModulator:
        """A modulator sized for ``decoder`` (uses its ``modulation_dim``)."""
        return cls(latent_dim=latent_dim, modulation_dim=decoder.modulation_dim, **kwargs)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.ndim != 2 or latents.shape[1] != self.config.latent_dim:
            raise ValueError(f"latents must have shape (B, {self.config.latent_dim}), got {tuple(latents.shape)}")
        weight = next(self.net.parameters())
        return self.net(latents.to(weight.dtype) if latents.is_floating_point() else latents)


__all__ = ["ENCODINGS", "MODULATIONS", "ModulatedQIREN", "ModulatedSIREN", "LatentModulator", "reference_grid"]
