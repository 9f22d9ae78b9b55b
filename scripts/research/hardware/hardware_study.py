"""The decoders on a simulated quantum device: PSNR and sample sharpness vs shots and vs depolarizing noise,
noise-aware fine-tuning of the bundled pipeline, and the device budget per image; writes docs/research/hardware.md,
docs/research/hardware.json, docs/research/figures/hardware_*.png and the bundled model card's line.

    # the committed docs/research/hardware.md
    nice -n 10 python scripts/research/hardware/hardware_study.py --bach PATH/gt_bach.wav
    python scripts/research/hardware/hardware_study.py --quick --output /tmp/hw.md --figure_dir /tmp \
        --json /tmp/hw.json --no_card --finetune_workdir /tmp/hw-finetune
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from qiren_gen.runtime import run_reporting_errors
from research.commands import portable_command
from research.hardware.study import StudyConfig, run_study


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny settings (a smoke test, not the study)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--bach", default=None, metavar="WAV", help="the paper's gt_bach.wav (left out when not given)")
    p.add_argument("--no_finetune", "--no-finetune", action="store_true",
                   help="skip the noise-aware fine-tuning of the bundled pipeline")
    p.add_argument("--finetune_workdir", "--finetune-workdir", default=StudyConfig.finetune_workdir,
                   help="where the fine-tuned pipelines go (finished ones are reused)")
    p.add_argument("--output", default="docs/research/hardware.md")
    p.add_argument("--figure_dir", "--figure-dir", default="docs/research/figures")
    p.add_argument("--json", default="docs/research/hardware.json")
    p.add_argument("--no_card", "--no-card", action="store_true",
                   help="do not update the bundled pipeline's model card")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = StudyConfig(seeds=args.seeds, bach_path=args.bach, finetune=not args.no_finetune,
                      finetune_workdir=args.finetune_workdir, output=args.output, figure_dir=args.figure_dir,
                      json_path=args.json, model_card=None if args.no_card else StudyConfig.model_card)
    if args.quick:
        cfg.seeds, cfg.camera_size, cfg.signal_steps, cfg.signal_noise_points, cfg.sample_count = 1, 8, 3, 4, 2
        cfg.shots, cfg.depolarizing = (100, 1000, 10_000), (1e-3, 1e-2)
        cfg.finetune_steps, cfg.finetune_prior_steps = 2, 2
    argv = sys.argv[1:] if argv is None else argv
    command = "nice -n 10 " + portable_command("scripts/research/hardware/hardware_study.py", argv)
    return run_reporting_errors("hardware_study", lambda: run_study(cfg, command))[0]


if __name__ == "__main__":
    raise SystemExit(main())
