"""``qiren-gen sample``: draw images from a pretrained QirenGenerationPipeline and write a PNG grid."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..runtime.errors import describe_os_error, one_line
from ..runtime.values import check_int_range, check_seed, check_threads

DEFAULT_SIZE = 128
"""Pixels per side when no size is given: a 25x25 training face drawn at 128x128 is worth looking at."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample images at any resolution from a pretrained pipeline")
    p.add_argument("--pipeline", default=None,
                   help="pipeline folder or Hub id (default: the bundled LFW-faces pipeline, offline)")
    p.add_argument("--num-images", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--resolution", type=int, default=None,
                   help=f"square size in pixels (default {DEFAULT_SIZE}: big enough to see a face; any size works)")
    p.add_argument("--height", type=int, default=None, help="height in pixels (with --width; overrides --resolution)")
    p.add_argument("--width", type=int, default=None, help="width in pixels (with --height)")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    p.add_argument("--scheduler", default="ddim", metavar="NAME",
                   help="sampler: ddim (default), dpm++ (same faces in 20 steps), unipc, euler, euler-a, heun, lms, "
                        "pndm, deis, ddpm, dpm++-single, kdpm2, kdpm2-a")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same images")
    p.add_argument("--chunk-size", type=int, default=None, help="coordinates decoded at once (memory bound)")
    p.add_argument("--shots", type=int, default=None,
                   help="estimate every circuit expectation from N measurement shots (default: exact)")
    p.add_argument("--noise", default=None, metavar="P_OR_CHANNELS",
                   help="noisy gates: a depolarizing probability, or e.g. depolarizing=1e-3,readout=0.01 "
                        "(channels: depolarizing, amplitude_damping, dephasing, readout)")
    p.add_argument("--pennylane-device", default=None, metavar="NAME",
                   help="measure the circuits once on this PennyLane device (default.qubit, default.mixed, "
                        "qiskit.aer, ...) and render every resolution from them; --shots sets its shots")
    p.add_argument("--fake-backend", default=None, metavar="NAME",
                   help="with --pennylane-device qiskit.aer: a fake IBM backend's calibrated noise, native gates and "
                        "coupling, e.g. FakeBrisbane or FakeTorino (needs the qpu extra)")
    p.add_argument("--mitigation", default=None, metavar="LIST",
                   help="with --pennylane-device: readout, zne, or readout,zne (default none)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: one thread never over-subscribes a shared CPU; the command "
                        "prints how long it took)")
    p.add_argument("--rows", type=int, default=None, help="grid rows (default: about square)")
    p.add_argument("--save-individual", metavar="DIR", default=None, help="also write each image as DIR/NNNN.png")
    p.add_argument("--output", required=True, help="PNG file for the grid")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> tuple[int | None, int | None, Path]:
    if args.num_images < 1:
        raise ValueError(f"--num-images must be >= 1, got {args.num_images}")
    if (args.height is None) != (args.width is None):
        raise ValueError("give --height and --width together (or --resolution)")
    height = args.height if args.height is not None else args.resolution
    width = args.width if args.width is not None else args.resolution
    for name, value in (("height", height), ("width", width)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    _check_pixels(args.num_images, height or DEFAULT_SIZE, width or DEFAULT_SIZE)
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    from ..pipelines.schedulers import canonical_sampler_name

    try:
        args.scheduler = canonical_sampler_name(args.scheduler)
    except ValueError as exc:
        raise ValueError(f"--scheduler: {exc}") from None
    if args.rows is not None and args.rows < 1:
        raise ValueError(f"--rows must be >= 1, got {args.rows}")
    check_int_range(args.rows, "--rows", 1, args.num_images, "a grid has at most one row per image")
    check_threads(args.threads)
    check_seed(args.seed)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ValueError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    from ..quantum.noise import parse_noise
    from ..quantum.shots import check_shots

    check_shots(args.shots)
    args.noise = parse_noise(args.noise)
    _check_device_args(args)
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--output must be a .png file, got '{out}'")
    if not out.parent.exists() or not out.parent.is_dir():
        raise OSError(f"the folder of --output does not exist: '{out.parent}'")
    try:
        out.stat()  # a name too long for the file system: one line now, not after the sampling
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OSError(f"cannot write --output: {describe_os_error(exc)}") from None
    if out.is_dir():
        raise OSError(f"--output '{out}' is a folder")
    if args.save_individual:  # created now, so a bad folder fails before sampling, not after it
        Path(args.save_individual).mkdir(parents=True, exist_ok=True)
    return height, width, out


def _check_pixels(num_images: int, height: int, width: int) -> None:
    """The pipeline's pixel bounds (one image up to 4096x4096; one run up to 2**26 pixels in all) in this command's
    own flags, before anything is loaded."""
    from ..pipelines.generation import MAX_BATCH_PIXELS, MAX_RENDER_PIXELS

    size = f"{height}x{width}"
    if height * width > MAX_RENDER_PIXELS:
        raise ValueError(f"--resolution / --height x --width {size} is over the documented bound of 4096x4096 "
                         "pixels per image")
    if num_images * height * width > MAX_BATCH_PIXELS:
        fits = MAX_BATCH_PIXELS // (height * width)
        side = math.isqrt(MAX_BATCH_PIXELS // num_images)
        smaller = f", or for {num_images} images a size up to {side}x{side}" if side >= 1 else ""
        raise ValueError(f"--num-images {num_images} at {size} is {num_images * height * width:,} pixels, over the "
                         f"{MAX_BATCH_PIXELS:,} one run renders: at {size} use --num-images {fits} or fewer{smaller}")


def _check_device_args(args: argparse.Namespace) -> None:
    """The PennyLane-device flags fit together (before anything is loaded)."""
    if args.pennylane_device is None:
        for flag, value in (("--fake-backend", args.fake_backend), ("--mitigation", args.mitigation)):
            if value is not None:
                raise ValueError(f"{flag} needs --pennylane-device")
        return
    if args.noise is not None:
        raise ValueError("--noise is the simulator's noise; with --pennylane-device the device brings its own "
                         "(e.g. --fake-backend)")
    from ..quantum.device_mitigation import check_mitigation

    args.mitigation = check_mitigation(args.mitigation)


def _measure_on_device(pipe, args: argparse.Namespace) -> list[str]:
    """Measure the decoder's circuits on the PennyLane device and install them; the report's lines."""
    from ..models.device_features import measure_decoder_features

    try:
        run = measure_decoder_features(pipe.decoder, args.pennylane_device, args.fake_backend, args.shots,
                                       args.mitigation, seed=args.seed)
    except ImportError as exc:  # an extra that is not installed is the user's to fix: one line, exit 2
        raise ValueError(one_line(exc)) from None
    return run.lines()


def run(args: argparse.Namespace) -> int:
    height, width, out = _check_args(args)  # before any loading or sampling: never lose work to a bad path

    import torch
    from diffusers.utils import logging as diffusers_logging
    from diffusers.utils import make_image_grid

    from ..io.atomic import save_image
    from ..pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir, check_generation_inputs
    from ..pipelines.schedulers import make_scheduler

    if height is not None:  # sizes the user gave are checked before anything is loaded
        check_generation_inputs(args.num_images, height, width, args.steps)
    from ..runtime import process_age

    torch.set_num_threads(args.threads)
    source = args.pipeline if args.pipeline is not None else bundled_pipeline_dir()
    startup = process_age()  # interpreter start and imports, before any work
    start = time.perf_counter()
    diffusers_logging.disable_progress_bar()  # loading is instant; keep stderr for the sampling bar and errors
    try:
        pipe = QirenGenerationPipeline.from_pretrained(source)
    finally:
        diffusers_logging.enable_progress_bar()
    height = DEFAULT_SIZE if height is None else height
    width = DEFAULT_SIZE if width is None else width
    check_generation_inputs(args.num_images, height, width, args.steps)
    try:
        device = torch.device(args.device)
        pipe.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"cannot use device '{args.device}': {one_line(exc)}") from None
    pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler.config)
    device_report = [] if args.pennylane_device is None else _measure_on_device(pipe, args)
    shots = None if args.pennylane_device is not None else args.shots  # the device measured with them
    generator = torch.Generator(device=device).manual_seed(args.seed)
    images = pipe(batch_size=args.num_images, height=height, width=width, num_inference_steps=args.steps,
                  generator=generator, chunk_size=args.chunk_size, shots=shots, noise=args.noise).images
    rows = args.rows or max(1, int(math.floor(math.sqrt(args.num_images))))
    while args.num_images % rows:
        rows -= 1
    grid = make_image_grid(images, rows=rows, cols=args.num_images // rows)
    save_image(out, grid)  # written beside and renamed: a failed write keeps the previous file whole
    if args.save_individual:
        folder = Path(args.save_individual)
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            save_image(folder / f"{i:04d}.png", image)
    elapsed = time.perf_counter() - start
    print(f"wrote {out} ({args.num_images} images, {height}x{width}, {args.steps} {args.scheduler} steps, "
          f"seed {args.seed}{'' if args.shots is None else f', {args.shots} shots'}"
          f"{'' if args.noise is None else f', noise {args.noise.describe()}'}) in {elapsed:.1f} s "
          f"({startup + elapsed:.1f} s with start-up; start-up {startup:.1f} s)")
    for line in device_report:
        print(line)
    return 0
