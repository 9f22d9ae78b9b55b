#!/usr/bin/env python
"""Training and rendering as multiples of this CPU's floor, side by side with the previous implementation.

    python scripts/benchmarks/benchmark_floor.py                 # step + rendering at 128 / 512 / 1024, medians
    python scripts/benchmarks/benchmark_floor.py --tasks step render128 --repeats 9
    python scripts/benchmarks/benchmark_floor.py --quick         # tiny sizes: checks that the script runs

The floor of a piece of work is its synthesis-layer FLOPs divided by this machine's rate for a 2048^3 fp32
``torch.mm``, measured right before every repeat in the same process (so a change of load moves both). Work:

* ``step``: one stage-1 training step of the README's FFHQ recipe (64x64 RGB, batch 16, 32 two-qubit circuit
  features, three weight-modulated layers of width 128, auto-decoded latents, Adam, gradient clipping), forward and
  backward: 3 x 2 x FLOPs of every linear layer;
* ``render128`` / ``render512`` / ``render1024``: the bundled pipeline's decoder rendering 16 / 4 / 2 faces at that
  size from fixed latents, forward only, its coordinate features computed anew at every repeat (the feature cache is
  emptied: a repeat times a first render at that size; the Fourier series is built once, at the warm-up);
* ``features``: the circuit-feature part of the ``step``: the recipe decoder's reference statistics and features of
  the 64x64 grid with gradients into the feature parameters, forward and backward (no synthesis: no floor, seconds).

Implementations, each in its own process (the allocator is a per-process setting), run alternately:

* ``previous``: glibc's own allocator (``QIREN_GEN_MALLOC=default``), the unfused weight-modulated layer (einsum, then
  times sqrt(2), plus bias, ReLU; written out below) and face-by-face rendering in chunks of 16384 points, with
  simulated circuit features;
* ``simulated``: ``current`` with the circuit features simulated point by point (``set_feature_evaluation
  ("simulate")``: training and rendering before the Fourier series);
* ``batched``: the package with its training layers batched (one ``baddbmm`` per layer over the whole batch, the
  CUDA path), as before training ran in cache-sized blocks; rendering as ``current``;
* ``two-pass``: ``current`` with the training loss computed from the decoder's output (the cache-blocked layers'
  forward, then their backward: every layer's output written to memory and read back), as before the one-pass loss;
* ``current``: the package as it is (allocator set by the entry points, fused layers; training forward and backward
  in cache-sized blocks of points, the loss's gradient in the same pass as the renders, fused Adam; chunk-major
  rendering with cache-blocked layers; circuit features from the circuits' exact Fourier series, one GEMM per head
  on the grid, differentiable in training);
* ``input-mod``: the current allocator and chunk-major rendering with input modulation instead of weight modulation
  (StyleGAN2's ``fused_modconv=False``: scale the inputs, one shared GEMM, scale the outputs; written out below),
  batched layers for rendering too.

Times are CPU seconds of the one torch thread (``--clock wall`` for wall time); with one thread they exclude time
spent waiting for a core on a shared machine, not the memory bandwidth other processes take. The load average is
printed with the figures.

What each ratio is made of (``--no_breakdown`` skips it): up to 3 more repeats of every task run under a per-op CPU
clock (``op_profile.py``; each op's median over them), and a second table splits the median time into the floor, the
GEMMs' time above it (every GEMM-kind op: the synthesis and the few small feature GEMMs), the largest non-GEMM ops
and the time outside any op (Python, autograd bookkeeping: the median minus every op's time; on a busy machine it
takes the noise of both and can come out negative).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the research and benchmark packages

from qiren_gen.runtime import configure_allocator  # loads no torch

# torch (and the package's modules and benchmarks that load it) is imported inside functions: each worker process sets
# its allocator (``configure_allocator``, which the ``previous`` worker runs with glibc's own) before torch loads.

IMPLEMENTATIONS = ("previous", "simulated", "batched", "two-pass", "current", "input-mod")
BREAKDOWN_TOP = 6  # non-GEMM ops named in the breakdown
TASKS = {  # name: (kind, size, faces or batch, default repeats)
    "step": ("step", 64, 16, 7),
    "features": ("features", 64, 16, 15),
    "render128": ("render", 128, 16, 5),
    "render512": ("render", 512, 4, 3),
    "render1024": ("render", 1024, 2, 2),
}
QUICK = {"step": ("step", 16, 4, 2), "features": ("features", 16, 4, 2), "render128": ("render", 24, 3, 2),
         "render512": ("render", 40, 2, 1), "render1024": ("render", 48, 1, 1)}
FLOOR_SIZE = 2048
PREVIOUS_CHUNK_POINTS = 16384  # the previous renderer: one face at a time, this many points per chunk


# ------------------------------------------------------------------------------------------- previous / variants
def unfused_layer(self, linear, h, m):
    """The previous weight-modulated layer: per-sample weights, einsum, then sqrt(2) and the bias as full tensors."""
    import torch  # noqa: PLC0415 - a torch-free top (see there)

    if self.config.modulation != "weight":
        return _current_layer(self, linear, h, m)
    weight = linear.weight[None] * (1 + m)[:, None, :]
    weight = weight * torch.rsqrt(weight.square().sum(-1, keepdim=True) + 1e-8)
    eq = "pi,boi->bpo" if h.ndim == 2 else "bpi,boi->bpo"
    return torch.relu(torch.einsum(eq, h, weight) * math.sqrt(2) + linear.bias)


def input_modulated_layer(self, linear, h, m):
    """Input modulation: ``relu(d_b * ((h * s_b) @ W^T) + bias)`` with ``d_b`` the demodulation (times sqrt(2))."""
    import torch  # noqa: PLC0415 - a torch-free top (see there)

    if self.config.modulation != "weight":
        return _current_layer(self, linear, h, m)
    s = 1 + m
    d = torch.rsqrt((linear.weight[None] * s[:, None, :]).square().sum(-1) + 1e-8) * math.sqrt(2)
    x = h * s[:, None, :] if h.ndim == 3 else h[None] * s[:, None, :]
    y = (x.reshape(-1, x.shape[-1]) @ linear.weight.t()).view(x.shape[0], x.shape[1], -1)
    return torch.addcmul(linear.bias, y, d[:, None, :]).relu_()


def two_pass_mse(self, coords, modulations, targets, stats=None, once_differentiable=True):
    """The per-image loss from the decoder's output, as before the one-pass loss (its gradient: a second pass)."""
    return (self(coords, modulations, stats=stats) - targets).square().mean(dim=(1, 2))


_current_layer = None


def previous_render(decoder, modulator, latents, height: int, width: int):
    """The previous renderer: each face alone, its grid in chunks of 16384 points."""
    import torch  # noqa: PLC0415 - a torch-free top (see there)

    from qiren_gen.data import image_grid  # noqa: PLC0415 - a torch-free top (see there)

    coords = image_grid(height, width)
    stats = decoder.reference_statistics()
    faces = []
    for z in latents:
        mods = modulator(z[None])
        chunks = [decoder(coords[i : i + PREVIOUS_CHUNK_POINTS], mods, stats=stats)
                  for i in range(0, coords.shape[0], PREVIOUS_CHUNK_POINTS)]
        faces.append(torch.cat(chunks, dim=1))
    return torch.cat(faces).reshape(len(faces), height, width, -1).permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------------------- worker
def linear_flops(decoder, rows: int) -> float:
    """Forward FLOPs of every linear layer of the synthesis (features excluded) for ``rows`` points."""
    sizes = [(lin.in_features, lin.out_features) for lin in [*decoder.linears, decoder.output]]
    return 2.0 * rows * sum(i * o for i, o in sizes)


def worker(impl: str, tasks: dict, clock_name: str, threads: int, out_dir: Path, profile: bool) -> list[dict]:
    """Time every task in this process for one implementation; one record per task."""
    allocator = configure_allocator()  # honours QIREN_GEN_MALLOC, which the parent set for ``previous``
    import torch  # noqa: PLC0415 - a torch-free top (see there)

    from benchmarks.op_profile import profile_ops  # noqa: PLC0415 - a torch-free top (see there)
    from benchmarks.recipe_step import recipe_step  # noqa: PLC0415 - a torch-free top (see there)
    from qiren_gen.data import image_grid  # noqa: PLC0415 - a torch-free top (see there)
    from qiren_gen.models import FeatureSynthesisDecoder  # noqa: PLC0415 - a torch-free top (see there)
    from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir  # noqa: PLC0415 - a torch-free top (see there)

    # The implementations before this one are the decoder's own private layer methods, replaced on the class in this
    # worker process only: the decoder has no public switch for them because nothing but this comparison needs one.
    global _current_layer
    _current_layer = FeatureSynthesisDecoder._synthesis_layer
    if impl not in ("current", "simulated", "two-pass"):  # training: the batched layers (the CUDA path), not blocked
        FeatureSynthesisDecoder._trains_in_blocks = lambda self, h, dtype: False
    if impl in ("previous", "input-mod"):  # the batched layers, replaced, for rendering too (no cache-blocked shortcut)
        FeatureSynthesisDecoder._synthesis_layer = unfused_layer if impl == "previous" else input_modulated_layer
        FeatureSynthesisDecoder._renders_in_blocks = lambda self, h, dtype: False
    if impl == "two-pass":  # the loss from the decoder's output: the blocked layers' two passes, not the one-pass loss
        FeatureSynthesisDecoder.per_image_mse = two_pass_mse
    simulate = impl in ("previous", "simulated")  # every point through the circuit simulator
    torch.set_num_threads(threads)
    clock = time.thread_time if clock_name == "cpu" else time.perf_counter
    a, b = torch.randn(FLOOR_SIZE, FLOOR_SIZE), torch.randn(FLOOR_SIZE, FLOOR_SIZE)

    def mm_rate() -> float:
        start = clock()
        torch.mm(a, b)
        return 2.0 * FLOOR_SIZE**3 / (clock() - start)

    records = []
    for name, (kind, size, count, repeats) in tasks.items():
        torch.manual_seed(0)
        if kind in ("step", "features"):
            step, decoder = recipe_step(size, count)
            if simulate:
                decoder.set_feature_evaluation("simulate")
            flops = 3 * linear_flops(decoder, count * size * size) if kind == "step" else None
            work = step if kind == "step" else feature_pass(decoder, image_grid(size, size))
        else:
            pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
            decoder, modulator = pipe.decoder, pipe.modulator
            if simulate:
                decoder.set_feature_evaluation("simulate")
            latents = torch.randn(count, modulator.config.latent_dim, generator=torch.Generator().manual_seed(0))
            flops = linear_flops(decoder, count * size * size)
            work, result = render_pass(impl, decoder, modulator, latents, size)
        work()  # warm-up: first-touch of the heap, kernels, the circuits' Fourier series
        seconds, ratios, rates = [], [], []
        for _ in range(repeats):
            rate = mm_rate()
            start = clock()
            last = work()
            elapsed = clock() - start
            seconds.append(elapsed)
            rates.append(rate)
            ratios.append(elapsed / (flops / rate) if flops else None)
        # rendered images, or the step's per-image losses after the same seeded steps: compared with previous's
        if kind != "features":
            torch.save(result["images"] if kind == "render" else last, out_dir / f"{impl}-{name}.pt")
        records.append({"implementation": impl, "task": name, "size": size, "count": count,
                        "gflop": flops / 1e9 if flops else None, "seconds": seconds,
                        "mm_gflops": [r / 1e9 for r in rates], "floor_multiples": ratios,
                        "median_seconds": statistics.median(seconds),
                        "median_floor_multiple": statistics.median(ratios) if flops else None, "allocator": allocator,
                        "profile": profile_ops(work, min(3, repeats)) if profile else None})
    return records


def render_pass(impl: str, decoder, modulator, latents, size: int) -> tuple:
    """``(work, result)``: ``work()`` renders ``latents`` at ``size`` (the previous renderer for ``previous``) into
    ``result["images"]``, its coordinate features computed anew each time, as a first render does."""
    import torch  # noqa: PLC0415 - a torch-free top (see there)

    from qiren_gen.functa import decode_latents  # noqa: PLC0415 - a torch-free top (see there)

    result = {}

    def work():
        decoder.clear_feature_cache()
        with torch.inference_mode():
            if impl == "previous":
                result["images"] = previous_render(decoder, modulator, latents, size, size)
            else:
                result["images"] = decode_latents(decoder, modulator, latents, size, size)

    return work, result


def feature_pass(decoder, coords):
    """The circuit-feature part of a training step: reference statistics and features with their graph, and the
    backward of a fixed linear probe into the feature parameters."""
    import torch  # noqa: PLC0415 - a torch-free top (see there)

    probe = torch.randn(coords.shape[0], decoder.feature_dim, generator=torch.Generator().manual_seed(0))

    def work():
        features = decoder.coordinate_features(coords, decoder.reference_statistics())
        (features * probe).sum().backward()
        decoder.zero_grad(set_to_none=True)

    return work


# ------------------------------------------------------------------------------------------------- parent
def run_worker(impl: str, args, out_dir: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    env["QIREN_GEN_MALLOC"] = "default" if impl == "previous" else env.get("QIREN_GEN_MALLOC", "tuned")
    cmd = [sys.executable, __file__, "--worker", impl, "--out_dir", str(out_dir), "--clock", args.clock,
           "--threads", str(args.threads), "--tasks", *args.tasks, *(["--quick"] if args.quick else []),
           *(["--repeats", str(args.repeats)] if args.repeats else []), *([] if args.breakdown else ["--no_breakdown"])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{impl} worker failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def describe(kind: str, size: int, count: int) -> str:
    if kind == "step":
        return f"stage-1 step {size}x{size}, batch {count}"
    if kind == "features":
        return f"circuit features of a step, {size}x{size} grid"
    return f"{count} face(s) at {size}x{size}"


def print_breakdown(args, records: dict, median_of) -> None:
    """What each median time is made of: the floor (synthesis FLOPs at the median mm rate of that implementation's
    repeats), the GEMMs' time above it, the largest non-GEMM ops and the time outside any op (CPU clock per op)."""
    from benchmarks.op_profile import breakdown  # noqa: PLC0415 - a torch-free top (see there)

    print("\n| work | implementation | median (s) | floor (s) | outside the floor (ms) | GEMMs (GFLOP/s) | "
          "outside the floor, by item (ms) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.tasks:
        kind, size, count, _ = task_table(args)[name]
        for impl in args.implementations:
            recs = records.get((impl, name))
            if not recs or recs[-1]["profile"] is None:
                continue
            profile, gflop = recs[-1]["profile"], recs[-1]["gflop"]
            secs = median_of(impl, name, "seconds")
            floor = gflop / median_of(impl, name, "mm_gflops") if gflop else None
            items = breakdown(secs, floor, profile, BREAKDOWN_TOP)
            rate = profile["gemm_gflop"] / profile["gemm_seconds"] if profile["gemm_seconds"] else 0.0
            split = ", ".join(f"{item} {s * 1e3:.1f}" for item, s in items if item != "floor")
            outside = f"{(secs - floor) * 1e3:.1f}" if floor else "-"
            print(f"| {describe(kind, size, count)} | {impl} | {secs:.3f} | {f'{floor:.3f}' if floor else '-'} | "
                  f"{outside} | {profile['gemm_gflop']:.1f} GFLOP in {profile['gemm_seconds']:.3f} s ({rate:.0f}) | "
                  f"{split} |")
    print("\nitems: CPU time per aten op, medians over up to 3 more repeats (scripts/benchmarks/op_profile.py); "
          "GEMMs: every mm / addmm / bmm / baddbmm / matmul; outside any op: the median minus every op's time "
          "(Python, autograd)")


def task_table(args) -> dict:
    table = QUICK if args.quick else TASKS
    chosen = {name: table[name] for name in args.tasks}
    if args.repeats:
        chosen = {name: (*spec[:3], args.repeats) for name, spec in chosen.items()}
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    p.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds of the implementations (default 1)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per task (default: per task, 2-7)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    p.add_argument("--json", default=None, help="also write every record to this JSON file")
    p.add_argument("--no_breakdown", dest="breakdown", action="store_false",
                   help="skip the per-op profile and the table of what each time is made of")
    p.add_argument("--worker", choices=IMPLEMENTATIONS, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out_dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or (args.repeats is not None and args.repeats < 1):
        p.error("--rounds, --threads and --repeats must be >= 1")
    if args.worker:
        print(json.dumps(worker(args.worker, task_table(args), args.clock, args.threads, Path(args.out_dir),
                                args.breakdown)))
        return 0

    import torch  # noqa: PLC0415 - a torch-free top (see there)

    load_before = os.getloadavg()
    records: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for impl in args.implementations:
                for rec in run_worker(impl, args, Path(tmp)):
                    records.setdefault((impl, rec["task"]), []).append(rec)
        diffs = {}
        for name in args.tasks:
            ref = Path(tmp, f"previous-{name}.pt")
            for impl in args.implementations:
                path = Path(tmp, f"{impl}-{name}.pt")
                if impl != "previous" and ref.is_file() and path.is_file():
                    diffs[(impl, name)] = float((torch.load(path) - torch.load(ref)).abs().max())
            simulated, current = Path(tmp, f"simulated-{name}.pt"), Path(tmp, f"current-{name}.pt")
            if simulated.is_file() and current.is_file():  # the series against the simulator, same synthesis
                diffs[("current vs simulated", name)] = float((torch.load(current) - torch.load(simulated)).abs().max())
    load_after = os.getloadavg()

    def median_of(impl: str, task: str, key: str) -> float | None:
        values = [v for rec in records.get((impl, task), []) for v in rec[key] if v is not None]
        return statistics.median(values) if values else None

    head = "| work | GFLOP | " + " | ".join(f"{impl}: x floor (s)" for impl in args.implementations)
    head += " | each / current (x floor) | max abs diff (vs previous) |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in args.tasks:
        kind, size, count, _ = task_table(args)[name]
        what = describe(kind, size, count)
        gflop = next(rec["gflop"] for recs in records.values() for rec in recs if rec["task"] == name)
        # no floor (features): seconds, and their ratios
        key = "floor_multiples" if gflop else "seconds"
        cells = []
        for impl in args.implementations:
            mult, secs = median_of(impl, name, key), median_of(impl, name, "seconds")
            cells.append("-" if secs is None else (f"{mult:.2f} ({secs:.3f} s)" if gflop else f"- ({secs:.4f} s)"))
        # ratios of floor multiples: a change of load between the implementations' processes cancels
        cur = median_of("current", name, key)
        others = [(impl, median_of(impl, name, key)) for impl in args.implementations if impl != "current"]
        speedup = ", ".join(f"{impl} {mult / cur:.2f}x" for impl, mult in others if mult and cur) or "-"
        diff = ", ".join(f"{impl} {d:.1e}" for (impl, task), d in diffs.items() if task == name) or "-"
        print(f"| {what} | {gflop or 0:.1f} | " + " | ".join(cells) + f" | {speedup} | {diff} |")
    rates = [r for recs in records.values() for rec in recs for r in rec["mm_gflops"]]
    print(f"\nfloor: {FLOOR_SIZE}^3 fp32 torch.mm, median {statistics.median(rates):.1f} GFLOP/s "
          f"(range {min(rates):.1f}-{max(rates):.1f}) on {args.threads} thread(s); {args.clock} clock; medians of "
          f"repeats; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, {os.cpu_count()} CPUs")
    if args.breakdown:
        print_breakdown(args, records, median_of)
    if args.json:
        Path(args.json).write_text(json.dumps([rec for recs in records.values() for rec in recs], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
