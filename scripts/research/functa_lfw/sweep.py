"""The LFW functa experiment: meta-learn on faces 0-89 of ``lfw_subset()``, reconstruct held-out faces 90-99.

Trains one functa model per (decoder, modulation, latent size) through the real pipeline (``export_lfw_faces`` ->
``load_dataset("imagefolder")`` -> ``train_functa``), encodes the held-out faces with the meta-learned inner loop,
and writes a Markdown report with PSNR / timing tables and PNG figures (faces beside their 25x25 and 100x100
reconstructions).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.state import AcceleratorState

from qiren_gen.data.datasets import ImageCollator, load_image_dataset
from qiren_gen.data.lfw import export_lfw_faces
from qiren_gen.functa import decode_latents, encode_images
from qiren_gen.metrics import psnr
from qiren_gen.models import DECODER_CLASSES, LatentModulator
from qiren_gen.runtime import run_reporting_errors
from qiren_gen.training.functa_trainer import FunctaTrainingConfig, train_functa


@dataclass(frozen=True)
class Run:
    decoder: str
    modulation: str
    latent_dim: int
    first_order: bool = True
    steps: int | None = None  # None: the sweep's --steps

    @property
    def name(self) -> str:
        order = "fo" if self.first_order else "so"
        steps = f"-s{self.steps}" if self.steps else ""
        return f"{self.decoder}-{self.modulation}-z{self.latent_dim}-{order}{steps}"


def parse_run(spec: str) -> Run:
    """``decoder:modulation:latent_dim[:fo|so[:steps]]`` (``so`` = second-order) -> `Run`."""
    parts = spec.split(":")
    if len(parts) not in (3, 4, 5) or (len(parts) >= 4 and parts[3] not in ("fo", "so")):
        raise ValueError(f"run spec must be decoder:modulation:latent_dim[:fo|so[:steps]], got {spec!r}")
    steps = int(parts[4]) if len(parts) == 5 else None
    return Run(parts[0], parts[1], int(parts[2]), len(parts) == 3 or parts[3] == "fo", steps)


def _reset_accelerate() -> None:
    AcceleratorState._reset_state(True)


def _load_models(folder: Path):
    name = json.loads((folder / "decoder" / "config.json").read_text())["_class_name"]
    cls = next(c for c in DECODER_CLASSES if c.__name__ == name)
    return cls.from_pretrained(folder / "decoder"), LatentModulator.from_pretrained(folder / "modulator")


def evaluate_heldout(folder: Path, data_dir: Path, resolution: int) -> dict:
    """Held-out PSNR (train resolution and native 25x25), renders at 25 and 100, resolution consistency."""
    decoder, modulator = _load_models(folder)
    test = load_image_dataset(data_dir=data_dir, split="test")
    examples = [test[i] for i in range(len(test))]
    native = ImageCollator("image", 25)(examples)
    at_res = ImageCollator("image", resolution)(examples)
    out = {}
    t0 = time.perf_counter()
    z_res = encode_images(decoder, modulator, at_res)
    out["encode_seconds_per_image"] = (time.perf_counter() - t0) / len(examples)
    z_native = encode_images(decoder, modulator, native)
    with torch.no_grad():
        rec_res = decode_latents(decoder, modulator, z_res, resolution, resolution)
        rec25 = decode_latents(decoder, modulator, z_native, 25, 25)
        rec100 = decode_latents(decoder, modulator, z_native, 100, 100)
        zero = decode_latents(decoder, modulator, torch.zeros_like(z_native), 25, 25)

    def per_image(a, b):
        return psnr(a, b, data_range=2.0, dim=(1, 2, 3), reduction="none")

    out["psnr_train_res"] = per_image(rec_res, at_res).mean().item()
    out["psnr_25"] = per_image(rec25, native).mean().item()
    out["psnr_zero_latent_25"] = per_image(zero, native).mean().item()
    out["psnr_100_down_vs_25"] = psnr(F.avg_pool2d(rec100, 4), rec25, data_range=2.0).item()
    out["images"] = {"truth": native, "rec25": rec25, "rec100": rec100}
    return out


def faces_figure(path: Path, truth: torch.Tensor, rows: dict[str, torch.Tensor]) -> None:
    """A grid: held-out faces on top, then one row per labelled reconstruction (each image shown at its own size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_rows = {"held-out face (25x25)": truth, **rows}
    n = truth.shape[0]
    fig, axes = plt.subplots(len(all_rows), n, figsize=(n * 0.9 / 0.79, len(all_rows) * 0.95))
    for r, (label, imgs) in enumerate(all_rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(((imgs[c, 0] + 1) / 2).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(left=0.2, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_lfw_sweep(
    work_dir: Path,
    docs_dir: Path,
    runs: list[Run],
    steps: int = 150,
    resolution: int = 16,
    batch_size: int = 8,
    learning_rate: float = 1e-2,
    siren_learning_rate: float = 3e-3,
    inner_steps: int = 3,
    seed: int = 0,
    command: str = "",
) -> list[dict]:
    """Train and evaluate every run; write ``docs_dir/functa_lfw.md``, figures and ``functa_lfw_results.json``."""
    work_dir, docs_dir = Path(work_dir), Path(docs_dir)
    (docs_dir / "figures").mkdir(parents=True, exist_ok=True)
    data_dir = export_lfw_faces(work_dir / "lfw")
    results, renders = [], {}
    for run in runs:
        run_steps = run.steps or steps
        _reset_accelerate()
        cfg = FunctaTrainingConfig(
            output_dir=str(work_dir / run.name), train_data_dir=str(data_dir), resolution=resolution,
            decoder=run.decoder, modulation=run.modulation, latent_dim=run.latent_dim, first_order=run.first_order,
            inner_steps=inner_steps, train_batch_size=batch_size, max_train_steps=run_steps,
            learning_rate=siren_learning_rate if run.decoder == "siren" else learning_rate,
            checkpointing_steps=run_steps, checkpoints_total_limit=1, seed=seed, logging_steps=10,
        )
        done = Path(cfg.output_dir) / "train_summary.json"
        summary = json.loads(done.read_text()) if done.is_file() else None
        if summary is None or summary["steps"] != run_steps:  # reuse a finished run (e.g. trained in a parallel sweep)
            summary = train_functa(cfg)
        ev = evaluate_heldout(Path(cfg.output_dir), data_dir, resolution)
        renders[run.name] = ev.pop("images")
        row = {"run": run.name, "decoder": run.decoder, "modulation": run.modulation, "latent_dim": run.latent_dim,
               "first_order": run.first_order, "decoder_parameters": summary["decoder_parameters"],
               "modulator_parameters": summary["modulator_parameters"], "steps": summary["steps"],
               "median_step_seconds": summary["median_step_seconds"], "train_psnr_last": summary["last_psnr"],
               **ev}
        results.append(row)
        print(json.dumps(row), flush=True)
        (docs_dir / "functa_lfw_results.json").write_text(json.dumps(results, indent=2))
    _write_report(docs_dir, results, renders, steps, resolution, batch_size, (learning_rate, siren_learning_rate),
                  inner_steps, command)
    return results


def _summary_lines(results: list[dict], steps: int) -> list[str]:
    """Who wins, computed from the table (so the text cannot drift from the numbers)."""
    def best(rows):
        return max(rows, key=lambda r: r["psnr_25"]) if rows else None

    lines = ["## Summary (computed from the table)", ""]
    for first_order in (True, False):
        same = [r for r in results if r["steps"] == steps and r["first_order"] == first_order]
        q, s = best([r for r in same if r["decoder"] == "qiren"]), best([r for r in same if r["decoder"] == "siren"])
        if q and s:
            winner = "QIREN" if q["psnr_25"] > s["psnr_25"] else "SIREN"
            lines.append(
                f"- Same recipe and step count ({steps} steps, {'first' if first_order else 'second'}-order): best "
                f"QIREN {q['run']} {q['psnr_25']:.2f} dB vs best SIREN {s['run']} {s['psnr_25']:.2f} dB held-out PSNR "
                f"at 25x25: **{winner} wins** by {abs(q['psnr_25'] - s['psnr_25']):.2f} dB; a QIREN step costs "
                f"{q['median_step_seconds'] / s['median_step_seconds']:.0f}x a SIREN step (simulated circuits)."
            )
    same = [r for r in results if r["steps"] == steps and r["first_order"]]
    q = best([r for r in same if r["decoder"] == "qiren"])
    longer = best([r for r in results if r["decoder"] == "siren" and r["steps"] > steps])
    if q and longer:
        winner = "QIREN" if q["psnr_25"] > longer["psnr_25"] else "SIREN"
        lines.append(
            f"- SIREN given more steps ({longer['run']}, {longer['steps']} steps, "
            f"{longer['steps'] * longer['median_step_seconds']:.0f} s of steps"
            f" vs {q['steps'] * q['median_step_seconds']:.0f} s"
            f" for {q['run']}): {longer['psnr_25']:.2f} dB: **{winner} wins** at this budget."
        )
    for mode in ("shift", "film", "angles"):
        rows = [r for r in same if r["decoder"] == "qiren" and r["modulation"] == mode]
        if rows:
            by_size = sorted(rows, key=lambda r: r["latent_dim"])
            cells = ", ".join(f"z{r['latent_dim']} {r['psnr_25']:.2f} dB" for r in by_size)
            lines.append(f"- QIREN `{mode}`: {cells} ({rows[0]['median_step_seconds']:.2f} s/step)")
    pairs = [(f, o) for f in results for o in results if f["first_order"] and not o["first_order"]
             and (f["decoder"], f["modulation"], f["latent_dim"], f["steps"]) ==
             (o["decoder"], o["modulation"], o["latent_dim"], o["steps"])]
    for f, o in pairs:
        lines.append(
            f"- Second- vs first-order meta-gradients ({o['run']} vs {f['run']}): {o['psnr_25']:.2f} vs "
            f"{f['psnr_25']:.2f} dB, {o['median_step_seconds'] / f['median_step_seconds']:.1f}x the time per step."
        )
    worst = min(results, key=lambda r: r["psnr_100_down_vs_25"])
    lines.append(f"- Resolution consistency: a 100x100 render area-downsampled to 25x25 matches the 25x25 render to "
                 f">= {worst['psnr_100_down_vs_25']:.1f} dB in every run (worst: {worst['run']}).")
    return lines


def _write_report(docs_dir, results, renders, steps, resolution, batch_size, learning_rate,
                  inner_steps, command):
    best = {}
    for row in results:
        if row["decoder"] not in best or row["psnr_25"] > best[row["decoder"]]["psnr_25"]:
            best[row["decoder"]] = row
    figures = []
    for decoder, row in best.items():
        name = f"functa_lfw_{decoder}.png"
        figures.append((row["run"], name))
        if renders is None:  # text-only rewrite (see rewrite_report): keep the figures already on disk
            continue
        imgs = renders[row["run"]]
        faces_figure(docs_dir / "figures" / name, imgs["truth"],
                     {f"{row['run']} 25x25": imgs["rec25"], f"{row['run']} 100x100": imgs["rec100"]})
    lines = [
        "# Functa on LFW faces: held-out reconstruction",
        "",
        "Meta-learned functa (zero latent, meta-SGD inner loop with learned per-dimension step sizes) on the 100",
        "faces of scikit-image's `lfw_subset()`: faces 0-89 train, 90-99 held out, written as an `imagefolder`",
        "dataset and read through `datasets.load_dataset`. Produced by:",
        "",
        f"    {command}" if command else "",
        "",
        f"Setup: {steps} outer steps (unless the run name ends in -s<steps>), batch {batch_size}, "
        f"Adam lr {learning_rate[0]} (QIREN) / {learning_rate[1]} (SIREN),",
        f"{inner_steps} inner steps, first-order meta-gradients unless marked 'so', training",
        f"at {resolution}x{resolution} (faces resized from 25x25); held-out faces encoded with the same inner loop",
        "(from a zero latent, no test-time optimisation beyond it). PSNR is for images in [-1, 1] (peak-to-peak 2),",
        "mean over the 10 held-out faces. 'zero-latent' renders the shared base function (latent 0, before the",
        "inner loop): the gap to the next column is what the meta-learned inner loop adds.",
        "Timings are medians over the run on a 2-core CPU shared with other jobs (1 torch thread): ratios are",
        "more trustworthy than absolute values.",
        "",
        "| run | decoder params | modulator params | s/step | held-out PSNR @train res | held-out PSNR @25x25 |"
        " zero-latent PSNR @25 | 100->25 vs 25 render (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['run']} | {r['decoder_parameters']} | {r['modulator_parameters']} | {r['median_step_seconds']:.3f} |"
            f" {r['psnr_train_res']:.2f} | {r['psnr_25']:.2f} | {r['psnr_zero_latent_25']:.2f} |"
            f" {r['psnr_100_down_vs_25']:.1f} |"
        )
    lines += ["", "Run names: decoder-modulation-z<latent size>-<fo = first-order | so = second-order meta-gradient>"
              "[-s<outer steps> where not the default].", "", *_summary_lines(results, steps), ""]
    for run, name in figures:
        lines += [f"![{run}](figures/{name})", "",
                  f"`figures/{name}`: held-out faces (top), {run} reconstructions at 25x25 and rendered at 100x100.",
                  ""]
    (docs_dir / "functa_lfw.md").write_text("\n".join(lines) + "\n")


def rewrite_report(docs_dir: Path, steps: int = 150, resolution: int = 16, batch_size: int = 8,
                   learning_rate: tuple[float, float] = (1e-2, 3e-3), inner_steps: int = 3, command: str = "") -> None:
    """Rewrite ``functa_lfw.md`` from ``functa_lfw_results.json`` without retraining or redrawing figures."""
    results = json.loads((Path(docs_dir) / "functa_lfw_results.json").read_text())
    _write_report(Path(docs_dir), results, None, steps, resolution, batch_size, learning_rate, inner_steps, command)


DEFAULT_RUNS = ["siren:shift:16", "siren:shift:64", "qiren:shift:16", "qiren:film:16", "qiren:angles:16",
                "qiren:shift:64", "qiren:film:64", "qiren:angles:64"]


def main(argv: list[str] | None = None) -> int:
    """Command line of ``scripts/research/functa_lfw/functa_lfw_sweep.py``; a user error is one line and exit code 2."""
    p = argparse.ArgumentParser(
        description="Functa on LFW faces: QIREN vs SIREN sweep, writes docs/research/functa_lfw.md.")
    p.add_argument("--work_dir", default="runs/functa_lfw")
    p.add_argument("--docs_dir", default="docs/research")
    p.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="decoder:modulation:latent_dim[:fo|so]")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--resolution", type=int, default=16)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=1e-2, help="outer Adam lr for QIREN runs")
    p.add_argument("--siren_learning_rate", type=float, default=3e-3, help="outer Adam lr for SIREN runs")
    p.add_argument("--inner_steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = ("python scripts/research/functa_lfw/functa_lfw_sweep.py "
               + shlex.join(argv if argv is not None else sys.argv[1:]))
    return run_reporting_errors("functa_lfw_sweep", lambda: run_lfw_sweep(
        Path(args.work_dir), Path(args.docs_dir), [parse_run(s) for s in args.runs], args.steps, args.resolution,
        args.batch_size, args.learning_rate, args.siren_learning_rate, args.inner_steps, command=command))[0]


__all__ = ["DEFAULT_RUNS", "Run", "evaluate_heldout", "faces_figure", "main", "parse_run", "rewrite_report",
           "run_lfw_sweep"]
