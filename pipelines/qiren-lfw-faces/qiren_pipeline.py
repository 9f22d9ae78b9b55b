"""diffusers entry point: DiffusionPipeline.from_pretrained(<this folder or Hub id>, trust_remote_code=True)
imports the pipeline class from the installed qiren-gen package (pip install qiren-gen). Weights and configs
beside this file are safetensors and JSON; qiren-gen's own from_pretrained never executes this file."""
from qiren_gen.pipelines import QirenGenerationPipeline

__all__ = ["QirenGenerationPipeline"]
