#!/usr/bin/env python
"""Fine-tune the bundled pipeline once per --latent_init (encode on first visit, prior mean, zero) on LFW faces and
print the held-out reconstruction PSNR before / after of each, side by side.

    nice -n 10 python scripts/research/latent_init/compare_latent_init.py --work_dir /tmp/latent-init --steps 40

Thin wrapper: the study lives in ``research.latent_init.study``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from research.latent_init.study import VARIANTS, compare_latent_inits

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work_dir", default="/tmp/qiren-latent-init")
    p.add_argument("--pipeline", default="pipelines/qiren-lfw-faces")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=None)
    a = p.parse_args()
    compare_latent_inits(a.work_dir, a.pipeline, a.steps, a.batch_size, a.variants)
