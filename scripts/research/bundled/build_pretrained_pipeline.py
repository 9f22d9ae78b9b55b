#!/usr/bin/env python
"""Rebuild the bundled pipeline ``pipelines/qiren-lfw-faces`` end to end on the CPU: export LFW faces -> train
stage 1 -> encode latents -> train the prior -> measure quality -> save the folder with its model card and
``docs/figures/lfw_samples.png``. Resumes if interrupted.

    python scripts/research/bundled/build_pretrained_pipeline.py [--workdir DIR] [--output DIR]

(defaults: ``--workdir runs/bundled --output pipelines/qiren-lfw-faces``)

Thin wrapper: the options and the driver live in ``research.bundled.build``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from research.bundled.build import main

if __name__ == "__main__":
    sys.exit(main())
