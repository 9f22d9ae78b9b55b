"""The QIREN decoder (Zhao et al., ICML 2024): hybrid layers of Linear -> BatchNorm1d -> re-uploading circuit."""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..quantum import DataReuploadingCircuit
from .config_checks import check_positive_numbers, check_whole_numbers
from .fourier_front import TERNARY_RADII, FourierFeatures


def flatten_points(x: torch.Tensor, features: int) -> tuple[torch.Tensor, torch.Size]:
    """``(..., features)`` -> ``(N, features)`` plus the leading shape, with a clear error on a wrong last dim."""
    if x.ndim == 0 or x.shape[-1] != features:
        raise ValueError(f"expected input of shape (..., {features}), got {tuple(x.shape)}")
    return x.reshape(-1, features), x.shape[:-1]


class HybridLayer(ModelMixin, ConfigMixin):
    """``Linear(in, n) -> BatchNorm1d(n) -> DataReuploadingCircuit(n)``: one QIREN hybrid layer.

    The Linear layer mixes coordinates and sets the frequencies the circuit sees; BatchNorm (over all points of the
    batch, as in the paper) keeps the encoding angles in a useful range. Input ``(..., in_features)``, output
    ``(..., n_outputs)`` (``n_qubits`` for the paper's ``<Z_j>`` readout). The circuit options (``entangler``,
    ``observables``, ``encoding_scale``, ``learnable_scale``) are ``DataReuploadingCircuit``'s; ``batch_norm=False``
    drops the normalisation and ``linear_scale`` multiplies the Linear layer's initial weights (its frequencies).
    """

    # register_to_config signature (a config.json key per argument): the circuit options QIREN repeats
    @register_to_config
    def __init__(
        self,
        in_features: int,
        n_qubits: int = 8,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        entangler: str = "cz_ring",
        observables: str | list = "z",
        encoding_scale: float | list | str | None = None,
        learnable_scale: bool = False,
        batch_norm: bool = True,
        linear_scale: float = 1.0,
    ) -> None:
        super().__init__()
        check_whole_numbers(self.config, in_features=1)
        check_positive_numbers(self.config, "linear_scale")
        self.linear = nn.Linear(in_features, n_qubits)
        if linear_scale != 1.0:
            with torch.no_grad():
                self.linear.weight.mul_(linear_scale)
        self.norm = nn.BatchNorm1d(n_qubits) if batch_norm else nn.Identity()
        self.circuit = DataReuploadingCircuit(n_qubits, n_reuploads, n_blocks, entangler=entangler,
                                              observables=observables, encoding_scale=encoding_scale,
                                              learnable_scale=learnable_scale)

    @property
    def out_features(self) -> int:
        return self.circuit.n_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map points ``(..., in_features)`` to circuit expectation values ``(..., n_outputs)``."""
        flat, lead = flatten_points(x, self.config.in_features)
        return self.circuit(self.norm(self.linear(flat))).reshape(*lead, self.out_features)


class QIREN(ModelMixin, ConfigMixin):
    """QIREN: ``1 + hidden_layers`` hybrid layers, then ``Linear(n_outputs, out_features)``.

    Defaults are the paper's: 8 qubits, 2 re-uploads, 2 blocks, 2 hidden hybrid layers (3 in all); about 650
    parameters for a 2-D grayscale image. Input coordinates ``(..., in_features)``, output ``(..., out_features)``.

    Variants (all default to the paper's): ``entangler`` and ``observables`` for every circuit; ``encoding_scale``
    for the first circuit (the one that sees coordinates: its scale sets the frequencies) and
    ``hidden_encoding_scale`` for the others, both fixed unless ``learnable_scale``; ``batch_norm``; ``linear_scale``
    multiplies the first Linear layer's initial weights (without BatchNorm, the initial frequency scale).
    ``encoding_scale="ternary[:BASE]"`` encodes ``RZ(BASE * 3**r x)`` at upload ``r`` (a non-degenerate spectrum).
    ``final_observables`` reads the last circuit differently (``"z+zz+zzz"``: three-qubit correlators too; the
    hidden circuits keep ``observables``). ``fourier_features > 0`` puts fixed ``sin`` / ``cos`` features of
    ``fourier_features`` directions at each of ``fourier_radii`` (default the ternary 1, 3, 9) before the first
    Linear layer (``FourierFeatures``).
    """

    # register_to_config signature (a config.json key per argument): the INR sizes, then HybridLayer's options
    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        n_qubits: int = 8,
        hidden_layers: int = 2,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        entangler: str = "cz_ring",
        observables: str | list = "z",
        encoding_scale: float | list | str | None = None,
        hidden_encoding_scale: float | list | str | None = None,
        learnable_scale: bool = False,
        batch_norm: bool = True,
        linear_scale: float = 1.0,
        final_observables: str | list | None = None,
        fourier_features: int = 0,
        fourier_radii: list[float] | None = None,
    ) -> None:
        super().__init__()
        check_whole_numbers(self.config, in_features=1, out_features=1, hidden_layers=0, fourier_features=0)
        self.front = None
        first_in = in_features
        if fourier_features:
            self.front = FourierFeatures(in_features, fourier_features,
                                         TERNARY_RADII if fourier_radii is None else fourier_radii)
            first_in = self.front.out_features
        common = dict(n_qubits=n_qubits, n_reuploads=n_reuploads, n_blocks=n_blocks, entangler=entangler,
                      learnable_scale=learnable_scale, batch_norm=batch_norm)
        final = observables if final_observables is None else final_observables

        def reads(index: int):
            return final if index == hidden_layers else observables

        layers = [HybridLayer(first_in, encoding_scale=encoding_scale, linear_scale=linear_scale,
                              observables=reads(0), **common)]
        for index in range(1, hidden_layers + 1):
            layers.append(HybridLayer(layers[-1].out_features, encoding_scale=hidden_encoding_scale,
                                      observables=reads(index), **common))
        self.hybrid_layers = nn.ModuleList(layers)
        self.output = nn.Linear(layers[-1].out_features, out_features)

    def set_engine(self, engine: str) -> None:
        """Choose the simulator engine of every circuit: ``"fused"`` (fast) or ``"autograd"`` (higher-order grads)."""
        for layer in self.hybrid_layers:
            layer.circuit.engine = engine

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Signal values at ``coords``: ``(..., in_features) -> (..., out_features)``."""
        flat, lead = flatten_points(coords, self.config.in_features)
        h = flat if self.front is None else self.front(flat)
        for layer in self.hybrid_layers:
            h = layer(h)
        return self.output(h).reshape(*lead, self.config.out_features)
