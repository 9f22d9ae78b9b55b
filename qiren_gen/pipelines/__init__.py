"""DiffusionPipeline subclasses of qiren-gen: generation, signal fitting and superresolution."""
from .generation import QirenGenerationPipeline, bundled_pipeline_dir
from .signal_fitting import QirenSignalFittingPipeline, SignalFittingOutput
from .superresolution import QirenSuperResolutionPipeline, SuperResolutionOutput, interpolate_image

__all__ = [
    "QirenGenerationPipeline",
    "bundled_pipeline_dir",
    "QirenSignalFittingPipeline",
    "SignalFittingOutput",
    "QirenSuperResolutionPipeline",
    "SuperResolutionOutput",
    "interpolate_image",
]
