"""Quantum Visual Field (QVF; Wang, Theobalt, Golyanik, arXiv 2508.10900): neural amplitude encoding + real ansatz.

A coordinate ``x`` is mapped by a small classical network to energies ``E(x)`` over the ``2**n`` basis states (the
"learnable energy manifold"); the amplitude-encoded state is the Boltzmann state ``psi_b = exp(-E_b / 2) / sqrt(Z)``
(``|psi|^2 = softmax(-E)``, real and positive, so always a valid state); a fully entangled real ansatz (``RY`` layers,
``CNOT`` between every pair of qubits) acts on it, and the signal is read directly as ``<Z_c>`` of qubit ``c`` for
output channel ``c``: a projective measurement, with no classical layer after the circuit.

What the paper's text available to us did not fix, and is assumed here (stated again in docs/research/qinr_field.md):
the energy network is one sine layer, ``E = W_2 sin(omega (W_1 x + b_1)) + b_2`` (SIREN-style initialisation);
"fully entangled" is read as a CNOT on every ordered pair ``i < j`` after each ``RY`` layer; each channel is
``<Z_c>`` in ``[-1, 1]`` (signals are fitted in ``[-1, 1]``).

Device cost per execution (defaults: 6 qubits, 8 layers): amplitude state preparation of a 64-amplitude real
positive state (Mottonen: 63 ``RY``, 62 CNOTs), then 48 ``RY`` and 120 CNOTs (15 per layer): 182 CNOTs in all,
one circuit per coordinate, and ``<Z_0>`` estimated from shots on hardware. Parameters (2-D, one channel):
``(in + 1) h + (h + 1) 2**n + n L`` = 648 at the defaults (``h = 8``); 640 on 1-D signals.
"""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..quantum.amplitude_circuit import RealAmplitudeCircuit
from .config_checks import check_positive_numbers, check_whole_numbers
from .qiren import flatten_points


class EnergyManifold(nn.Module):
    """``x -> E(x) = W_2 sin(omega (W_1 x + b_1)) + b_2``: ``(N, in_features)`` -> ``(N, n_states)`` energies."""

    def __init__(self, in_features: int, hidden: int, n_states: int, omega: float) -> None:
        super().__init__()
        self.omega = omega
        self.first = nn.Linear(in_features, hidden)
        self.out = nn.Linear(hidden, n_states)
        with torch.no_grad():  # SIREN's first-layer initialisation: frequencies up to omega per coordinate unit
            self.first.weight.uniform_(-1 / in_features, 1 / in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.sin(self.omega * self.first(x)))


class QVF(ModelMixin, ConfigMixin):
    """Quantum Visual Field: coordinates ``(..., in_features)`` -> signal ``(..., out_features)`` in ``[-1, 1]``.

    ``n_qubits`` (``2**n_qubits`` energies), ``energy_hidden`` sine units with frequency ``energy_omega``,
    ``n_layers`` ansatz layers with ``entangler`` (``"cnot_all"`` or ``"cnot_ring"``). ``out_features`` channels read
    ``<Z_0> .. <Z_{out_features - 1}>`` (at most ``n_qubits``).

    Examples:
        >>> import torch
        >>> from qiren_gen.models.qvf import QVF
        >>> QVF(in_features=2).num_parameters(only_trainable=True)
        648
        >>> rgb = QVF(in_features=2, out_features=3)(torch.rand(4, 2) * 2 - 1)  # <Z_0>, <Z_1>, <Z_2> per point
        >>> rgb.shape, bool(rgb.abs().max() <= 1)
        (torch.Size([4, 3]), True)
    """

    # register_to_config signature (a config.json key per argument): the INR sizes, then QVF's own options
    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        n_qubits: int = 6,
        energy_hidden: int = 8,
        energy_omega: float = 10.0,
        n_layers: int = 8,
        entangler: str = "cnot_all",
    ) -> None:
        super().__init__()
        check_whole_numbers(self.config, in_features=1, energy_hidden=1)
        check_positive_numbers(self.config, "energy_omega")
        if isinstance(out_features, bool) or not isinstance(out_features, int) or not 1 <= out_features <= n_qubits:
            raise ValueError(f"out_features must be an int in 1..n_qubits ({n_qubits}): one qubit per channel, "
                             f"got {out_features!r}")
        self.circuit = RealAmplitudeCircuit(n_qubits, n_layers, out_features, entangler)
        self.energy = EnergyManifold(in_features, energy_hidden, 2**n_qubits, float(energy_omega))

    def amplitudes(self, coords: torch.Tensor) -> torch.Tensor:
        """The encoded states ``sqrt(softmax(-E(x)))``, ``(N, 2**n_qubits)``, each of unit norm."""
        return torch.exp(0.5 * torch.log_softmax(-self.energy(coords), dim=-1))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Signal values at ``coords``: ``(..., in_features) -> (..., out_features)``."""
        flat, lead = flatten_points(coords, self.config.in_features)
        return self.circuit(self.amplitudes(flat)).reshape(*lead, self.config.out_features)


__all__ = ["QVF", "EnergyManifold"]
