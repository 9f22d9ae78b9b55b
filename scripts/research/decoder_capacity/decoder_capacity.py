#!/usr/bin/env python
"""Decoder capacity sweep on LFW faces: every decoder family at latent 32 and 64 vs PCA ->
docs/research/decoder_capacity.md.

    # the table in docs/research/ (about an hour on a 2-core CPU)
    python scripts/research/decoder_capacity/decoder_capacity.py
    # smoke run, a few minutes
    python scripts/research/decoder_capacity/decoder_capacity.py --quick --docs_dir /tmp/capacity

Thin wrapper: the sweep lives in ``research.decoder_capacity.capacity``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from research.decoder_capacity.capacity import main

if __name__ == "__main__":
    sys.exit(main())
