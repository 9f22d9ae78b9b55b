#!/usr/bin/env python
"""Train functa models on LFW faces (modulation modes x latent sizes, QIREN vs SIREN) and write docs/functa_lfw.md.

    python scripts/functa_lfw_sweep.py --work_dir runs/functa_lfw --docs_dir docs

Thin wrapper: the options and the driver live in ``qiren_gen.experiments.functa_lfw``.
"""
import sys

from qiren_gen.experiments.functa_lfw import main

if __name__ == "__main__":
    sys.exit(main())
