"""``qiren-gen fit``'s steps: check the flags, load the signal, fit, measure on a simulated device, write and report.

Imported by ``fit.run`` only when the command runs, so ``qiren-gen --help`` stays free of torch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..data.signals import load_image, load_wav, parse_slice, write_wav
from ..figures import plot_fit
from ..io import quoted
from ..io.atomic import save_image, save_pipeline_atomically
from ..metrics import psnr
from ..metrics.signals import mse
from ..pipelines import QirenSignalFittingPipeline
from ..quantum.noise import parse_noise
from ..quantum.shots import check_shots, measurement
from ._fitting_args import CIRCUIT_MODELS, check_common, check_output_folder, qiren_options, set_threads
from ._fitting_outputs import print_report, publish_with_metrics


def run_fit(args: argparse.Namespace) -> int:
    """Fit the model to the signal, write the fit, a figure, metrics and the pipeline, and print the result."""
    options, measuring = check_fit_args(args)
    set_threads(args.threads)
    signal, rate = load_signal(args)
    # The model first: a bad option combination must fail before the output folder exists.
    pipe = build_fitting_pipeline(args, signal, options)
    out = Path(args.output)
    check_output_folder(out)
    pipe.set_progress_bar_config(disable=args.json)
    result, fitted = fit_signal(pipe, args, signal, measuring)
    measured = measure_on_device(pipe, args, signal, fitted, measuring)
    metrics = publish_with_metrics(
        out, lambda staging: write_fit_outputs(pipe, args, staging, signal, fitted, rate, result),
        lambda files: fit_metrics(pipe, args, fitted, result, files, measured, measuring), f"the fit to {quoted(out)}")
    print_report(args.json, metrics, fit_report(args, out, result, metrics, measuring))
    return 0


def check_fit_args(args: argparse.Namespace) -> tuple[dict, dict]:
    """The QIREN constructor options and the measurement settings (``shots``, ``noise``, ``train_shots``,
    ``train_noise``), every flag checked before anything is read or written."""
    check_common(args)
    if args.image is not None and args.audio_slice is not None:
        raise ValueError("--audio-slice only applies to --audio")
    options = qiren_options(args)
    measuring = {"shots": check_shots(args.shots), "noise": parse_noise(args.noise),
                 "train_shots": check_shots(args.train_shots), "train_noise": parse_noise(args.train_noise)}
    if any(v is not None for v in measuring.values()) and args.model not in CIRCUIT_MODELS:
        raise ValueError(f"--shots / --noise / --train-shots / --train-noise: only for --model "
                         f"{', '.join(CIRCUIT_MODELS)} (circuits), not {args.model}")
    noises = (measuring["noise"], measuring["train_noise"])
    if args.model == "qvf" and any(n is not None and n.gate_noise for n in noises):
        raise ValueError("--noise / --train-noise for --model qvf: readout error only (e.g. readout=0.01); its "
                         "amplitude-encoding state preparation is not simulated gate by gate")
    return options, measuring


def load_signal(args: argparse.Namespace):
    """``(signal, rate)``: the WAV clip's samples and rate, or the image and ``None``."""
    if args.audio is not None:
        audio = load_wav(args.audio, parse_slice(args.audio_slice))
        return audio.samples, audio.rate
    return load_image(args.image, args.size), None


def build_fitting_pipeline(args: argparse.Namespace, signal, options: dict):
    """A ``QirenSignalFittingPipeline`` of ``--model`` for a 1-D (audio) or 2-D (image) signal."""
    in_features = 1 if args.audio is not None else 2
    return QirenSignalFittingPipeline.from_model_name(args.model, in_features, 1, seed=args.seed, **options)


def fit_signal(pipe, args: argparse.Namespace, signal, measuring: dict):
    """``(result, fitted)``: fit ``signal``, under the training shots / noise when given (noise-aware training),
    and the fit rendered exactly, as for every model."""

    train_shots, train_noise = measuring["train_shots"], measuring["train_noise"]
    with measurement(pipe.model, train_shots, train_noise, torch.Generator().manual_seed(args.seed),
                     train_shots=train_shots is not None):  # exact when both are None
        result = pipe(signal, num_steps=args.steps, learning_rate=args.lr, align_corners=not args.pixel_centres,
                      schedule=args.schedule)
    fitted = np.asarray(result.signal)
    if train_shots is not None or train_noise is not None:
        fitted = np.asarray(pipe.render(fitted.shape, align_corners=not args.pixel_centres))
        result.mse, result.psnr = float(mse(fitted, signal)), float(psnr(fitted, signal, data_range=2.0))
    return result, fitted


def measure_on_device(pipe, args: argparse.Namespace, signal, fitted, measuring: dict) -> dict | None:
    """The fitted model's PSNR as a device would run it (``--shots`` / ``--noise``); ``None`` without them."""

    shots, noise = measuring["shots"], measuring["noise"]
    if shots is None and noise is None:
        return None
    with measurement(pipe.model, shots, noise, torch.Generator().manual_seed(args.seed)):
        on_device = np.asarray(pipe.render(fitted.shape, align_corners=not args.pixel_centres))
    return {"shots": shots, "noise": None if noise is None else noise.to_dict(),
            "psnr": float(psnr(on_device, np.asarray(signal), data_range=2.0))}


def write_fit_outputs(pipe, args: argparse.Namespace, out: Path, signal, fitted, rate, result) -> dict:
    """Write the fit and the target (WAV or PNG), the figure and the pipeline; returns the files by role."""

    files = {"figure": str(out / "figure.png"), "metrics": str(out / "metrics.json"), "pipeline": str(out / "pipeline")}
    if rate is not None:
        files.update(fit=str(out / "fit.wav"), target=str(out / "target.wav"))
        write_wav(files["fit"], fitted, rate)
        write_wav(files["target"], signal, rate)
    else:
        files.update(fit=str(out / "fit.png"), target=str(out / "target.png"))
        for key, img in (("fit", fitted), ("target", signal)):
            save_image(files[key], ((np.clip(img, -1, 1) + 1) * 127.5).round().astype(np.uint8))
    source = args.audio if args.audio is not None else args.image
    plot_fit(signal, fitted, files["figure"], f"{args.model} fit of {Path(str(source)).name}: "
             f"MSE {result.mse:.2e}, PSNR {result.psnr:.1f} dB", rate=rate)
    save_pipeline_atomically(pipe, files["pipeline"])
    return files


def fit_metrics(pipe, args: argparse.Namespace, fitted, result, files: dict, measured: dict | None,
                measuring: dict) -> dict:
    """The ``metrics.json`` record of one fit."""
    metrics = {
        "model": args.model,
        "signal": str(args.audio if args.audio is not None else args.image),
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
    train_shots, train_noise = measuring["train_shots"], measuring["train_noise"]
    if train_shots is not None or train_noise is not None:
        metrics["trained_under"] = {"shots": train_shots,
                                    "noise": None if train_noise is None else train_noise.to_dict()}
    return metrics


BASELINES = ("relu", "tanh", "relu_rff", "siren")
"""The paper's classical networks, each of about QIREN's parameter count."""


def comparison_line(model: str) -> str:
    """What this fit compares with and what the comparison means (the research page has the full study)."""
    others = ", ".join(f"--model {m}" for m in ("qiren", *BASELINES) if m != model)
    return (f"compare: the same command with {others} fits the paper's baselines of about as many parameters; on the "
            "paper's images QIREN fits better than ReLU, Tanh and ReLU+RFF, and a standard SIREN better than QIREN "
            "(docs/research/paper_reproduction.md)")


def fit_report(args: argparse.Namespace, out: Path, result, metrics: dict, measuring: dict) -> list[str]:
    """A line of figures, what they compare with, and a line for the simulated device when measured."""
    lines = [f"{args.model}: MSE {result.mse:.3e}  PSNR {result.psnr:.2f} dB  {metrics['params']} params  "
             f"{result.seconds:.1f} s  -> {out}/", comparison_line(args.model)]
    if "measured" in metrics:
        shots, noise = measuring["shots"], measuring["noise"]
        setting = ", ".join(x for x in (f"{shots} shots" if shots else "", noise.describe() if noise else "") if x)
        lines.append(f"on a simulated device ({setting}): PSNR {metrics['measured']['psnr']:.2f} dB")
    return lines
