"""What a stage-1 checkpoint must match to be resumed: the models' configs (and the latent table's shape)."""
from __future__ import annotations

import json
from typing import Any

LATER_OPTIONS = ("encoding_scale",)
"""Model options added after checkpoints existed: left out at their default, so those checkpoints still resume."""


def model_signature(decoder, modulator) -> dict[str, Any]:
    """JSON-able configs of both models: what a checkpoint must match to be resumed."""
    def clean(model):
        config = json.loads(model.to_json_string())
        return {k: v for k, v in config.items() if not k.startswith("_")
                and not (k in LATER_OPTIONS and v is None)}

    return {"decoder_class": type(decoder).__name__, "decoder": clean(decoder), "modulator": clean(modulator)}


def run_signature(decoder, modulator, table=None) -> dict[str, Any]:
    """`model_signature`, plus the latent table's shape and update rule when the run auto-decodes."""
    signature = model_signature(decoder, modulator)
    if table is not None:
        signature["latent_table"] = list(table.latents.shape)
        signature["latent_update"] = "rowwise_adam"  # tables of the earlier dense update cannot resume here
    return signature


__all__ = ["LATER_OPTIONS", "model_signature", "run_signature"]
