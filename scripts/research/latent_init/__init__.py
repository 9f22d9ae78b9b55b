"""research/latent_init: not installed; run its scripts from a checkout."""
