"""The fitting models' names and their former spellings, read without importing torch: ``qiren-gen fit`` and
``superres`` check ``--model`` with them before any model is built, and ``qiren_gen.models.MODEL_BUILDERS`` is keyed
by the same names."""
from __future__ import annotations

FIT_MODEL_NAMES = ("qiren", "qiren_plus", "siren", "relu", "tanh", "relu_rff", "ffn", "qfgn", "qvf")
"""The fitting models, snake_case like every other choice value of the package (``cnot_ring``, ``modulated_qiren``)."""
MODEL_ALIASES = {name.replace("_", "-"): name for name in FIT_MODEL_NAMES if "_" in name}
"""Former spellings, still accepted and read as the current name, so that old commands and scripts work:
``qiren-plus`` and ``relu-rff`` (the names before they became snake_case)."""


def canonical_model_name(name: str) -> str:
    """The current name of the fitting model ``name``: a former spelling (``MODEL_ALIASES``) becomes the name it
    stands for; any other value comes back as given, for the caller's check to refuse.

    Examples:
        >>> from qiren_gen.runtime.model_names import canonical_model_name
        >>> canonical_model_name("qiren-plus"), canonical_model_name("relu_rff"), canonical_model_name("siren")
        ('qiren_plus', 'relu_rff', 'siren')
    """
    return MODEL_ALIASES.get(name, name) if isinstance(name, str) else name


__all__ = ["FIT_MODEL_NAMES", "MODEL_ALIASES", "canonical_model_name"]
