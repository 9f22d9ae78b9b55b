"""Time ``qiren-gen sample`` as a user runs it, and compare samplers side by side.

    python scripts/benchmarks/benchmark_sample.py [--runs 3] [-- extra qiren-gen sample arguments]
    python scripts/benchmarks/benchmark_sample.py --schedulers [--runs 5] [--num_images 16] [--resolution 128]

Default mode: the README's first command, ``qiren-gen sample --output faces.png`` (16 faces at 128x128, bundled
pipeline), N times as subprocesses (process start to exit, imports included): wall time of every run, the median,
peak resident memory and the load average (a shared machine makes single timings noisy).

``--schedulers``: DDIM 50 steps against DPM-Solver++ 20 steps (``--compare NAME:STEPS`` adds more) in one process,
runs alternating: median time of the whole call and of the denoising alone, and the mean abs difference of the
images from DDIM's (logic: ``benchmarks.sampling``).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.sampling import compare_samplers
from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.pipelines.schedulers import canonical_sampler_name


def time_cli(runs: int, extra: list[str]) -> int:
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "qiren_gen.cli", "sample", "--output", os.path.join(tmp, "faces.png"), *extra]
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            if proc.returncode:
                print(proc.stderr.strip().splitlines()[-1], file=sys.stderr)
                return proc.returncode
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"command": " ".join(cmd[1:]), "wall_s": [round(w, 1) for w in walls],
                      "median_wall_s": round(statistics.median(walls), 1), "peak_rss_mib": round(peak_mib),
                      "load_average_1_5_15": os.getloadavg(), "cpus": os.cpu_count()}, indent=2))
    return 0


def compare(args) -> int:
    torch.set_num_threads(args.threads)
    samplers = [("ddim", 50), ("dpm++", 20)]
    for spec in args.compare:
        name, _, steps = spec.partition(":")
        samplers.append((canonical_sampler_name(name), int(steps or 20)))
    pipe = QirenGenerationPipeline.from_pretrained(args.pipeline or bundled_pipeline_dir())
    result = compare_samplers(pipe, samplers, runs=args.runs, num_images=args.num_images,
                              resolution=args.resolution)
    print(json.dumps(result, indent=2))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--schedulers", action="store_true", help="compare DDIM 50 steps with DPM-Solver++ 20 steps")
    p.add_argument("--compare", action="append", default=[], metavar="NAME:STEPS",
                   help="with --schedulers: one more sampler, e.g. unipc:20 (repeatable)")
    p.add_argument("--num_images", "--num-images", type=int, default=16)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pipeline", default=None, help="pipeline folder or Hub id (default: the bundled one)")
    p.add_argument("extra", nargs="*", help="more qiren-gen sample arguments (after --)")
    args = p.parse_args(argv)
    return compare(args) if args.schedulers else time_cli(args.runs, args.extra)


if __name__ == "__main__":
    sys.exit(main())
