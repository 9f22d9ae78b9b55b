"""DiffusionPipeline subclasses of qiren-gen: generation, signal fitting and superresolution.

Names are imported on first use (PEP 562), so ``qiren-gen sample`` loads the generation pipeline without the signal
fitting and superresolution modules; ``from qiren_gen.pipelines import X`` works as before.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "QirenGenerationPipeline": ".generation",
    "bundled_pipeline_dir": ".folders",
    "QirenSignalFittingPipeline": ".signal_fitting",
    "SignalFittingOutput": ".signal_fitting",
    "QirenSuperResolutionPipeline": ".superresolution",
    "SuperResolutionOutput": ".superresolution",
    "interpolate_image": ".superresolution",
}

__all__ = [
    "QirenGenerationPipeline",
    "QirenSignalFittingPipeline",
    "QirenSuperResolutionPipeline",
    "SignalFittingOutput",
    "SuperResolutionOutput",
    "bundled_pipeline_dir",
    "interpolate_image",
]  # written out so that static readers (the API reference) see the public names


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .folders import bundled_pipeline_dir
    from .generation import QirenGenerationPipeline
    from .signal_fitting import QirenSignalFittingPipeline, SignalFittingOutput
    from .superresolution import QirenSuperResolutionPipeline, SuperResolutionOutput, interpolate_image
