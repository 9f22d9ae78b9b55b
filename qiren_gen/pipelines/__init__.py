"""Diffusers pipelines of qiren-gen."""
from .signal_fitting import QirenSignalFittingPipeline, SignalFittingOutput
from .superresolution import QirenSuperResolutionPipeline, SuperResolutionOutput, interpolate_image

__all__ = [
    "QirenSignalFittingPipeline",
    "SignalFittingOutput",
    "QirenSuperResolutionPipeline",
    "SuperResolutionOutput",
    "interpolate_image",
]
