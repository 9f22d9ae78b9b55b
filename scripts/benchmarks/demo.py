"""Timing of the demo as a visitor meets it: start-up of ``qiren-gen demo`` and the Sample tab's answers over HTTP,
side by side with the same sampling called directly on the pipeline (the page's overhead is their ratio). Wall time
and CPU time both: on a shared machine the CPU seconds say what an idle one-thread CPU would need."""
from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import torch
from diffusers import DDIMScheduler
from diffusers.utils import make_image_grid

from qiren_gen.demo.actions import grid_shape
from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``): what a request cost, whatever the load."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def benchmark_demo(runs: int = 3, pipeline: str | None = None, faces: int = 16, resolution: int = 128,
                   steps: int = 50) -> dict:
    """Start the demo in a subprocess (time to 'serving'), then alternate ``runs`` Sample requests over HTTP with
    ``runs`` direct pipeline calls in this process (one thread each); medians, ratio, load average."""
    from gradio_client import Client

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "qiren_gen.cli", "demo", "--port", str(port)]
    cmd += ["--pipeline", pipeline] if pipeline else []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    try:
        while not any("serving http" in line for line in lines):
            if proc.poll() is not None:
                raise OSError("the demo did not start: " + "".join(lines[-3:]).strip())
            time.sleep(0.05)
        startup_s, startup_cpu = time.perf_counter() - start, _cpu_seconds(proc.pid)
        torch.set_num_threads(1)
        pipe = QirenGenerationPipeline.from_pretrained(pipeline or bundled_pipeline_dir())
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        with tempfile.TemporaryDirectory() as tmp:
            client = Client(f"http://127.0.0.1:{port}/", download_files=tmp, verbose=False)
            http, direct, http_cpu, direct_cpu = [], [], [], []
            for run in range(runs):
                t, c = time.perf_counter(), _cpu_seconds(proc.pid)
                client.predict("", run, faces, resolution, steps, api_name="/sample")
                http.append(time.perf_counter() - t)
                http_cpu.append(_cpu_seconds(proc.pid) - c)
                t, c = time.perf_counter(), time.process_time()
                images = pipe(batch_size=faces, height=resolution, width=resolution, num_inference_steps=steps,
                              generator=torch.Generator().manual_seed(run)).images
                make_image_grid(images, *grid_shape(faces)).save(os.path.join(tmp, "direct.png"))
                direct.append(time.perf_counter() - t)
                direct_cpu.append(time.process_time() - c)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)

    def r(xs):
        return [round(x, 2) for x in xs]

    return {"request": f"{faces} faces at {resolution}x{resolution}, {steps} DDIM steps",
            "startup_s": round(startup_s, 2), "startup_cpu_s": round(startup_cpu, 2),
            "first_answer_s": round(http[0], 2), "first_answer_cpu_s": round(http_cpu[0], 2),
            "http_cpu_s": r(http_cpu), "direct_cpu_s": r(direct_cpu),
            "http_over_direct_cpu": round(statistics.median(http_cpu) / statistics.median(direct_cpu), 3),
            "http_s": [round(x, 2) for x in http], "direct_s": [round(x, 2) for x in direct],
            "median_http_s": round(statistics.median(http), 2), "median_direct_s": round(statistics.median(direct), 2),
            "http_over_direct": round(statistics.median(http) / statistics.median(direct), 3),
            "load_average_1_5_15": os.getloadavg(), "cpus": os.cpu_count()}


__all__ = ["benchmark_demo"]
