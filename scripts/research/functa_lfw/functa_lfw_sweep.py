#!/usr/bin/env python
"""Train functa models on LFW faces (modulation modes x latent sizes, QIREN vs SIREN) and write
docs/research/functa_lfw.md.

    python scripts/research/functa_lfw/functa_lfw_sweep.py --work_dir runs/functa_lfw

Thin wrapper: the options and the driver live in ``research.functa_lfw.sweep``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from research.functa_lfw.sweep import main

if __name__ == "__main__":
    sys.exit(main())
