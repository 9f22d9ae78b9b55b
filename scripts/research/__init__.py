"""research: not installed; run its scripts from a checkout."""
