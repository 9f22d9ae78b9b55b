"""The decoders on a simulated quantum device: PSNR vs shots and vs depolarizing noise, and the device budget per
image; writes docs/hardware.md, docs/hardware.json, docs/figures/hardware_*.png and the bundled model card's line.

    nice -n 10 python scripts/hardware_study.py            # the committed docs/hardware.md (one thread)
    python scripts/hardware_study.py --quick --output /tmp/hw.md --figure-dir /tmp --json /tmp/hw.json --no-card
"""
from __future__ import annotations

import argparse
import sys

import torch

from qiren_gen.experiments.hardware import StudyConfig, run_study


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny settings (a smoke test, not the study)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--output", default="docs/hardware.md")
    p.add_argument("--figure-dir", default="docs/figures")
    p.add_argument("--json", default="docs/hardware.json")
    p.add_argument("--no-card", action="store_true", help="do not update the bundled pipeline's model card")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = StudyConfig(seeds=args.seeds, output=args.output, figure_dir=args.figure_dir, json_path=args.json,
                      model_card=None if args.no_card else StudyConfig.model_card)
    if args.quick:
        cfg.seeds, cfg.camera_size, cfg.camera_steps, cfg.camera_noise_pixels = 1, 8, 3, 4
        cfg.shots, cfg.depolarizing = (100, 1000, 10_000), (1e-3, 1e-2)
    run_study(cfg, "nice -n 10 python " + " ".join(["scripts/hardware_study.py", *(argv or sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
