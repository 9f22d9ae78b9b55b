"""research/prior_superres: not installed; run its scripts from a checkout."""
