"""Build any of the paper's INR models by name, so CLIs and experiments share one list."""
from __future__ import annotations

from collections.abc import Callable

from diffusers.models.modeling_utils import ModelMixin

from .baselines import MLP, SIREN, FourierFeatureMLP
from .qfgn import QFGN
from .qiren import QIREN
from .qvf import QVF

QIREN_PLUS: dict = {"fourier_features": 4, "observables": "z+zz", "hidden_layers": 1}
"""``qiren-plus``: the best QIREN variant of ``scripts/research/qiren_search/search_qiren.py`` (``ff-s1`` in docs/research/qiren_search.md): fixed
``sin`` / ``cos`` features of the coordinates at 4 directions on each of the ternary radii 1, 3, 9 feed the first
Linear -> BatchNorm -> circuit; every circuit reads all ``<Z_i>`` and ``<Z_i Z_j>`` (36 features from 8 qubits), and
two hybrid layers instead of three keep it at 869 parameters (2-D), under SIREN's 1009. (Before: ``s3-zz``, encoding
scale 3 without the front end, 677 parameters.)"""


def is_qiren_plus(model) -> bool:
    """True for a QIREN whose configuration is the ``qiren-plus`` preset (its fitting recipe then applies)."""
    return isinstance(model, QIREN) and all(model.config.get(k) == v for k, v in QIREN_PLUS.items())


MODEL_BUILDERS: dict[str, Callable[..., ModelMixin]] = {
    "qiren": QIREN,
    "qiren-plus": lambda **kw: QIREN(**{**QIREN_PLUS, **kw}),
    "siren": SIREN,
    "relu": lambda **kw: MLP(activation="relu", **kw),
    "tanh": lambda **kw: MLP(activation="tanh", **kw),
    "relu-rff": lambda **kw: FourierFeatureMLP(learnable=False, **kw),
    "ffn": lambda **kw: FourierFeatureMLP(learnable=True, **kw),
    "qfgn": QFGN,
    "qvf": QVF,
}


def build_inr(name: str, in_features: int, out_features: int = 1, **kwargs) -> ModelMixin:
    """Instantiate the INR ``name`` (one of ``MODEL_BUILDERS``) for ``in_features``-D coordinates."""
    if name not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[name](in_features=in_features, out_features=out_features, **kwargs)


def parameter_table(in_features: int, out_features: int = 1) -> dict[str, int]:
    """Trainable parameter count of every model at its defaults."""
    return {name: build_inr(name, in_features, out_features).num_parameters(only_trainable=True) for name in MODEL_BUILDERS}
