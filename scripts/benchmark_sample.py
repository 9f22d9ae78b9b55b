"""Time the README's first command, ``qiren-gen sample --output faces.png`` (16 faces at 128x128, the defaults, bundled
pipeline), as a user runs it, N times (target: <= 15 s wall on the 2-core CPU, start-up included).

    python scripts/benchmark_sample.py [--runs 3] [-- extra qiren-gen sample arguments]

Prints the wall time of every run (process start to exit, imports included), the median, the peak resident memory
of the sampling process, and the machine's load average (a shared machine makes single timings noisy).
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("extra", nargs="*", help="more qiren-gen sample arguments (after --)")
    args = p.parse_args(argv)
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "qiren_gen.cli", "sample", "--output", os.path.join(tmp, "faces.png"), *args.extra]
        for _ in range(args.runs):
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


if __name__ == "__main__":
    sys.exit(main())
