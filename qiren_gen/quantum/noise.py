"""Noise channels for the re-uploading circuits: what a device does to them, as exact superoperators.

``NoiseModel`` places PennyLane's channels at fixed points of the circuit, the same in the density-matrix simulator
(`mixed`) and in the PennyLane export (`export`):

* after every gate (each ``Rot``, each encoding ``RZ``, each ``CZ`` / ``CNOT``), on every wire the gate touches:
  ``DepolarizingChannel(depolarizing)``, then ``AmplitudeDamping(amplitude_damping)`` (T1-like), then
  ``PhaseDamping(dephasing)`` (T2-like), each only when its probability is > 0;
* before measurement, on every wire: ``BitFlip(readout)`` (readout error; it also scales exact expectations:
  ``<Z_S>`` becomes ``(1 - 2 q)^|S| <Z_S>``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

CHANNELS = ("depolarizing", "amplitude_damping", "dephasing", "readout")


def check_probability(name: str, value) -> float:
    """``value`` as a float in [0, 1], else ``ValueError`` (one line)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"noise probability {name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"noise probability {name} must be in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class NoiseModel:
    """Per-gate channel probabilities (see the module docstring for where each channel acts). All default to 0."""

    depolarizing: float = 0.0
    amplitude_damping: float = 0.0
    dephasing: float = 0.0
    readout: float = 0.0

    def __post_init__(self) -> None:
        for name in CHANNELS:
            check_probability(name, getattr(self, name))

    @property
    def gate_noise(self) -> bool:
        """Whether any channel acts after gates (then a density-matrix simulation is needed)."""
        return self.depolarizing > 0 or self.amplitude_damping > 0 or self.dephasing > 0

    @property
    def is_noiseless(self) -> bool:
        return not self.gate_noise and self.readout == 0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def describe(self) -> str:
        parts = [f"{k}={v:g}" for k, v in self.to_dict().items() if v > 0]
        return ", ".join(parts) if parts else "noiseless"


def as_noise_model(noise) -> NoiseModel | None:
    """``None``, a ``NoiseModel``, a dict of channel probabilities, or a float (depolarizing p) -> ``NoiseModel``."""
    if noise is None or isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, dict):
        unknown = sorted(set(noise) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown noise channel(s) {unknown}; known: {list(CHANNELS)}")
        return NoiseModel(**noise)
    if isinstance(noise, (int, float)) and not isinstance(noise, bool):
        return NoiseModel(depolarizing=check_probability("depolarizing", noise))
    raise ValueError(f"noise must be None, a NoiseModel, a dict of {list(CHANNELS)} or a float, got {noise!r}")


def parse_noise(text: str | None) -> NoiseModel | None:
    """Command-line form ``depolarizing=1e-3,readout=0.01`` (or a bare float: depolarizing) -> ``NoiseModel``."""
    if text is None:
        return None
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        return as_noise_model(value)
    if "=" not in text:
        raise ValueError(f"noise must be a float or NAME=P[,NAME=P] with NAME in {list(CHANNELS)}, got {text!r}")
    values = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"noise: {part!r} is not NAME=P with P a number") from None
    return as_noise_model(values)


def kraus_operators(noise: NoiseModel) -> list[list[torch.Tensor]]:
    """The Kraus sets (complex128 ``2x2``) of the per-gate channels, in application order (PennyLane's definitions)."""
    sets = []
    p = noise.depolarizing
    if p > 0:
        eye = torch.eye(2, dtype=torch.complex128)
        x = torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128)
        y = torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128)
        z = torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128)
        sets.append([math.sqrt(1 - p) * eye] + [math.sqrt(p / 3) * m for m in (x, y, z)])
    g = noise.amplitude_damping
    if g > 0:
        sets.append([torch.tensor([[1, 0], [0, math.sqrt(1 - g)]], dtype=torch.complex128),
                     torch.tensor([[0, math.sqrt(g)], [0, 0]], dtype=torch.complex128)])
    g = noise.dephasing
    if g > 0:
        sets.append([torch.tensor([[1, 0], [0, math.sqrt(1 - g)]], dtype=torch.complex128),
                     torch.tensor([[0, 0], [0, math.sqrt(g)]], dtype=torch.complex128)])
    return sets


def gate_superoperator(noise: NoiseModel) -> torch.Tensor | None:
    """The composed per-wire channel as a ``4x4`` superoperator on ``vec(rho)`` (row-major), or ``None`` if none.

    ``(K rho K^H)_{ab} = sum_{cd} K_ac conj(K_bd) rho_cd``, so one channel is ``sum_k kron(K_k, conj(K_k))``.
    """
    sets = kraus_operators(noise)
    if not sets:
        return None
    total = torch.eye(4, dtype=torch.complex128)
    for kraus in sets:
        total = sum(torch.kron(k, k.conj()) for k in kraus) @ total
    return total


def readout_matrix(q: float) -> torch.Tensor:
    """Column-stochastic ``2x2`` map of one wire's outcome probabilities under ``BitFlip(q)``."""
    return torch.tensor([[1 - q, q], [q, 1 - q]], dtype=torch.float64)


__all__ = ["CHANNELS", "NoiseModel", "as_noise_model", "check_probability", "gate_superoperator", "kraus_operators",
           "parse_noise", "readout_matrix"]
