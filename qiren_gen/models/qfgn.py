"""Quantum Fourier Gaussian Network (QFGN; Jin, Singh, Merz, arXiv 2504.19053): Gaussian Fourier features with the
low frequencies penalised, a data re-uploading circuit, and a Gaussian output stage.

``x -> [w(B) cos(pi B x), w(B) sin(pi B x)] -> Linear -> re-uploading circuit (<Z_j>) -> Linear -> Gaussian -> Linear``

* ``B`` (``n_frequencies x in_features``) is drawn once from ``N(0, frequency_scale**2)`` (Gaussian random Fourier
  features, fixed, saved with the model);
* the low-frequency penalty weights each feature pair by ``w(B) = 1 - exp(-|B|^2 / (2 (penalty * scale)^2))``, so the
  spectrum the circuit receives is not dominated by the near-zero frequencies a Gaussian draw is crowded with (the
  circuit's own spectrum already holds every sum and difference of the frequencies it is fed, low ones included);
  ``low_frequency_penalty=0`` switches it off;
* the circuit is the project's ``DataReuploadingCircuit`` (``Rot`` blocks, CZ ring, ``RZ`` encoding), so shots and
  noise work through `qiren_gen.quantum.shots.measurement` exactly as for QIREN, and its PennyLane twin is
  ``model.circuit.to_pennylane()``;
* the Gaussian output stage is ``exp(-z^2 / (2 sigma^2))`` on a Linear map of the expectations, then a Linear layer.

The paper's text available to us names these parts but not their exact forms; what is assumed here (the feature
weighting as the penalty's form, the Gaussian stage's placement and ``sigma``) is stated in
docs/research/qinr_field.md.

Device cost per execution (defaults: 8 qubits, 2 re-uploads, 2 blocks): one circuit of 48 ``Rot`` (three rotations
each), 16 ``RZ`` and 48 CZ gates (a CZ ring of 8 per block, 6 blocks), one per coordinate; the 8 ``<Z_j>`` are read
from the same shots. Parameters at the defaults: 653 (one channel; the fixed frequencies are not trained).
"""
from __future__ import annotations

import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..quantum import DataReuploadingCircuit
from .config_checks import check_positive_numbers, check_whole_numbers
from .qiren import flatten_points


def penalised_gaussian_frequencies(in_features: int, n_frequencies: int, scale: float, penalty: float,
                                   seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian frequencies ``B`` ``(n_frequencies, in_features)`` and their low-frequency weights ``w`` ``(n,)``."""
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(n_frequencies, in_features, generator=g) * scale
    if penalty > 0:
        w = 1 - torch.exp(-b.square().sum(-1) / (2 * (penalty * scale) ** 2))
    else:
        w = torch.ones(n_frequencies)
    return b, w


class PenalisedFourierFeatures(nn.Module):
    """``x -> [w cos(pi B x), w sin(pi B x)]`` with fixed ``B`` and ``w`` (buffers): ``(N, in)`` -> ``(N, 2 m)``."""

    def __init__(self, in_features: int, n_frequencies: int, scale: float, penalty: float, seed: int) -> None:
        super().__init__()
        b, w = penalised_gaussian_frequencies(in_features, n_frequencies, scale, penalty, seed)
        self.register_buffer("frequencies", b)
        self.register_buffer("feature_weights", w)
        self.out_features = 2 * n_frequencies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = math.pi * x @ self.frequencies.to(x.dtype).T
        w = self.feature_weights.to(x.dtype)
        return torch.cat([w * phase.cos(), w * phase.sin()], -1)


class QFGN(ModelMixin, ConfigMixin):
    """QFGN: coordinates ``(..., in_features)`` -> signal ``(..., out_features)``; defaults near 650 parameters.

    Examples:
        >>> import torch
        >>> from qiren_gen.models.qfgn import QFGN
        >>> model = QFGN(in_features=2)
        >>> model.num_parameters(only_trainable=True), model(torch.zeros(3, 2)).shape
        (653, torch.Size([3, 1]))
    """

    # register_to_config signature (a config.json key per argument): the INR sizes, QIREN's circuit sizes, then its own
    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        n_frequencies: int = 20,
        frequency_scale: float = 2.0,
        low_frequency_penalty: float = 0.5,
        n_qubits: int = 8,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        gaussian_features: int = 18,
        gaussian_sigma: float = 0.5,
        feature_seed: int = 0,
    ) -> None:
        super().__init__()
        check_whole_numbers(self.config, in_features=1, out_features=1, n_frequencies=1, gaussian_features=1)
        check_positive_numbers(self.config, "frequency_scale", "gaussian_sigma")
        check_positive_numbers(self.config, "low_frequency_penalty", zero_allowed=True)
        self.features = PenalisedFourierFeatures(in_features, n_frequencies, float(frequency_scale),
                                                 float(low_frequency_penalty), int(feature_seed))
        self.encode = nn.Linear(self.features.out_features, n_qubits)
        self.circuit = DataReuploadingCircuit(n_qubits, n_reuploads, n_blocks)
        self.gaussian = nn.Linear(n_qubits, gaussian_features)
        self.output = nn.Linear(gaussian_features, out_features)

    def set_engine(self, engine: str) -> None:
        """Choose the circuit's simulator engine: ``"fused"`` (fast) or ``"autograd"`` (higher-order gradients)."""
        self.circuit.engine = engine

    def expectations(self, flat: torch.Tensor) -> torch.Tensor:
        """The circuit's ``<Z_j>`` ``(N, n_qubits)`` for points ``(N, in_features)``."""
        return self.circuit(self.encode(self.features(flat)))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """The Gaussian output stage on expectations ``z``: ``Linear -> exp(-u^2 / (2 sigma^2)) -> Linear``."""
        u = self.gaussian(z)
        return self.output(torch.exp(-u.square() / (2 * self.config.gaussian_sigma**2)))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Signal values at ``coords``: ``(..., in_features) -> (..., out_features)``."""
        flat, lead = flatten_points(coords, self.config.in_features)
        return self.head(self.expectations(flat)).reshape(*lead, self.config.out_features)


__all__ = ["QFGN", "PenalisedFourierFeatures", "penalised_gaussian_frequencies"]
