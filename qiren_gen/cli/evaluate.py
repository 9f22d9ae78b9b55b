"""``qiren-gen evaluate``: sample a pipeline, FID/KID against a reference set, JSON report and sample grid PNG.

Runs as one process, or sharded under ``accelerate launch`` (see ``scripts/evaluate.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..runtime.errors import one_line
from ..runtime.values import check_seed

INCEPTION = "inception-v3-compat"  # torch-fidelity's standard FID extractor (kept literal: no heavy import here)
FEATURE_EXTRACTORS = (INCEPTION, "qiren-pixel-pool")
"""``qiren_gen.metrics.extractors.SUPPORTED_EXTRACTORS`` spelled out, so ``--help`` needs no torch (a test keeps
them equal): the only extractors the command offers."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The evaluation options, shared by the subcommand and ``scripts/evaluate.py``."""
    p.add_argument("--pipeline", default=None,
                   help="pipeline folder or Hugging Face Hub id (default: the bundled LFW-faces pipeline, as sample)")
    p.add_argument("--reference", required=True,
                   help="reference images: Hub dataset id, image folder, saved dataset folder, or a "
                        "reference_stats.pt written by an earlier evaluation")
    p.add_argument("--num-samples", type=int, default=1000, help="samples to generate (the paper: 50000)")
    p.add_argument("--resolution", type=int, default=None, help="sample side in pixels (default: the pipeline's)")
    p.add_argument("--fid-weights", default=None, metavar="PATH",
                   help="local copy of torch-fidelity's Inception weights (weights-inception-2015-12-05-6726825d.pth);"
                        " default: download once into the torch hub cache")
    p.add_argument("--output", default="evaluation", help="folder for metrics.json, samples.png, reference_stats.pt")
    p.add_argument("--batch-size", type=int, default=64, help="samples per pipeline call")
    p.add_argument("--num-inference-steps", type=int, default=None, help="sampler steps (default: the pipeline's)")
    p.add_argument("--seed", type=int, default=0, help="process k draws from a generator seeded seed + k")
    p.add_argument("--kid", action=argparse.BooleanOptionalAction, default=None,
                   help="also compute KID (default: when --num-samples <= 10000)")
    p.add_argument("--feature-extractor", default=INCEPTION, choices=FEATURE_EXTRACTORS,
                   help="torch-fidelity extractor; anything but inception-v3-compat is reported as a Frechet "
                        "distance, never as FID (qiren-pixel-pool: weight-free smoke test)")
    p.add_argument("--reference-split", default="train", help="dataset split of a Hub / local dataset reference")
    p.add_argument("--image-column", default=None, help="image column of a dataset reference (default: the first)")
    p.add_argument("--max-reference", type=int, default=None, help="use at most this many reference images")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="FID/KID of a pipeline's samples against a reference image set")
    add_arguments(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.num_samples < 2:
        raise ValueError(f"--num-samples must be >= 2 for FID, got {args.num_samples}")
    if args.resolution is not None and args.resolution < 1:
        raise ValueError(f"--resolution must be >= 1, got {args.resolution}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_seed(args.seed, span=1024)  # process k seeds seed + k
    if args.max_reference is not None and args.max_reference < 2:
        raise ValueError(f"--max-reference must be >= 2, got {args.max_reference}")
    if args.fid_weights is not None and not os.path.isfile(args.fid_weights):
        raise OSError(f"--fid-weights {args.fid_weights}: no such file")


def _multi_cpu() -> bool:
    """True when launched as several processes on a machine without CUDA: Accelerate then needs ``cpu=True`` to
    join them with gloo (``accelerate launch --cpu`` itself starts one process; ``--multi_gpu`` starts several)."""
    import torch  # deferred: keeps `qiren-gen --help` torch-free

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def load_pipeline(spec: str | None, device: object) -> object:
    """``QirenGenerationPipeline.from_pretrained(spec)`` on ``device`` (``None``: the bundled pipeline), with a one-line
    error when it cannot load."""
    from diffusers.utils import logging as diffusers_logging  # deferred: torch and diffusers, not for --help

    from ..pipelines import QirenGenerationPipeline, bundled_pipeline_dir

    spec = spec if spec is not None else bundled_pipeline_dir()

    diffusers_logging.disable_progress_bar()  # the component-loading bar would break the one evaluation bar
    try:
        pipe = QirenGenerationPipeline.from_pretrained(spec)
    except (OSError, ValueError):
        raise
    except Exception as exc:  # noqa: BLE001 - huggingface_hub / diffusers raise their own types
        raise OSError(f"cannot load pipeline {spec}: {type(exc).__name__}: {one_line(exc)}") from None
    finally:
        diffusers_logging.enable_progress_bar()
    return pipe.to(device)


def lazy_pipeline_sampler(args: argparse.Namespace, resolution: int | None, device: object):
    """A sampler that loads the pipeline on its first call: after the weights / reference checks, before sampling."""
    from ..evaluation import pipeline_sampler  # deferred: torch, not for --help

    state: dict = {}

    def sample(batch_size: int, generator: object) -> object:
        if "fn" not in state:
            pipe = load_pipeline(args.pipeline, device)
            state["fn"] = pipeline_sampler(pipe, resolution, args.num_inference_steps)
        return state["fn"](batch_size, generator)

    return sample


def run(args: argparse.Namespace) -> int:
    _check(args)  # before the heavy imports: bad options fail at once
    from accelerate import Accelerator  # deferred: torch and accelerate, not for --help

    from ..evaluation import evaluate
    from ..metrics import ReferenceStatistics, register_feature_extractors
    from ..metrics.reference import load_reference

    register_feature_extractors()
    accelerator = Accelerator(cpu=_multi_cpu())
    resolution = args.resolution
    if resolution is None and os.path.isfile(args.reference):
        resolution = ReferenceStatistics.load(args.reference).resolution  # sample at the statistics' resolution
    report = evaluate(
        lazy_pipeline_sampler(args, resolution, accelerator.device),
        lambda: load_reference(args.reference, resolution, split=args.reference_split,
                               image_column=args.image_column, max_images=args.max_reference),
        num_samples=args.num_samples,
        output=args.output,
        feature_extractor=args.feature_extractor,
        weights_path=args.fid_weights,
        kid=args.kid,
        batch_size=args.batch_size,
        seed=args.seed,
        accelerator=accelerator,
        progress=not args.no_progress,
    )
    if report is not None:
        name = "FID" if report["standard_fid"] else f"Frechet distance ({args.feature_extractor} features, not FID)"
        metrics = report["metrics"]
        print(json.dumps(metrics))
        fid = next(iter(metrics.values()))
        print(f"{name}: {fid:.4f} from {report['num_samples']} samples vs {report['num_reference']} reference images; "
              f"report {report['files']['report']}", file=sys.stderr)
    accelerator.end_training()  # releases the process group under accelerate launch
    return 0
