#!/usr/bin/env python
"""Examples and bytes each of 2 ranks reads of a streamed parquet set (8 files, 3 files) and an image folder,
read-and-skip against sharded reading, side by side.

    nice -n 10 python scripts/benchmarks/benchmark_stream_reading.py --work_dir /tmp/stream-reading

Thin wrapper: the benchmark lives in ``benchmarks.stream_reading``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.stream_reading import benchmark_stream_reading

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work_dir", default="/tmp/qiren-stream-reading")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    benchmark_stream_reading(a.work_dir, a.images, a.repeats)
