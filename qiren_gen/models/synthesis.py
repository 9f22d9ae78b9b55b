"""Coordinate features + latent-modulated synthesis layers: the layout of the QIREN paper's generator.

``coords -> features(coords) -> L modulated layers (width W, ReLU) -> Linear(W, out_channels)``.

Features depend on the coordinates only, so they are computed once per grid and shared by every sample of a batch
(and cached at inference, keyed by the grid and the feature parameters):

* ``features="circuit"`` (the ``circuit-features`` decoder; ``"quantum"``, its former name, still loads):
  ``Linear(in, H*n) -> reference normalisation (+ affine) -> H independent n-qubit data
  re-uploading circuits`` (``qiren_gen.quantum.heads``, one batched op), reading ``<Z>`` on every qubit: ``H*n``
  features. The paper's "quantum circuit features" (there 8 circuits of 2 qubits with a CNOT chain, the default
  entangler here: on 2 qubits PennyLane's CZ ring is the identity). ``encoding_scale`` (default ``None``: ``RZ(x)``
  at every upload) gives the circuits fixed per-re-upload scales, e.g. ``"ternary"`` (``RZ(3**r x)`` at upload ``r``);
  the Linear in front absorbs any common factor, so only the ratios between uploads change the function class.
  The features come from the circuits' exact Fourier series instead of a simulation per point wherever it applies
  (``models.circuit_series``: rendering, and training on image grids, where its coefficients and phases carry the
  gradients); ``set_feature_evaluation("simulate")`` keeps the simulator.
* ``features="fourier"`` (the ``fourier-features`` decoder): random Fourier features ``[sin(x B), cos(x B)]``,
  ``B ~ N(0, fourier_scale^2)`` fixed:
  the classical control (the paper's ReLU+RFF row) through the same synthesis code.

Latent modulation acts on the synthesis layers: ``shift`` (added to pre-activations), ``film`` (scale and shift) or
``weight`` (StyleGAN2: per-sample input-channel styles scale the weights, then each output row is demodulated to
unit norm).
"""
from __future__ import annotations

import contextlib
import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..quantum.heads import MultiHeadReuploadingCircuit
from ..runtime.values import check_choice
from .blocked_synthesis import blocked_synthesis_mse, blocked_weight_modulated_synthesis
from .circuit_series import FEATURE_EVALUATIONS, series_features
from .config_checks import check_positive_numbers, check_whole_numbers
from .modulated import NORM_EPS, decoder_inputs, reference_grid

FEATURES = ("circuit", "fourier")
"""Coordinate features of ``FeatureSynthesisDecoder``: the trainer's ``circuit-features`` and ``fourier-features``."""
FEATURE_ALIASES = {"quantum": "circuit"}
"""Former ``features`` values, still accepted so that saved pipelines (``features: "quantum"``) keep loading."""
SYNTHESIS_MODULATIONS = ("shift", "film", "weight")
_CACHE_ENTRIES = 4
SYNTHESIS_BLOCK_BYTES = 2**19
"""Bytes of one layer's activations per block when rendering on the CPU: two such buffers fit a 1 MiB L2 cache."""


class FeatureSynthesisDecoder(ModelMixin, ConfigMixin):
    """The shipped decoder (``--decoder circuit-features``): coordinate features, then modulated synthesis layers.

    ``forward(coords (B, P, in) or (P, in), modulations (B, D)) -> (B, P, out_channels)``. Same interface as
    `ModulatedQIREN` (``modulation_dim``, ``reference_statistics``, ``set_engine``), so the
    functa encode / decode functions, the trainers and the pipelines use it unchanged. Pass the coordinates as one
    ``(P, in)`` grid to share the feature computation across the batch.

    Args:
        in_features: Coordinate dimensions (2 for images).
        out_channels: Image channels produced.
        features: ``"circuit"``: quantum circuit features (``"quantum"``, the former name, is read as it);
            ``"fourier"``: random Fourier features (the classical control, ``--decoder fourier-features``).
        n_heads: Circuits side by side (circuit features).
        n_qubits: Qubits per circuit.
        n_reuploads: Times each circuit uploads its input.
        n_blocks: ``Rot`` + entangler blocks per parameter layer.
        entangler: Two-qubit layer of the circuits, one of ``qiren_gen.quantum.ENTANGLERS`` the heads run.
        frequency_init: Initial scale of the normalised circuit inputs.
        n_fourier: Random frequencies (Fourier features).
        fourier_scale: Standard deviation of the random frequencies.
        hidden_features: Width of the synthesis layers.
        hidden_layers: Synthesis layers.
        modulation: ``"shift"``, ``"film"`` or ``"weight"`` (StyleGAN2 weight demodulation).
        reference_size: Side of the grid whose statistics normalise the circuit inputs.
        encoding_scale: Fixed per-re-upload ``RZ`` scales of the circuits (e.g. ``"ternary"``); ``None``: ``RZ(x)``.

    Examples:
        >>> import torch
        >>> from qiren_gen.data import image_grid
        >>> from qiren_gen.models import FeatureSynthesisDecoder, LatentModulator
        >>> decoder = FeatureSynthesisDecoder(n_heads=2, n_qubits=2, hidden_features=8, hidden_layers=1)
        >>> modulator = LatentModulator.for_decoder(decoder, latent_dim=4)
        >>> grid = image_grid(4, 4)  # one (16, 2) grid shared by the batch
        >>> decoder(grid, modulator(torch.randn(3, 4))).shape
        torch.Size([3, 16, 1])
    """

    # register_to_config signature (a config.json key per argument): sizes, ModulatedWideQIREN's heads, layers
    @register_to_config
    def __init__(
        self,
        in_features: int = 2,
        out_channels: int = 1,
        features: str = "circuit",
        n_heads: int = 32,
        n_qubits: int = 2,
        n_reuploads: int = 2,
        n_blocks: int = 2,
        entangler: str = "cnot_chain",
        frequency_init: float = 1.0,
        n_fourier: int = 32,
        fourier_scale: float = 6.0,
        hidden_features: int = 256,
        hidden_layers: int = 3,
        modulation: str = "shift",
        reference_size: int = 16,
        encoding_scale: float | list | str | None = None,
    ) -> None:
        super().__init__()
        self.synthesis_dtype: torch.dtype | None = None
        """Autocast dtype of the synthesis layers (a runtime setting, not config: bfloat16 on CUDA when training)."""
        self.feature_evaluation = "series"
        """Circuit features: ``"series"`` (the circuits' exact Fourier series where it applies) or ``"simulate"``
        (always the simulator); a runtime setting, see `set_feature_evaluation`."""
        self._measured: tuple | None = None  # (token, series, weights): see set_measured_series
        features = FEATURE_ALIASES.get(features, features)
        check_choice("features", features, FEATURES)
        self.register_to_config(features=features)  # saved under the current name
        check_choice("modulation", modulation, SYNTHESIS_MODULATIONS)
        check_whole_numbers(self.config, in_features=1, out_channels=1, n_heads=1, n_qubits=1, n_fourier=1,
                            hidden_features=1, hidden_layers=1, reference_size=2)
        if features == "circuit":
            width = n_heads * n_qubits
            self.frequencies = nn.Linear(in_features, width)  # the paper's learnable frequency matrix
            self.norm_weight = nn.Parameter(torch.full((width,), float(frequency_init)))
            self.norm_bias = nn.Parameter(torch.zeros(width))
            self.circuits = MultiHeadReuploadingCircuit(n_heads, n_qubits, n_reuploads, n_blocks, entangler=entangler,
                                                        encoding_scale=encoding_scale)
        else:
            if encoding_scale is not None:
                raise ValueError("encoding_scale applies to features='circuit' only (the circuits' RZ encodings)")
            check_positive_numbers(self.config, "fourier_scale")
            width = 2 * n_fourier
            # Fixed random frequencies (saved with the weights, so a loaded model draws the same function).
            self.register_buffer("fourier_matrix", torch.randn(in_features, n_fourier) * fourier_scale)
        self.feature_dim = width
        widths = [width] + [hidden_features] * hidden_layers
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=False))
        for linear in self.linears:  # He init: ReLU halves the second moment; keep activations O(1) through depth
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        self.output = nn.Linear(hidden_features, out_channels)
        self.register_buffer("reference_coords", reference_grid(in_features, reference_size), persistent=False)
        self._feature_cache: list[tuple] = []

    # ------------------------------------------------------------------------------------------ interface
    @property
    def modulation_dim(self) -> int:
        """Numbers per sample the hypernetwork must produce: per layer W (shift), 2W (film) or fan-in (weight)."""
        cfg = self.config
        if cfg.modulation == "weight":
            return sum(linear.in_features for linear in self.linears)
        return cfg.hidden_layers * cfg.hidden_features * (2 if cfg.modulation == "film" else 1)

    def set_engine(self, engine: str) -> None:
        """Simulator engine of the feature circuits, when the heads module has a choice; Fourier features: no-op."""
        if self.config.features == "circuit" and hasattr(self.circuits, "engine"):
            self.circuits.engine = engine

    def set_feature_evaluation(self, mode: str) -> None:
        """``"series"`` (default): circuit features come from the circuits' exact Fourier series (one GEMM per head
        on image grids; in training too, differentiable, on grids with exact expectations) wherever it is exact and
        faster, else from the simulator; ``"simulate"``: always from the simulator, to compare. Fourier features: no
        effect."""
        check_choice("feature_evaluation", mode, FEATURE_EVALUATIONS)
        self.feature_evaluation = mode

    def set_measured_series(self, series) -> None:
        """Render circuit features from the heads' Fourier series measured on a device
        (`qiren_gen.quantum.device_coefficients.measure_head_series`) instead of computing it; ``None``
        computes it again. Used without gradients in ``"series"`` mode, and only for the weights it was measured
        with."""
        if series is not None and self.config.features != "circuit":
            raise ValueError("measured series apply to circuit features only")
        self._measured = None if series is None else (object(), series, self.circuits.weights.detach().clone())

    def _measured_series(self):
        if self._measured is None:
            return None
        if not torch.equal(self._measured[2], self.circuits.weights.detach().to(self._measured[2])):
            raise ValueError("the measured series is for other circuit weights: measure the circuits again")
        return self._measured[1]

    def reference_statistics(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """``[(mean, std)]`` of the frequency layer's output on the reference grid (quantum features), else None."""
        if self.config.features != "circuit":
            return None
        pre = self.frequencies(self.reference_coords.to(self.output.weight.dtype))
        return [(pre.mean(0), torch.sqrt(pre.var(0, unbiased=False) + NORM_EPS))]

    # ------------------------------------------------------------------------------------------ features
    def coordinate_features(self, coords: torch.Tensor, stats=None) -> torch.Tensor:
        """Features ``(..., feature_dim)`` of coordinates ``(..., in)``; cached unless a gradient must reach the
        coordinates or the feature parameters (so also while latents are encoded against a frozen decoder)."""
        if torch.is_grad_enabled() and (coords.requires_grad or any(t.requires_grad for t in self._feature_tensors())):
            return self._series_or_simulated_features(coords, stats)
        key = tuple((t.data_ptr(), t._version) for t in self._feature_tensors()) + (
            coords.shape, coords.dtype, coords.device, torch.is_inference_mode_enabled())  # inference tensors
        # cannot enter an autograd graph, so features cached in inference mode serve inference mode only
        if self.config.features == "circuit":  # shots / noise settings: one draw per grid and setting
            key += (self.circuits.measurement_key(), self.feature_evaluation,
                    None if self._measured is None else self._measured[0])
        for entry_key, entry_coords, entry_features in self._feature_cache:
            if entry_key == key and torch.equal(entry_coords, coords):
                return entry_features
        features = self._inference_features(coords, stats)
        self._feature_cache = [*self._feature_cache[-(_CACHE_ENTRIES - 1):], (key, coords.clone(), features)]
        return features

    def clear_feature_cache(self) -> None:
        """Forget the cached coordinate features: the next render computes them, as a first render does (what a
        benchmark of first renders times)."""
        self._feature_cache = []

    def _feature_tensors(self) -> list[torch.Tensor]:
        if self.config.features == "circuit":
            return [self.frequencies.weight, self.frequencies.bias, self.norm_weight, self.norm_bias,
                    *self.circuits.parameters()]
        return [self.fourier_matrix]

    def _inference_features(self, coords: torch.Tensor, stats) -> torch.Tensor:
        """Features when no gradient reaches them (rendering, or encoding against a frozen decoder):
        `_series_or_simulated_features` from detached weights, cached by the caller."""
        return self._series_or_simulated_features(coords, stats)

    def _series_or_simulated_features(self, coords: torch.Tensor, stats) -> torch.Tensor:
        """Circuit features from the circuits' exact Fourier series where it applies (``models.circuit_series``:
        differentiable on image grids when a gradient must reach the feature parameters), or from a series
        measured on a device (`set_measured_series`); else, or under ``set_feature_evaluation("simulate")``, from
        `_features`."""
        if self.config.features == "circuit" and self.feature_evaluation == "series":
            features = series_features(self, coords, self.reference_statistics() if stats is None else stats,
                                       self._measured_series())
            if features is not None:
                return features
        return self._features(coords, stats)

    def _feature_angles(self, coords: torch.Tensor, stats) -> torch.Tensor:
        """The circuits' input angles ``(..., H*n)``: frequency layer, reference normalisation, affine."""
        if stats is None:
            stats = self.reference_statistics()
        mean, std = stats[0]
        return (self.frequencies(coords) - mean) / std * self.norm_weight + self.norm_bias

    def _features(self, coords: torch.Tensor, stats) -> torch.Tensor:
        """Features by simulating the circuits at every point (differentiable), or the random Fourier features."""
        if self.config.features == "fourier":
            proj = coords @ self.fourier_matrix.to(coords.dtype)
            return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)
        pre = self._feature_angles(coords, stats)
        heads, qubits = self.config.n_heads, self.config.n_qubits
        with torch.autocast(pre.device.type, enabled=False):  # circuit phases need full precision
            angles = pre.float() if pre.dtype in (torch.float16, torch.bfloat16) else pre
            out = self.circuits(angles.reshape(*pre.shape[:-1], heads, qubits))
        return out.reshape(*pre.shape[:-1], heads * qubits).to(pre.dtype)

    # ------------------------------------------------------------------------------------------ synthesis
    def forward(
        self,
        coords: torch.Tensor,
        modulations: torch.Tensor,
        stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Signal values ``(B, P, out_channels)``; pass ``stats`` (from `reference_statistics`) to reuse them."""
        h, modulations = self._features_and_modulations(coords, modulations, stats)
        return self._synthesis(h, modulations)

    def per_image_mse(
        self,
        coords: torch.Tensor,
        modulations: torch.Tensor,
        targets: torch.Tensor,
        stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        once_differentiable: bool = True,
    ) -> torch.Tensor:
        """``(B,)`` mean squared error of each render against ``targets`` ``(B, P, out_channels)``: the value of
        ``(forward(coords, modulations, stats) - targets).square().mean(dim=(1, 2))``.

        On the CPU's blocked training path (weight modulation, gradients, no autocast) the error's gradient is
        computed block by block in the same pass as the renders (`blocked_synthesis.BlockedSynthesisMSE`), so no
        activation of the batch goes to memory and back; ``once_differentiable=False`` (a gradient that will itself
        be differentiated, e.g. second-order meta-learning) keeps the two-pass layers, whose forward does not
        compute a gradient the plain-op backward would recompute.
        """
        h, modulations = self._features_and_modulations(coords, modulations, stats)
        if (once_differentiable and self._trains_in_blocks(h, self.synthesis_dtype) and targets.dtype == h.dtype
                and not targets.requires_grad
                and targets.shape == (modulations.shape[0], h.shape[-2], self.output.out_features)):
            return blocked_synthesis_mse(h, self._modulated_layer_weights(modulations),
                                         [linear.bias for linear in self.linears], self.output.weight,
                                         self.output.bias, targets)
        return (self._synthesis(h, modulations) - targets).square().mean(dim=(1, 2))

    def _features_and_modulations(self, coords, modulations, stats) -> tuple[torch.Tensor, torch.Tensor]:
        """The coordinate features ``(P, F)`` (shared grid) or ``(B, P, F)`` and the checked modulations."""
        shared = isinstance(coords, torch.Tensor) and coords.ndim == 2
        checked, modulations = decoder_inputs(self, coords, modulations)
        with torch.autocast(modulations.device.type, enabled=False):  # the circuits (or Fourier features) stay fp32
            h = self.coordinate_features(checked[0] if shared else checked, stats)
        return h, modulations

    def _synthesis(self, h: torch.Tensor, modulations: torch.Tensor) -> torch.Tensor:
        """The modulated layers and the output layer on features ``h``: ``(B, P, out_channels)``."""
        device_type = modulations.device.type
        dtype = self.synthesis_dtype  # None: whatever autocast the caller runs under (none: fp32)
        if self._renders_in_blocks(h, dtype):
            return self._blocked_synthesis(h, modulations)
        if self._trains_in_blocks(h, dtype):
            return self._blocked_training_synthesis(h, modulations)
        with torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
            offset = 0
            for linear in self.linears:
                size = self._layer_modulation_size(linear)
                h = self._synthesis_layer(linear, h, modulations[:, offset : offset + size])
                offset += size
            out = self.output(h)
        return out.float() if dtype is not None else out

    def _renders_in_blocks(self, h: torch.Tensor, dtype: torch.dtype | None) -> bool:
        """Cache-blocked synthesis applies when nothing needs a gradient (rendering), on the CPU, without autocast."""
        return (self.config.modulation == "weight" and h.device.type == "cpu" and dtype is None
                and not torch.is_grad_enabled() and not _cpu_autocast())

    def _trains_in_blocks(self, h: torch.Tensor, dtype: torch.dtype | None) -> bool:
        """Cache-blocked forward and backward applies with gradients, on the CPU, without autocast (CUDA and bf16
        keep the batched layers)."""
        return (self.config.modulation == "weight" and h.device.type == "cpu" and dtype is None
                and torch.is_grad_enabled() and not _cpu_autocast())

    def _modulated_layer_weights(self, modulations: torch.Tensor) -> list[torch.Tensor]:
        """Each synthesis layer's per-image weights ``(B, out, in)``, styled and demodulated (weight modulation)."""
        weights, offset = [], 0
        for linear in self.linears:
            weights.append(modulated_weights(linear.weight, modulations[:, offset : offset + linear.in_features]))
            offset += linear.in_features
        return weights

    def _blocked_training_synthesis(self, h: torch.Tensor, modulations: torch.Tensor) -> torch.Tensor:
        """Training: the modulated layers and the output layer as one autograd function that runs forward and
        backward per image in cache-sized blocks of points (`blocked_synthesis`)."""
        return blocked_weight_modulated_synthesis(h, self._modulated_layer_weights(modulations),
                                                  [linear.bias for linear in self.linears], self.output.weight,
                                                  self.output.bias)

    def _blocked_synthesis(self, h: torch.Tensor, modulations: torch.Tensor) -> torch.Tensor:
        """Inference: every image's layers run block by block of ``SYNTHESIS_BLOCK_BYTES`` of activations, so they
        stay in the CPU's cache between layers (the same math as the batched layers, another summation order)."""
        weights = self._modulated_layer_weights(modulations)
        batch, points = modulations.shape[0], h.shape[-2]
        width = max(linear.out_features for linear in self.linears)
        block = max(1, SYNTHESIS_BLOCK_BYTES // (width * h.element_size()))
        out = h.new_empty(batch, points, self.output.out_features)
        buffers = [h.new_empty(min(block, points), width) for _ in range(2)]
        # Views taken once, not per block (at 512x512 a slice per block and layer costs ~3% of the render): each
        # image's transposed weights, each layer's buffer for a full and for the last block, every block of the
        # features and of every image's output (one split each).
        layers = [(linear.bias, [w[b].t() for b in range(batch)])
                  for linear, w in zip(self.linears, weights, strict=False)]
        sized = {rows: [buffers[k % 2][:rows, : linear.out_features] for k, linear in enumerate(self.linears)]
                 for rows in {min(block, points), points - (-(-points // block) - 1) * block}}
        inputs = h.split(block, dim=-2)
        outputs = [out[b].split(block) for b in range(batch)]
        out_weight, out_bias = self.output.weight.t(), self.output.bias
        for i, shared in enumerate(inputs):
            bufs = sized[shared.shape[-2]]
            for b in range(batch):
                x = shared if h.ndim == 2 else shared[b]
                for y, (bias, w_t) in zip(bufs, layers, strict=False):
                    x = torch.addmm(bias, x, w_t[b], out=y).relu_()
                torch.addmm(out_bias, x, out_weight, out=outputs[b][i])
        return out

    def _layer_modulation_size(self, linear: nn.Linear) -> int:
        mode = self.config.modulation
        return {"shift": linear.out_features, "film": 2 * linear.out_features, "weight": linear.in_features}[mode]

    def _synthesis_layer(self, linear: nn.Linear, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """One synthesis layer, ReLU included: ``(B, P, out)`` from inputs ``h`` ((P, in) shared or (B, P, in))."""
        if self.config.modulation == "weight":
            return weight_modulated_relu(linear.weight, linear.bias, h, m)
        pre = linear(h)  # shared inputs: computed once for the batch
        if pre.ndim == 2:
            pre = pre.unsqueeze(0)
        if self.config.modulation == "shift":
            return (pre + m[:, None, :]).relu_()
        width = linear.out_features
        return (pre * (1 + m[:, None, :width]) + m[:, None, width:]).relu_()


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 asks per device type under another name
        return torch.is_autocast_cpu_enabled()


def modulated_weights(weight: torch.Tensor, m: torch.Tensor, gain: float = math.sqrt(2)) -> torch.Tensor:
    """StyleGAN2 per-sample weights ``(B, out, in)``: ``gain * w_ij s_bj / ||w_i * s_b||`` with ``s_b = 1 + m_b``.

    The ReLU gain (He's sqrt(2)) and the demodulation are folded into the small weight tensor, so the big
    activations see one GEMM and nothing else.
    """
    styled = weight[None] * (1 + m)[:, None, :]
    return styled * (torch.rsqrt(styled.square().sum(-1, keepdim=True) + 1e-8) * gain)


def weight_modulated_relu(weight: torch.Tensor, bias: torch.Tensor, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``relu(h @ modulated_weights(weight, m)^T + bias)``: ``(B, P, out)`` for ``h`` (P, in) shared or (B, P, in).

    The bias rides in the GEMM (``addmm`` / ``baddbmm``) and the ReLU runs in place on the GEMM's own output (its
    backward needs only its result, the GEMM's only its inputs). Shared inputs (the first layer, fed by the grid's
    coordinate features) are one GEMM over the whole batch: ``(P, in) @ (in, B*out)``.
    """
    w = modulated_weights(weight, m)
    if h.ndim == 2:
        h = h.expand(w.shape[0], -1, -1)
    return torch.baddbmm(bias, h, w.transpose(1, 2)).relu_()


__all__ = ["FEATURES", "FEATURE_ALIASES", "SYNTHESIS_MODULATIONS", "FeatureSynthesisDecoder", "modulated_weights",
           "weight_modulated_relu"]
