"""DiffusionPipeline subclasses of qiren-gen."""
from .generation import QirenGenerationPipeline  # noqa: F401
