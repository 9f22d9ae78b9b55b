"""research/paper: not installed; run its scripts from a checkout."""
