"""Time the demo: start-up of `qiren-gen demo` and the Sample tab (16 faces at 128x128) over HTTP, side by side
with the same sampling called directly on the pipeline.

    python scripts/benchmarks/benchmark_demo.py [--runs 3] [--pipeline DIR_OR_HUB_ID]

Targets: start-up <= 15 s, first Sample answer <= 10 s on a 2-core CPU. On a shared machine read the
ratio (the page's overhead) more than the absolute times; the load average is printed beside them.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.demo import benchmark_demo
from qiren_gen.runtime.errors import one_line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--pipeline", default=None)
    args = p.parse_args(argv)
    try:
        result = benchmark_demo(args.runs, args.pipeline)
    except (OSError, ValueError) as exc:
        print(f"benchmark_demo: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
