#!/usr/bin/env python
"""Training-step cost of the circuit-feature decoder vs its classical controls, side by side (1 thread).

    python scripts/benchmarks/benchmark_decoder_step.py [--width 128] [--steps 21]
    python scripts/benchmarks/benchmark_decoder_step.py --decoders circuit_features circuit_features_ternary
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.decoders import DECODERS, DEFAULT_DECODERS, benchmark_decoder, decoder_step_times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--steps", type=int, default=21)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--decoders", nargs="+", type=benchmark_decoder, choices=DECODERS, default=list(DEFAULT_DECODERS),
                   help="decoders timed side by side (interleaved steps)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(decoder_step_times(args.width, args.steps, decoders=tuple(args.decoders)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
