#!/usr/bin/env python
"""Rebuild the bundled pipeline ``pipelines/qiren-lfw-faces`` end to end on the CPU: export LFW faces -> train
stage 1 -> encode latents -> train the prior -> measure quality -> save the folder with its model card and
``docs/figures/lfw_samples.png``. Resumes if interrupted.

    python scripts/build_pretrained_pipeline.py [--workdir runs/bundled] [--output pipelines/qiren-lfw-faces]

Thin wrapper: the options and the driver live in ``qiren_gen.experiments.bundled``.
"""
import sys

from qiren_gen.experiments.bundled import main

if __name__ == "__main__":
    sys.exit(main())
