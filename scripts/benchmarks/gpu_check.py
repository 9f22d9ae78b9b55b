#!/usr/bin/env python
"""The GPU check's measurements, written to one JSON file (``scripts/gpu_check.sh`` runs it after the CUDA tests).

    python scripts/benchmarks/gpu_check.py --device cuda --json gpu_check.json
    python scripts/benchmarks/gpu_check.py --device cpu --quick --json /tmp/check.json   # tiny sizes, any machine

Sections, each timed on ``--device`` with the device synchronised around every repeat, each with its peak memory:

* ``simulator``: one 8-qubit QIREN circuit (2 re-uploads, 2 blocks), forward + backward at batches 1024 and 16384,
  qiren-gen's fused engine against PennyLane ``default.qubit`` (backprop, torch interface) on the same device, with
  the largest output and gradient differences;
* ``stage1``: stage-1 training steps of the README's FFHQ recipe decoder (batch 16, RGB) at 64x64 and 256x256, the
  synthesis layers under bf16 autocast where the device supports it (the circuits stay fp32): images/s;
* ``render``: the bundled pipeline sampling 16 faces at 1024x1024 (50 DDIM steps): seconds and peak memory.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from benchmarks.recipe_step import recipe_step
from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.quantum import DataReuploadingCircuit
from qiren_gen.training.launch import synthesis_dtype


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    """Peak device memory allocated since the last reset (CUDA), else the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, device synchronised."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def simulator_section(device: torch.device, batches: list[int], repeats: int) -> list[dict]:
    """Forward + backward of one circuit: qiren-gen (fused engine) against PennyLane default.qubit, same device."""
    rows = []
    torch.manual_seed(0)
    ours = DataReuploadingCircuit(8, 2, 2).to(device)
    theirs = ours.to_pennylane("default.qubit", diff_method="backprop").to(device)
    for batch in batches:
        x = torch.rand(batch, 8, device=device) * 2 - 1
        outputs = {}
        for name, layer in (("qiren-gen-fused", ours), ("pennylane-default.qubit", theirs)):
            params = [p for p in layer.parameters()]

            def step(layer=layer, params=params, name=name, x=x, outputs=outputs):
                xi = x.clone().requires_grad_(True)
                out = layer(xi)
                grads = torch.autograd.grad(out.sum(), [xi, *params])
                outputs[name] = (out.detach().float(), grads[0].detach().float(), grads[1].detach().float())

            reset_peak(device)
            seconds = timed(step, device, repeats)
            rows.append({"batch": batch, "implementation": name, "median_ms": 1e3 * statistics.median(seconds),
                         "points_per_s": batch / statistics.median(seconds), "peak_mib": peak_mib(device)})
        a, b = outputs["qiren-gen-fused"], outputs["pennylane-default.qubit"]
        rows.append({"batch": batch, "parity_max_abs_output": float((a[0] - b[0]).abs().max()),
                     "parity_max_abs_input_grad": float((a[1] - b[1]).abs().max()),
                     "parity_max_abs_weight_grad": float((a[2] - b[2]).abs().max()),
                     "speed_up_over_pennylane": rows[-1]["median_ms"] / rows[-2]["median_ms"]})
    return rows


def stage1_section(device: torch.device, sizes: list[int], batch: int, repeats: int) -> list[dict]:
    """Stage-1 steps of the FFHQ recipe decoder (auto-decoded latents, Adam), bf16 synthesis where supported."""
    rows = []
    for size in sizes:
        recipe, decoder = recipe_step(size, batch, device, synthesis_dtype(device))
        losses = []

        def step(recipe=recipe, losses=losses):
            losses.append(recipe())

        reset_peak(device)
        seconds = timed(step, device, repeats)
        dtype = decoder.synthesis_dtype
        rows.append({"resolution": size, "batch": batch, "synthesis_dtype": str(dtype or torch.float32),
                     "median_step_s": statistics.median(seconds), "images_per_s": batch / statistics.median(seconds),
                     "finite_loss": bool(torch.isfinite(torch.stack(losses)).all()), "peak_mib": peak_mib(device)})
    return rows


def render_section(device: torch.device, faces: int, size: int, steps: int) -> dict:
    """The bundled pipeline: ``faces`` faces at ``size`` x ``size``, DDIM ``steps`` steps, seed 0."""
    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir()).to(device)
    pipe.set_progress_bar_config(disable=True)
    result = {}

    def sample():
        generator = torch.Generator(device=device).manual_seed(0)
        result["images"] = pipe(batch_size=faces, height=size, width=size, num_inference_steps=steps,
                                generator=generator, output_type="pt").images

    reset_peak(device)
    seconds = timed(sample, device, repeats=1)
    images = result["images"]
    return {"faces": faces, "resolution": size, "steps": steps, "seconds": seconds[0],
            "faces_per_s": faces / seconds[0], "finite": bool(torch.isfinite(images).all()),
            "pixel_mean": float(images.mean()), "peak_mib": peak_mib(device)}


def junit_summary(path: Path) -> dict:
    """Counts of a pytest ``--junitxml`` file (tests, failures, errors, skipped)."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", required=True, help="where to write the results")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one repeat: checks that the script runs")
    p.add_argument("--junit", default=None, help="a pytest --junitxml file whose counts go into the JSON")
    p.add_argument("--sections", nargs="+", choices=("simulator", "stage1", "render"),
                   default=["simulator", "stage1", "render"])
    args = p.parse_args(argv)
    try:
        device = torch.device(args.device)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        print(f"gpu_check: cannot use device '{args.device}': {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    if device.type == "cpu":
        torch.set_num_threads(1)
    report: dict = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "quick": args.quick,
    }
    if args.junit and Path(args.junit).is_file():
        report["tests"] = junit_summary(Path(args.junit))
    started = time.perf_counter()
    if "simulator" in args.sections:
        report["simulator"] = simulator_section(device, [64] if args.quick else [1024, 16384], 1 if args.quick else 5)
    if "stage1" in args.sections:
        report["stage1"] = stage1_section(device, [8, 16] if args.quick else [64, 256], 2 if args.quick else 16,
                                          1 if args.quick else 10)
    if "render" in args.sections:
        report["render"] = render_section(device, 2 if args.quick else 16, 24 if args.quick else 1024,
                                          2 if args.quick else 50)
    if device.type == "cuda":
        report["peak_mib_overall"] = torch.cuda.max_memory_reserved(device) / 2**20
    report["seconds"] = time.perf_counter() - started
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
