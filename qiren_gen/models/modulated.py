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

from functools import partial

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..quantum import DataReuploadingCircuit
from ..quantum.per_sample import simulate_reuploading_per_sample
from ..runtime.values import check_choice
from .baselines import Sine, siren_linear
from .config_checks import check_positive_numbers, check_whole_numbers
from .hybrid_decoder import MODULATIONS, NORM_EPS, HybridLayerDecoder, decoder_inputs, reference_grid

ENCODINGS = ("meta_sgd", "auto_decode")


class ModulatedQIREN(HybridLayerDecoder):
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
        >>> from qiren_gen.models import ModulatedQIREN
        >>> decoder = ModulatedQIREN(n_qubits=2, hidden_layers=1, modulation="film", reference_size=4)
        >>> decoder.modulation_dim  # a scale and a shift per qubit in each of the 2 hybrid layers
        8
        >>> grid = torch.rand(5, 2) * 2 - 1  # 5 points (y, x) in [-1, 1], one grid for the whole batch
        >>> base = decoder(grid, torch.zeros(3, decoder.modulation_dim))  # zero modulations: the shared function
        >>> base.shape, torch.allclose(base[0], base[2])
        (torch.Size([3, 5, 1]), True)
    """

    # register_to_config signature (a config.json key per argument): the options ModulatedWideQIREN mirrors
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
        self.build_hybrid_layers(
            n_qubits, lambda: DataReuploadingCircuit(n_qubits, n_reuploads, n_blocks, engine=engine)
        )

    @property
    def width(self) -> int:
        """Features per hybrid layer: one circuit's qubits."""
        return self.config.n_qubits

    def shared_circuit(self, layer: int, angles: torch.Tensor) -> torch.Tensor:
        """Shared-weight circuit on ``(..., n_qubits)`` angles in full precision: under autocast, phases in
        bf16/fp16 would be far too coarse."""
        with torch.autocast(angles.device.type, enabled=False):
            low = angles.dtype in (torch.float16, torch.bfloat16)
            out = self.circuits[layer]((angles.float() if low else angles).reshape(-1, self.width))
        return out.reshape(angles.shape).to(angles.dtype)  # back to the layer's dtype (a model cast to float16)

    def angles_circuit(self, layer: int, angles: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Per-sample circuits on ``(B, P, n_qubits)`` angles: the shared weights plus each sample's modulation."""
        circuit = self.circuits[layer]
        with torch.autocast(angles.device.type, enabled=False):
            real = angles.float()
            weights = circuit.weights + m.float().reshape(angles.shape[0], *self.circuit_shape)
            if circuit.measuring:  # shots / noise: quantum.shots
                out = circuit.measured(real, weights, partial(simulate_reuploading_per_sample, real, weights))
            else:
                out = simulate_reuploading_per_sample(real, weights)
        return out.to(angles.dtype)


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
        >>> decoder = ModulatedSIREN(out_channels=3, hidden_features=8, hidden_layers=1)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)  # 4 numbers -> 8 shifts per sine layer
        >>> rgb = decoder(torch.rand(2, 5, 2) * 2 - 1, modulator(torch.randn(2, 4)))  # 5 points of 2 images
        >>> tuple(rgb.shape)
        (2, 5, 3)
    """

    # register_to_config signature (a config.json key per argument): decoder sizes, then SIREN's frequency factors
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

    # register_to_config signature (a config.json key per argument): the hypernetwork's sizes, then how it encodes
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
        check_whole_numbers(self.config, latent_dim=1, modulation_dim=1, inner_steps=0, hidden_layers=0)
        check_choice("encoding", encoding, ENCODINGS)
        check_positive_numbers(self.config, "encode_lr")
        check_positive_numbers(self.config, "latent_l2", zero_allowed=True)
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


# NORM_EPS and reference_grid live in hybrid_decoder; named here too for the modules that import them from here.
__all__ = ["ENCODINGS", "MODULATIONS", "NORM_EPS", "ModulatedQIREN", "ModulatedSIREN", "LatentModulator",
           "reference_grid"]
