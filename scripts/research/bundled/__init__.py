"""research/bundled: not installed; run its scripts from a checkout."""
