"""Classical INR baselines from the QIREN paper: SIREN, ReLU / Tanh MLPs, ReLU + random Fourier features, FFN."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .qiren import flatten_points

# Default widths follow the paper's comparison: every baseline a little LARGER than QIREN (657 parameters for a 2-D
# grayscale image, 649 for audio), so QIREN keeps "the fewest parameters". Width 21 with 2 hidden layers gives SIREN /
# ReLU / Tanh 1009 (2-D) and 988 (1-D) parameters: QIREN has 34.3% fewer for audio, the paper's "35.1% fewer than
# SIREN" (which implies a ~1000-parameter SIREN). ReLU+RFF: 10 frequencies, width 21, 1 hidden layer: 925.


class _PointwiseINR(ModelMixin, ConfigMixin):
    """Shared ``forward``: flatten points, run ``self.net``, restore the leading shape."""

    def features(self, flat: torch.Tensor) -> torch.Tensor:
        return flat

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Signal values at ``coords``: ``(..., in_features) -> (..., out_features)``."""
        flat, lead = flatten_points(coords, self.config.in_features)
        return self.net(self.features(flat)).reshape(*lead, self.config.out_features)


def coordinate_mlp(
    in_features: int,
    hidden_features: int,
    hidden_layers: int,
    out_features: int,
    activation: Callable[[int], nn.Module],
    linear: Callable[[int, int, int], nn.Linear] = lambda index, fan_in, fan_out: nn.Linear(fan_in, fan_out),
) -> nn.Sequential:
    """The body of every pointwise baseline: ``2 + hidden_layers`` layers ``linear(index, fan_in, fan_out)``, each
    but the last followed by ``activation(index)`` (index 0 is the layer that sees the coordinates)."""
    widths = [in_features] + [hidden_features] * (hidden_layers + 1) + [out_features]
    mods: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        mods.append(linear(index, fan_in, fan_out))
        if index < hidden_layers + 1:
            mods.append(activation(index))
    return nn.Sequential(*mods)


class MLP(_PointwiseINR):
    """Plain coordinate MLP (``activation`` = ``"relu"`` or ``"tanh"``): the paper's ReLU and Tanh baselines."""

    # register_to_config signature (a config.json key per argument): the INR sizes SIREN and FourierFeatureMLP mirror
    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        hidden_features: int = 21,
        hidden_layers: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        acts = {"relu": nn.ReLU, "tanh": nn.Tanh}
        if activation not in acts:
            raise ValueError(f"activation must be one of {sorted(acts)}, got {activation!r}")
        self.net = coordinate_mlp(in_features, hidden_features, hidden_layers, out_features,
                                  lambda index: acts[activation]())


class Sine(nn.Module):
    """``sin(omega_0 * x)``, SIREN's activation."""

    def __init__(self, omega_0: float) -> None:
        super().__init__()
        self.omega_0 = omega_0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega_0 * x)


def siren_linear(fan_in: int, fan_out: int, omega: float, first: bool) -> nn.Linear:
    """A ``Linear(fan_in, fan_out)`` with SIREN's initialisation (Sitzmann et al. 2020, section 3.2): the first layer
    ``U(-1/n, 1/n)`` spans several periods of sin over [-1, 1]; later layers ``U(-sqrt(6/n)/omega, sqrt(6/n)/omega)``
    keep their activations ~arcsine distributed. Shared by `SIREN` and ``ModulatedSIREN``."""
    linear = nn.Linear(fan_in, fan_out)
    bound = 1 / fan_in if first else math.sqrt(6 / fan_in) / omega
    nn.init.uniform_(linear.weight, -bound, bound)
    return linear


class SIREN(_PointwiseINR):
    """SIREN (Sitzmann et al. 2020): sine activations with the paper's initialisation."""

    # register_to_config signature (a config.json key per argument): MLP's sizes, then the two frequency factors
    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        hidden_features: int = 21,
        hidden_layers: int = 2,
        first_omega_0: float = 30.0,
        hidden_omega_0: float = 30.0,
    ) -> None:
        super().__init__()
        def omega(index: int) -> float:
            return first_omega_0 if index == 0 else hidden_omega_0

        self.net = coordinate_mlp(
            in_features, hidden_features, hidden_layers, out_features, lambda index: Sine(omega(index)),
            lambda index, fan_in, fan_out: siren_linear(fan_in, fan_out, omega(index), first=index == 0),
        )


class FourierFeatureMLP(_PointwiseINR):
    """ReLU MLP on Fourier features ``[sin(2 pi x B), cos(2 pi x B)]`` of the coordinates.

    ``learnable=False`` is ReLU+RFF (Tancik et al. 2020: ``B ~ N(0, scale^2)`` fixed, saved as a buffer);
    ``learnable=True`` trains ``B``: a Fourier-feature network (FFN) whose frequencies adapt, the classical
    counterpart of QIREN's Linear -> Fourier-basis layer.
    """

    # register_to_config signature (a config.json key per argument): MLP's sizes, then the Fourier features'
    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        hidden_features: int = 21,
        hidden_layers: int = 1,
        num_frequencies: int = 10,
        scale: float = 3.0,
        learnable: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        freqs = torch.randn(in_features, num_frequencies, generator=gen) * scale
        if learnable:
            self.frequencies = nn.Parameter(freqs)
        else:
            self.register_buffer("frequencies", freqs)
        self.net = coordinate_mlp(2 * num_frequencies, hidden_features, hidden_layers, out_features,
                                  lambda index: nn.ReLU())

    def features(self, flat: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * flat @ self.frequencies
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)
