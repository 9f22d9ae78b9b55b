"""Build any model of the package by name: the paper's INRs (``MODEL_BUILDERS``) and the latent-modulated decoders
of stage 1 (``DECODER_BUILDERS``), so CLIs, trainers, pipelines and experiments share one list of each."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffusers.models.modeling_utils import ModelMixin

from ..runtime.model_names import canonical_model_name
from .baselines import MLP, SIREN, FourierFeatureMLP
from .modulated import ModulatedQIREN, ModulatedSIREN
from .qfgn import QFGN
from .qiren import QIREN
from .qvf import QVF
from .synthesis import FeatureSynthesisDecoder
from .wide import ModulatedWideQIREN

QIREN_PLUS: dict = {"fourier_features": 4, "observables": "z+zz", "hidden_layers": 1}
"""``qiren_plus``: the best QIREN variant of ``scripts/research/qiren_search/search_qiren.py`` (``ff-s1`` in
docs/research/qiren_search.md): fixed ``sin`` / ``cos`` features of the coordinates at 4 directions on each of the
ternary radii 1, 3, 9 feed the first Linear -> BatchNorm -> circuit; every circuit reads all ``<Z_i>`` and
``<Z_i Z_j>`` (36 features from 8 qubits), and two hybrid layers instead of three keep it at 869 parameters (2-D),
under SIREN's 1009. (Before: ``s3-zz``, encoding scale 3 without the front end, 677 parameters.)"""


def is_qiren_plus(model) -> bool:
    """True for a QIREN whose configuration is the ``qiren_plus`` preset (its fitting recipe then applies)."""
    return isinstance(model, QIREN) and all(model.config.get(k) == v for k, v in QIREN_PLUS.items())


MODEL_BUILDERS: dict[str, Callable[..., ModelMixin]] = {
    "qiren": QIREN,
    "qiren_plus": lambda **kw: QIREN(**{**QIREN_PLUS, **kw}),
    "siren": SIREN,
    "relu": lambda **kw: MLP(activation="relu", **kw),
    "tanh": lambda **kw: MLP(activation="tanh", **kw),
    "relu_rff": lambda **kw: FourierFeatureMLP(learnable=False, **kw),
    "ffn": lambda **kw: FourierFeatureMLP(learnable=True, **kw),
    "qfgn": QFGN,
    "qvf": QVF,
}
"""The fitting models by name (``qiren_gen.runtime.model_names.FIT_MODEL_NAMES``, in that order: a test keeps them
equal); ``build_inr`` also takes the former spellings ``qiren-plus`` / ``relu-rff`` (``MODEL_ALIASES``)."""


def build_inr(name: str, in_features: int, out_features: int = 1, **kwargs) -> ModelMixin:
    """Instantiate the INR ``name`` (one of ``MODEL_BUILDERS``, or a former spelling such as ``qiren-plus``) for
    ``in_features``-D coordinates."""
    canonical = canonical_model_name(name)
    if canonical not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[canonical](in_features=in_features, out_features=out_features, **kwargs)


def parameter_table(in_features: int, out_features: int = 1) -> dict[str, int]:
    """Trainable parameter count of every model at its defaults."""
    return {name: build_inr(name, in_features, out_features).num_parameters(only_trainable=True)
            for name in MODEL_BUILDERS}


def _feature_decoder(features: str) -> Callable[[Any], ModelMixin]:
    """A builder of `FeatureSynthesisDecoder` with ``features`` (``"circuit"`` or ``"fourier"``)."""
    def build(sizes) -> ModelMixin:
        return FeatureSynthesisDecoder(
            out_channels=sizes.channels, features=features, n_heads=sizes.n_heads, n_qubits=sizes.n_qubits,
            n_reuploads=sizes.n_reuploads, n_blocks=sizes.n_blocks, entangler=sizes.entangler,
            frequency_init=sizes.frequency_init, n_fourier=sizes.n_fourier, fourier_scale=sizes.fourier_scale,
            hidden_features=sizes.hidden_features, hidden_layers=sizes.hidden_layers, modulation=sizes.modulation,
            encoding_scale=sizes.encoding_scale if features == "circuit" else None,
        )

    return build


DECODER_BUILDERS: dict[str, tuple[type[ModelMixin], Callable[[Any], ModelMixin]]] = {
    "modulated_qiren": (ModulatedQIREN, lambda s: ModulatedQIREN(
        out_channels=s.channels, n_qubits=s.n_qubits, hidden_layers=s.hidden_layers, n_reuploads=s.n_reuploads,
        n_blocks=s.n_blocks, modulation=s.modulation)),
    "modulated_siren": (ModulatedSIREN, lambda s: ModulatedSIREN(
        out_channels=s.channels, hidden_features=s.hidden_features, hidden_layers=s.hidden_layers,
        modulation=s.modulation)),
    "circuit_features": (FeatureSynthesisDecoder, _feature_decoder("circuit")),
    "fourier_features": (FeatureSynthesisDecoder, _feature_decoder("fourier")),
    "wide_qiren": (ModulatedWideQIREN, lambda s: ModulatedWideQIREN(
        out_channels=s.channels, n_heads=s.n_heads, n_qubits=s.n_qubits, hidden_layers=s.hidden_layers,
        n_reuploads=s.n_reuploads, n_blocks=s.n_blocks, entangler=s.entangler, modulation=s.modulation)),
}
"""The stage-1 decoders by name: ``(class, builder)``; a builder takes any object with the sizes as attributes
(``FunctaTrainingConfig``, parsed flags). ``modulated_qiren``: the paper's QIREN, latent-modulated;
``modulated_siren``: Functa's SIREN; ``circuit_features`` / ``fourier_features``: `FeatureSynthesisDecoder`
with quantum circuit features or the classical Fourier control; ``wide_qiren``: ``n_heads`` circuits of
``n_qubits`` per hybrid layer. A new decoder is one entry here.

Decoder names are snake_case like the training scripts' other choice values (``meta_sgd``, ``cnot_chain``), as
diffusers spells its own (``v_prediction``); names owned by others keep their owners' spelling (torch-fidelity's
``inception-v3-compat``, PennyLane devices, Qiskit backends, command names)."""
DECODERS = tuple(DECODER_BUILDERS)
"""The stage-1 decoder names (``qiren`` / ``siren`` name the unmodulated fitting models of ``MODEL_BUILDERS``)."""
DECODER_ALIASES = {"qiren": "modulated_qiren", "siren": "modulated_siren",
                   **{name.replace("_", "-"): name for name in DECODERS}}
"""Former decoder names, still accepted and read as the current name, so that old commands, Python configs and run
folders work: ``qiren`` / ``siren``, and the hyphenated spellings (``circuit-features``) used before the names became
snake_case."""
DECODER_CLASSES = tuple(dict.fromkeys(cls for cls, _ in DECODER_BUILDERS.values()))
"""Every modulated decoder class a generation pipeline or a stage-1 folder may hold."""


def canonical_decoder(name: str) -> str:
    """The current name of the decoder ``name``: a former name or spelling (``DECODER_ALIASES``) becomes the name
    it stands for; any other value comes back as given, for the caller's check to refuse.

    Examples:
        >>> from qiren_gen.models.registry import canonical_decoder
        >>> canonical_decoder("circuit-features"), canonical_decoder("siren"), canonical_decoder("wide_qiren")
        ('circuit_features', 'modulated_siren', 'wide_qiren')
    """
    return DECODER_ALIASES.get(name, name) if isinstance(name, str) else name


def build_decoder(sizes) -> ModelMixin:
    """The decoder named ``sizes.decoder`` (one of ``DECODERS`` or a former name) with ``sizes``' sizes, freshly
    initialised (seed the RNG first for the same weights on every process)."""
    name = canonical_decoder(sizes.decoder)
    if name not in DECODER_BUILDERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {sizes.decoder!r}")
    return DECODER_BUILDERS[name][1](sizes)
