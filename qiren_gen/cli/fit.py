"""``qiren-gen fit``: fit QIREN or a baseline to a WAV clip or an image; write the fit, a figure and metrics."""
from __future__ import annotations

import argparse
import json

from ._fitting_args import CIRCUIT_MODELS, add_model_args, check_common, qiren_options, set_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit an INR to an audio clip or an image (the paper's signal representation task)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", metavar="WAV", help="mono WAV file")
    src.add_argument("--image", metavar="PATH_OR_NAME", help="image file, or a scikit-image name (astronaut, camera, coffee, ...)")
    p.add_argument("--size", type=int, default=32, help="images: centre-crop and resize to SIZE x SIZE (default 32)")
    p.add_argument("--audio-slice", metavar="START:STOP[:STEP]", default=None,
                   help="audio: samples to keep, e.g. 20000:25000:5 (the paper's Bach clip)")
    p.add_argument("--pixel-centres", action="store_true",
                   help="sample pixel centres instead of the paper's linspace(-1, 1) grid")
    add_model_args(p)
    p.add_argument("--shots", type=int, default=None,
                   help="also evaluate the fitted model with every circuit expectation from N shots (circuit models)")
    p.add_argument("--noise", default=None, metavar="P_OR_CHANNELS",
                   help="also evaluate with noisy gates: a depolarizing probability or e.g. depolarizing=1e-3,readout=0.01")
    p.add_argument("--train-shots", type=int, default=None,
                   help="fit with every circuit expectation from N shots (straight-through gradients; noise-aware)")
    p.add_argument("--train-noise", default=None, metavar="P_OR_CHANNELS",
                   help="fit with noisy gates (exact density matrices; same syntax as --noise)")
    p.add_argument("--output", default="fit-output", metavar="DIR", help="output folder (default: fit-output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_common(args)
    from pathlib import Path

    import numpy as np
    import torch

    from ..data.signals import load_image, load_wav, parse_slice, write_wav
    from ..figures import plot_fit
    from ..pipelines import QirenSignalFittingPipeline

    if args.image is not None and args.audio_slice is not None:
        raise ValueError("--audio-slice only applies to --audio")
    options = qiren_options(args)
    from ..quantum.noise import parse_noise
    from ..quantum.shots import check_shots

    shots, noise = check_shots(args.shots), parse_noise(args.noise)
    train_shots, train_noise = check_shots(args.train_shots), parse_noise(args.train_noise)
    if any(v is not None for v in (shots, noise, train_shots, train_noise)) and args.model not in CIRCUIT_MODELS:
        raise ValueError(f"--shots / --noise / --train-shots / --train-noise: only for --model "
                         f"{', '.join(CIRCUIT_MODELS)} (circuits), not {args.model}")
    if args.model == "qvf" and any(n is not None and n.gate_noise for n in (noise, train_noise)):
        raise ValueError("--noise / --train-noise for --model qvf: readout error only (e.g. readout=0.01); its "
                         "amplitude-encoding state preparation is not simulated gate by gate")
    set_threads(args.threads)
    if args.audio is not None:
        audio = load_wav(args.audio, parse_slice(args.audio_slice))
        signal, rate, in_features = audio.samples, audio.rate, 1
    else:
        signal, rate, in_features = load_image(args.image, args.size), None, 2
    # The model first: a bad option combination must fail before the output folder exists.
    pipe = QirenSignalFittingPipeline.from_model_name(args.model, in_features, 1, seed=args.seed, **options)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    pipe.set_progress_bar_config(disable=args.json)
    from ..quantum.shots import measurement

    with measurement(pipe.model, train_shots, train_noise, torch.Generator().manual_seed(args.seed),
                     train_shots=train_shots is not None):  # noise-aware training (exact when both are None)
        result = pipe(signal, num_steps=args.steps, learning_rate=args.lr, align_corners=not args.pixel_centres,
                      schedule=args.schedule)
    fitted = np.asarray(result.signal)
    if train_shots is not None or train_noise is not None:  # report the fit itself exactly, as for every model
        from ..metrics import psnr as psnr_of
        from ..metrics.signals import mse as mse_of

        fitted = np.asarray(pipe.render(fitted.shape, align_corners=not args.pixel_centres))
        result.mse, result.psnr = float(mse_of(fitted, signal)), float(psnr_of(fitted, signal, data_range=2.0))
    measured = None
    if shots is not None or noise is not None:  # the fitted model as a device would run it (quantum.shots)
        from ..metrics import psnr as psnr_of
        with measurement(pipe.model, shots, noise, torch.Generator().manual_seed(args.seed)):
            on_device = np.asarray(pipe.render(fitted.shape, align_corners=not args.pixel_centres))
        measured = {"shots": shots, "noise": None if noise is None else noise.to_dict(),
                    "psnr": float(psnr_of(on_device, np.asarray(signal), data_range=2.0))}

    files = {"figure": str(out / "figure.png"), "metrics": str(out / "metrics.json"), "pipeline": str(out / "pipeline")}
    if in_features == 1:
        files.update(fit=str(out / "fit.wav"), target=str(out / "target.wav"))
        write_wav(files["fit"], fitted, rate)
        write_wav(files["target"], signal, rate)
    else:
        from PIL import Image

        files.update(fit=str(out / "fit.png"), target=str(out / "target.png"))
        for key, img in (("fit", fitted), ("target", signal)):
            Image.fromarray(((np.clip(img, -1, 1) + 1) * 127.5).round().astype(np.uint8)).save(files[key])
    source = args.audio if args.audio is not None else args.image
    plot_fit(signal, fitted, files["figure"], f"{args.model} fit of {Path(str(source)).name}: "
             f"MSE {result.mse:.2e}, PSNR {result.psnr:.1f} dB", rate=rate)
    pipe.save_pretrained(files["pipeline"])
    metrics = {
        "model": args.model,
        "signal": str(source),
        "shape": list(fitted.shape),
        "mse": result.mse,
        "psnr": result.psnr,
        "params": int(sum(p.numel() for p in pipe.model.parameters() if p.requires_grad)),
        "seconds": round(result.seconds, 3),
        "steps": args.steps,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "files": files,
    }
    if measured is not None:
        metrics["measured"] = measured
    if train_shots is not None or train_noise is not None:
        metrics["trained_under"] = {"shots": train_shots, "noise": None if train_noise is None else train_noise.to_dict()}
    Path(files["metrics"]).write_text(json.dumps(metrics, indent=2) + "\n")
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.model}: MSE {result.mse:.3e}  PSNR {result.psnr:.2f} dB  {metrics['params']} params  "
              f"{result.seconds:.1f} s  -> {out}/")
        if measured is not None:
            setting = ", ".join(x for x in (f"{shots} shots" if shots else "",
                                            noise.describe() if noise else "") if x)
            print(f"on a simulated device ({setting}): PSNR {measured['psnr']:.2f} dB")
    return 0
