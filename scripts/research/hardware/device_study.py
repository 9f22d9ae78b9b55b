"""Bundled faces rendered from circuit features measured on Qiskit Aer under fake IBM backends' calibrated noise.

The bundled decoder's 32 heads are measured once each at their 25 sample angles (800 executions) through
PennyLane-Qiskit's ``qiskit.aer`` device with a fake IBM backend's noise (transpiled to its native gates and coupling
map), at each shot count, without and with readout-error mitigation and zero-noise extrapolation; the same prior
samples are rendered from each measured series and compared with their exact render. Writes
docs/research/hardware_device.json, docs/research/figures/hardware_device_faces.png and the device sections of
docs/research/hardware.md:

    python scripts/research/hardware/device_study.py
    python scripts/research/hardware/device_study.py --quick --json /tmp/d.json --figure /tmp/d.png --page /tmp/hw.md
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # scripts/: the research and benchmark packages

from qiren_gen.metrics import psnr as batch_psnr
from qiren_gen.models.device_features import feature_executions, measure_decoder_features
from qiren_gen.pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.quantum.device_coefficients import (
    DeviceRun,
    head_tapes,
    measure_raw,
    series_from_values,
    series_sample_angles,
)
from qiren_gen.quantum.pennylane_devices import open_device, price_run
from qiren_gen.runtime import run_reporting_errors
from research.commands import portable_command
from research.hardware.device_report import (
    MITIGATION_VARIANTS,
    device_section_text,
    replace_sections,
    write_device_sections,
)


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean PSNR (dB) over the batch of images in [0, 1]."""
    return float(batch_psnr(image, reference, data_range=1.0, dim=(1, 2, 3)))


def render(pipe, latents: torch.Tensor, size: int, series=None) -> torch.Tensor:
    """The latents rendered at ``size`` from ``series`` (``None``: the exact one), in [0, 1]."""
    pipe.decoder.set_measured_series(series)
    with torch.inference_mode():
        images = pipe.render(latents, size, size)
    pipe.decoder.set_measured_series(None)
    return ((images.float() + 1) / 2).clamp(0, 1)


def measure_backend(pipe, latents, exact, backend: str | None, shots: int, size: int, seed: int) -> dict:
    """One backend at one shot count: a single batch with the folded copies and the calibration circuits, then each
    mitigation variant's series, render and PSNR; the plain run's price (depth, gates, device time)."""
    heads = pipe.decoder.circuits
    name = "qiskit.aer" if backend is not None else "default.qubit"
    device, calibrated = open_device(name, heads.n_qubits, backend, seed)
    _, _, grid = series_sample_angles(heads)
    variants = MITIGATION_VARIANTS if backend is not None else ((),)
    start = time.perf_counter()
    raw = measure_raw(heads, grid, device, shots, variants[-1])
    seconds = time.perf_counter() - start
    plain = heads.n_heads * len(grid)
    row = {"backend": backend, "device": name, "shots": shots, "batch_executions": int(raw.totals["executions"]),
           "batch_jobs": int(raw.totals["batches"]), "batch_seconds": seconds, "variants": {}}
    for variant in variants:
        series = series_from_values(heads, raw.mitigated(variant))
        images = render(pipe, latents, size, series)
        executions = plain * (2 if "zne" in variant else 1) + (2 if "readout" in variant else 0)
        row["variants"][",".join(variant) or "none"] = {"psnr": psnr(images, exact), "executions": executions,
                                                         "images": images}
    if calibrated is not None:
        run = DeviceRun(device=name, executions=plain, jobs=1, shots=shots, wall_seconds=0.0)
        price_run(run, head_tapes(heads, grid[-1:], shots), device, calibrated, seed)
        row.update(physical_qubits=run.physical_qubits, depth=run.depth, two_qubit_gates=run.two_qubit_gates,
                   circuit_seconds=run.circuit_seconds, device_seconds=run.device_seconds)
    return row


def timed_plain_run(pipe, backend: str, shots: int, seed: int) -> dict:
    """The target's configuration, timed alone: every head's 25 executions, no mitigation, one batch."""
    cpu = time.process_time()
    run = measure_decoder_features(pipe.decoder, "qiskit.aer", backend, shots, seed=seed)
    cpu = time.process_time() - cpu  # one thread: the CPU seconds are the one-core cost on a busy machine
    pipe.decoder.set_measured_series(None)
    return {"backend": backend, "shots": shots, "executions": run.executions, "jobs": run.jobs,
            "seconds": run.wall_seconds, "cpu_seconds": cpu}


def run_study(args, command: str) -> dict:
    torch.set_num_threads(1)
    start = time.perf_counter()
    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(args.seed)
    latents = pipe(batch_size=args.faces, num_inference_steps=args.steps, generator=generator,
                   output_type="latent").images
    exact = render(pipe, latents, args.size)
    results = {"faces": args.faces, "size": args.size, "seed": args.seed, "steps": args.steps, "rows": [],
               "budget": [{"size": s, "points": s * s,
                           **dict(zip(("per_model", "per_point"), feature_executions(pipe.decoder, s * s),
                                      strict=True))}
                          for s in (25, 128, 1024)]}
    results["timing"] = timed_plain_run(pipe, args.backends[0], args.shots[0], args.seed)
    print(f"timing: {results['timing']}", flush=True)
    for backend in [None, *args.backends]:
        for shots in args.shots:
            row = measure_backend(pipe, latents, exact, backend, shots, args.size, args.seed)
            print(f"{backend or 'default.qubit'} {shots} shots: " + ", ".join(
                f"{k} {v['psnr']:.2f} dB" for k, v in row["variants"].items()) + f" ({row['batch_seconds']:.0f} s)",
                flush=True)
            results["rows"].append(row)
    results["seconds"] = time.perf_counter() - start
    write_device_sections(results, exact, args, command)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["FakeBrisbane", "FakeTorino"])
    p.add_argument("--shots", nargs="+", type=int, default=[1000, 10000])
    p.add_argument("--faces", type=int, default=6)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings (a smoke test, not the study)")
    p.add_argument("--page", default="docs/research/hardware.md")
    p.add_argument("--json", default="docs/research/hardware_device.json")
    p.add_argument("--figure", default="docs/research/figures/hardware_device_faces.png")
    p.add_argument("--report_only", action="store_true",
                   help="rewrite the page's device sections from --json alone (the figure stays as it is)")
    args = p.parse_args(argv)
    if args.report_only:
        def report():
            if not Path(args.json).exists():
                raise ValueError(f"--report_only needs the study's results: '{args.json}' does not exist")
            replace_sections(args.page, device_section_text(args.json, args.figure, args.page))
        return run_reporting_errors("device_study", report)[0]
    if args.quick:
        args.backends, args.shots, args.faces, args.size, args.steps = ["FakeManilaV2"], [100], 2, 16, 2
    command = portable_command("scripts/research/hardware/device_study.py", sys.argv[1:] if argv is None else argv)
    return run_reporting_errors("device_study", lambda: run_study(args, command))[0]


if __name__ == "__main__":
    raise SystemExit(main())
