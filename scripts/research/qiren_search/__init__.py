"""research/qiren_search: not installed; run its scripts from a checkout."""
