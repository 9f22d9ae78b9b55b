"""qiren-gen: quantum implicit neural representations (QIREN) as a Diffusers-style functional generative model."""
__version__ = "0.1.0"
