"""research/functa_lfw: not installed; run its scripts from a checkout."""
