"""``qiren-gen superres``'s steps: check the flags, load the image, fit or encode it, render it larger, compare with
interpolation, write and report.

Imported by ``superres.run`` only when the command runs, so ``qiren-gen --help`` stays free of torch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..data.grids import MAX_GRID_POINTS
from ..data.signals import open_image, resize_image
from ..figures import plot_superres
from ..io import quoted
from ..io.atomic import save_image, save_pipeline_atomically
from ..metrics import psnr
from ..metrics.signals import mse
from ..pipelines import QirenGenerationPipeline, QirenSuperResolutionPipeline, interpolate_image
from ._fitting_args import check_common, check_output_folder, qiren_options, set_threads
from ._fitting_outputs import print_report, publish_with_metrics


def run_superres(args: argparse.Namespace) -> int:
    """Fit (or encode, in prior mode) the low-resolution image, render it larger, compare with interpolation."""
    options = check_superres_args(args)
    set_threads(args.threads)
    low, truth = load_low_and_truth(args)
    pipe = build_superres_pipeline(args, options)
    out = Path(args.output)  # checked after the inputs and the pipeline loaded, before any fitting
    check_output_folder(out)
    pipe.set_progress_bar_config(disable=args.json)
    result = pipe(low, scale=args.scale, num_steps=args.steps, learning_rate=args.lr, align_corners=args.paper_grid,
                  schedule=args.schedule)
    outputs = upscaled_outputs(args, low, result)
    metrics = publish_with_metrics(
        out, lambda staging: write_superres_outputs(pipe, args, staging, low, truth, outputs),
        lambda files: superres_metrics(pipe, args, result, truth, outputs, files),
        f"the super-resolution to {quoted(out)}")
    print_report(args.json, metrics, superres_report(args, out, result, metrics, truth is not None))
    return 0


def check_superres_args(args: argparse.Namespace) -> dict:
    """The QIREN constructor options, every flag checked before anything is read or written."""
    check_common(args)
    if args.scale < 1:
        raise ValueError(f"--scale must be >= 1, got {args.scale}")
    options = qiren_options(args)
    if args.prior_pipeline and args.paper_grid:
        raise ValueError("--prior-pipeline renders on pixel centres; drop --paper-grid")
    return options


def high_size(args: argparse.Namespace) -> int:
    """Side of the rendered (high-resolution) image."""
    return args.size * args.scale


def load_low_and_truth(args: argparse.Namespace):
    """``(low, truth)``: the image at ``--size``, and at the output size when the source really has that resolution
    (no upsampled "truth"; ``None`` otherwise). The output size is checked before any fitting."""
    gray = open_image(args.image)
    side = high_size(args)
    if side * side > MAX_GRID_POINTS:  # before the output folder is made or any fitting is done
        raise ValueError(f"a {side}x{side} output is over the limit of {MAX_GRID_POINTS} pixels")
    truth = resize_image(gray, side) if gray.shape[0] >= side else None
    return resize_image(gray, args.size), truth


def build_superres_pipeline(args: argparse.Namespace, options: dict):
    """A ``QirenSuperResolutionPipeline`` of ``--model``, or, in prior mode, around ``--prior-pipeline``'s decoder
    (then ``args.model`` becomes ``"prior"``)."""

    if not args.prior_pipeline:
        return QirenSuperResolutionPipeline.from_model_name(args.model, seed=args.seed, **options)
    torch.manual_seed(args.seed)
    generator = QirenGenerationPipeline.from_pretrained(args.prior_pipeline)
    args.model = "prior"
    return QirenSuperResolutionPipeline.from_generation_pipeline(generator)


def upscaled_outputs(args: argparse.Namespace, low, result) -> dict:
    """The model's image and the bilinear and nearest interpolations of ``low``, by name."""

    outputs = {args.model: np.asarray(result.images)}
    for mode in ("bilinear", "nearest"):
        outputs[mode] = interpolate_image(low, args.scale, mode, align_corners=args.paper_grid)
    return outputs


def save_png(img, path: Path) -> str:
    """Save an image in [-1, 1] as an 8-bit PNG; returns the path."""
    save_image(path, ((np.clip(img, -1, 1) + 1) * 127.5).round().astype(np.uint8))
    return str(path)


def write_superres_outputs(pipe, args: argparse.Namespace, out: Path, low, truth, outputs: dict) -> dict:
    """Write the upscaled, low-resolution and (when known) true images, the figure and the pipeline."""
    files = {"superres": save_png(outputs[args.model], out / "superres.png"),
             "low_res": save_png(low, out / "low_res.png")}
    if truth is not None:
        files["ground_truth"] = save_png(truth, out / "ground_truth.png")
    files["figure"] = str(out / "figure.png")
    side = high_size(args)
    plot_superres(low, outputs, files["figure"], truth, f"{args.size}x{args.size} -> {side}x{side}")
    files["pipeline"] = str(out / "pipeline")
    save_pipeline_atomically(pipe, files["pipeline"])
    return files


def superres_metrics(pipe, args: argparse.Namespace, result, truth, outputs: dict, files: dict) -> dict:
    """The ``metrics.json`` record: sizes, parameters, time, and each output's MSE / PSNR when the truth is known."""
    metrics = {
        "model": args.model,
        "image": str(args.image),
        "low_res": args.size,
        "high_res": high_size(args),
        "low_res_mse": result.low_res_mse,
        "params": int(sum(p.numel() for c in pipe.components.values() if c is not None for p in c.parameters())),
        "seconds": round(result.seconds, 3),
        "steps": args.steps,
        "seed": args.seed,
        "ground_truth": truth is not None,
    }
    if truth is not None:
        for name, img in outputs.items():
            prefix = "" if name == args.model else f"{name}_"
            metrics[f"{prefix}mse"] = mse(img, truth)
            metrics[f"{prefix}psnr"] = float(psnr(img, truth, data_range=2.0))
    metrics["files"] = files
    return metrics


def comparison_line(model: str) -> str:
    """What the interpolation baselines mean for this output (the research pages have the full studies)."""
    if model == "prior":
        return ("compare: bilinear and nearest see the same low-resolution pixels; the prior adds what faces look like "
                "from its training faces, so it can beat them on faces like those, and not on other images "
                "(docs/research/prior_superres.md)")
    return ("compare: a model fitted to this one low-resolution image knows nothing beyond its pixels, so bilinear "
            "interpolation is the bar it is measured against, not a weak baseline; QIREN beats the ReLU, Tanh and "
            "ReLU+RFF fits of the paper and not interpolation (docs/research/paper_reproduction.md); the generative "
            "prior (--prior-pipeline) adds knowledge of faces (docs/research/prior_superres.md)")


def superres_report(args: argparse.Namespace, out: Path, result, metrics: dict, has_truth: bool) -> list[str]:
    """A line with the errors against the interpolations, and what they compare with when the truth is known."""
    line = f"{args.model}: {args.size} -> {metrics['high_res']}, {metrics['params']} params, {result.seconds:.1f} s"
    if not has_truth:
        return [line + f" -> {out}/"]
    line += (f"; high-res MSE {metrics['mse']:.3e} (bilinear {metrics['bilinear_mse']:.3e}, "
             f"nearest {metrics['nearest_mse']:.3e})")
    return [line + f" -> {out}/", comparison_line(args.model)]
