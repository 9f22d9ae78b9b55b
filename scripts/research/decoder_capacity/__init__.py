"""research/decoder_capacity: not installed; run its scripts from a checkout."""
