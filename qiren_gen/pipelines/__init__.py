"""DiffusionPipeline subclasses of qiren-gen: generation, signal fitting and superresolution."""
from .generation import QirenGenerationPipeline
from .signal_fitting import QirenSignalFittingPipeline, SignalFittingOutput
from .superresolution import QirenSuperResolutionPipeline, SuperResolutionOutput, interpolate_image

__all__ = [
    "QirenGenerationPipeline",
    "QirenSignalFittingPipeline",
    "SignalFittingOutput",
    "QirenSuperResolutionPipeline",
    "SuperResolutionOutput",
    "interpolate_image",
]
