"""How fast, and in how much memory, ``qiren-gen fit --audio`` refuses a WAV over the frame cap.

Writes a 1-hour 44.1 kHz mono WAV header over a sparse file of the size it claims (no disk blocks are written), then
runs ``qiren-gen fit --audio`` on it in a fresh process, several times, and prints the median wall time of the whole
command (interpreter start and imports included), its exit code, its one line, and its peak memory, beside the time
of importing the command alone (the refusal itself reads only the 44-byte header).

    python scripts/benchmarks/benchmark_audio_cap.py --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def hour_wav(path: Path, rate: int = 44100) -> Path:
    frames = 3600 * rate
    data_size = frames * 2
    header = (b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVE" + b"fmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data_size))
    path.write_bytes(header)
    with open(path, "r+b") as handle:
        handle.truncate(len(header) + data_size)  # sparse
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = hour_wav(Path(tmp) / "hour.wav")
        code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                "print(r.returncode); print(r.stderr.strip()); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        command = [sys.executable, "-m", "qiren_gen.cli", "fit", "--audio", str(wav), "--steps", "1",
                   "--output", str(Path(tmp) / "out")]
        baseline = [sys.executable, "-c", "import qiren_gen.cli.fit, qiren_gen.pipelines"]  # the imports alone
        times, base_times, last = [], [], None
        for _ in range(args.repeats):  # interleaved, so machine load hits both alike
            start = time.perf_counter()
            last = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run(baseline, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            base_times.append(time.perf_counter() - start)
        code_line, message, peak = last.stdout.strip().splitlines()
        print(f"exit code {code_line}; {message}")
        print(f"median wall time {statistics.median(times):.2f} s over {args.repeats} runs "
              f"(min {min(times):.2f} s); peak memory {int(peak) / 1024:.0f} MiB")
        print(f"importing the fit command and the pipelines alone: median {statistics.median(base_times):.2f} s; "
              f"ratio {statistics.median(times) / statistics.median(base_times):.2f}")


if __name__ == "__main__":
    main()
