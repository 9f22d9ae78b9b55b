#!/usr/bin/env python
"""Decoder capacity sweep on LFW faces: every decoder family at latent 32 and 64 vs PCA -> docs/decoder_capacity.md.

    python scripts/decoder_capacity.py            # the table in docs/ (about an hour on a 2-core CPU)
    python scripts/decoder_capacity.py --quick --docs_dir /tmp/capacity   # smoke run, a few minutes

Thin wrapper: the sweep lives in ``qiren_gen.experiments.decoder_capacity``.
"""
import sys

from qiren_gen.experiments.decoder_capacity import main

if __name__ == "__main__":
    sys.exit(main())
