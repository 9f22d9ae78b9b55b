"""``qiren-gen superres``: fit an INR on a low-resolution image, render it larger, compare with interpolation."""
from __future__ import annotations

import argparse
import json

from ._fitting_args import add_model_args, check_common, qiren_options, set_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("superres", help="superresolution by fitting an INR to a low-resolution image")
    p.add_argument("--image", required=True, metavar="PATH_OR_NAME",
                   help="image file, or a scikit-image name (astronaut, camera, coffee, ...)")
    p.add_argument("--size", type=int, default=32, help="low-resolution side: fit on SIZE x SIZE (default 32)")
    p.add_argument("--scale", type=int, default=2, help="upsampling factor (default 2)")
    p.add_argument("--paper-grid", action="store_true",
                   help="use the paper's linspace(-1, 1) grids (align_corners) instead of pixel centres")
    add_model_args(p)
    p.add_argument("--prior-pipeline", metavar="DIR_OR_HUB_ID",
                   help="prior mode: encode with this generation pipeline's functional model instead of fitting "
                        "(e.g. pipelines/qiren-lfw-faces); --model/--steps/--lr are then unused")
    p.add_argument("--output", default="superres-output", metavar="DIR", help="output folder (default: superres-output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_common(args)
    if args.scale < 1:
        raise ValueError(f"--scale must be >= 1, got {args.scale}")
    from pathlib import Path

    import numpy as np
    import torch
    from PIL import Image

    from ..data.signals import open_image, resize_image
    from ..figures import plot_superres
    from ..pipelines import QirenSuperResolutionPipeline, interpolate_image
    from ..metrics import psnr
    from ..metrics.signals import mse

    options = qiren_options(args)
    set_threads(args.threads)
    gray = open_image(args.image)
    high_size = args.size * args.scale
    from ..data.grids import MAX_GRID_POINTS

    if high_size * high_size > MAX_GRID_POINTS:  # before the output folder is made or any fitting is done
        raise ValueError(f"a {high_size}x{high_size} output is over the limit of {MAX_GRID_POINTS} pixels")
    low = resize_image(gray, args.size)
    # A ground truth exists only when the source really has the high resolution (no upsampled "truth").
    truth = resize_image(gray, high_size) if gray.shape[0] >= high_size else None
    if args.prior_pipeline:
        if args.paper_grid:
            raise ValueError("--prior-pipeline renders on pixel centres; drop --paper-grid")
        from ..pipelines import QirenGenerationPipeline

        torch.manual_seed(args.seed)
        generator = QirenGenerationPipeline.from_pretrained(args.prior_pipeline)
        pipe = QirenSuperResolutionPipeline.from_generation_pipeline(generator)
        args.model = "prior"
    else:
        pipe = QirenSuperResolutionPipeline.from_model_name(args.model, seed=args.seed, **options)
    out = Path(args.output)  # made after the inputs and the pipeline loaded, before any fitting
    out.mkdir(parents=True, exist_ok=True)
    pipe.set_progress_bar_config(disable=args.json)
    result = pipe(low, scale=args.scale, num_steps=args.steps, learning_rate=args.lr, align_corners=args.paper_grid,
                  schedule=args.schedule)
    high = np.asarray(result.images)
    outputs = {args.model: high}
    for mode in ("bilinear", "nearest"):
        outputs[mode] = interpolate_image(low, args.scale, mode, align_corners=args.paper_grid)

    def save_png(img: np.ndarray, path: Path) -> str:
        Image.fromarray(((np.clip(img, -1, 1) + 1) * 127.5).round().astype(np.uint8)).save(path)
        return str(path)

    files = {"superres": save_png(high, out / "superres.png"), "low_res": save_png(low, out / "low_res.png")}
    if truth is not None:
        files["ground_truth"] = save_png(truth, out / "ground_truth.png")
    files["figure"] = str(out / "figure.png")
    plot_superres(low, outputs, files["figure"], truth, f"{args.size}x{args.size} -> {high_size}x{high_size}")
    files["pipeline"] = str(out / "pipeline")
    pipe.save_pretrained(files["pipeline"])
    metrics = {
        "model": args.model,
        "image": str(args.image),
        "low_res": args.size,
        "high_res": high_size,
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
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if args.json:
        print(json.dumps(metrics))
    else:
        line = f"{args.model}: {args.size} -> {high_size}, {metrics['params']} params, {result.seconds:.1f} s"
        if truth is not None:
            line += (f"; high-res MSE {metrics['mse']:.3e} (bilinear {metrics['bilinear_mse']:.3e}, "
                     f"nearest {metrics['nearest_mse']:.3e})")
        print(line + f" -> {out}/")
    return 0
