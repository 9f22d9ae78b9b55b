"""Arguments and checks shared by ``qiren-gen fit`` and ``qiren-gen superres``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..io.errors import WriteFailed
from ..runtime.errors import describe_os_error
from ..runtime.model_names import FIT_MODEL_NAMES, canonical_model_name
from ..runtime.values import check_int_range, check_seed, check_threads, parse_encoding_scale

MAX_FIT_STEPS = 100_000
"""Most full-batch steps one fit takes: 330 x the paper's 301 (each step renders every sample once)."""

ENTANGLER_CHOICES = ("cz_ring", "cnot_ring", "cnot_chain")
"""``qiren_gen.quantum.ENTANGLERS`` spelled out, so that ``--help`` needs no torch import (a test keeps them equal)."""

FIT_MODELS = FIT_MODEL_NAMES
"""``--model`` choices (``qiren-plus`` / ``relu-rff``, the former spellings, are read as ``qiren_plus`` / ``relu_rff``
but not listed)."""
CIRCUIT_MODELS = ("qiren", "qiren_plus", "qfgn", "qvf")
"""Models with a quantum circuit: they take ``--shots`` / ``--noise`` (qvf: shots and readout error only)."""
QIREN_MODELS = ("qiren", "qiren_plus")
# --flag -> QIREN constructor option (docs/research/qiren_search.md explains each)
QIREN_OPTIONS = {"qubits": "n_qubits", "reuploads": "n_reuploads", "blocks": "n_blocks", "entangler": "entangler",
                 "observables": "observables", "encoding_scale": "encoding_scale", "learnable_scale": "learnable_scale",
                 "no_batchnorm": "batch_norm", "final_observables": "final_observables",
                 "fourier_features": "fourier_features"}


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="qiren", type=canonical_model_name, choices=FIT_MODELS,
                   help="INR to fit (default: qiren)")
    p.add_argument("--steps", type=int, default=301, help="full-batch Adam steps (default: 301, the paper's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.03; 3e-3 for siren)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these ~1000-point fits gain little from more, and one thread "
                        "avoids over-subscribing a shared CPU: 37 s vs 206 s for the Bach fit on a busy 2-core "
                        "machine)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--schedule", choices=("constant", "cosine"), default=None,
                   help="learning-rate schedule (default: the model's; constant for the paper's QIREN)")
    q = p.add_argument_group("QIREN circuit options (qiren / qiren_plus; default: the model's)")
    q.add_argument("--qubits", type=int, help="qubits per circuit (= hidden width)")
    q.add_argument("--reuploads", type=int, help="data re-uploads per circuit")
    q.add_argument("--blocks", type=int, help="Rot + entangler blocks per parameter layer")
    q.add_argument("--entangler", choices=ENTANGLER_CHOICES, help="two-qubit gates of each block")
    q.add_argument("--observables", metavar="NAME_OR_JSON",
                   help="z, zz, z+zz, or a JSON list of wire lists such as '[[0], [0, 1]]'")
    q.add_argument("--encoding-scale", metavar="SCALE",
                   help="first circuit's encoding scale lambda in RZ(lambda x): one number (3), one per re-upload "
                        "(2,6), or ternary[:BASE] (BASE * 3**r at re-upload r)")
    q.add_argument("--final-observables", metavar="NAME_OR_JSON",
                   help="the last circuit's readout (default --observables): z, zz, z+zz, zzz, z+zz+zzz or JSON")
    q.add_argument("--fourier-features", type=int, metavar="N",
                   help="fixed Fourier features, N directions at radii 1, 3, 9, before the first circuit (default 0)")
    q.add_argument("--learnable-scale", action="store_true", default=None, help="train the encoding scales")
    q.add_argument("--no-batchnorm", action="store_true", default=None, help="drop the hybrid layers' BatchNorm")


def check_common(args: argparse.Namespace) -> None:
    """Reject bad sizes / steps before any file is read or model built."""
    if getattr(args, "size", 2) < 2:
        raise ValueError(f"--size must be >= 2, got {args.size}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    check_int_range(args.steps, "--steps", 1, MAX_FIT_STEPS, "full-batch steps; the paper fits in 301")
    if args.lr is not None and not 0 < args.lr <= 100:
        raise ValueError(f"--lr must be in (0, 100], got {args.lr}")
    check_threads(args.threads)
    check_seed(args.seed)


def check_output_folder(out: Path) -> None:
    """Create ``--output`` (and its parents) before any fitting, so a path that cannot be a folder (a file in the
    way, a name too long, no permission) is one line at once, not after the fit."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteFailed(f"cannot create the --output folder: {describe_os_error(exc)}") from None


def qiren_options(args: argparse.Namespace) -> dict:
    """The QIREN options given on the command line as constructor keywords (``ValueError`` for other models)."""
    given = {flag: getattr(args, flag) for flag in QIREN_OPTIONS if getattr(args, flag, None) is not None}
    if given and args.model not in QIREN_MODELS:
        flags = ", ".join("--" + f.replace("_", "-") for f in given)
        raise ValueError(f"{flags}: only for --model qiren or qiren_plus, not {args.model}")
    kwargs = {QIREN_OPTIONS[flag]: value for flag, value in given.items()}
    if "batch_norm" in kwargs:
        kwargs["batch_norm"] = False
    for key in ("observables", "final_observables"):
        obs = kwargs.get(key)
        if isinstance(obs, str) and obs.lstrip().startswith("["):
            try:
                kwargs[key] = json.loads(obs)
            except json.JSONDecodeError:
                raise ValueError(f"--{key.replace('_', '-')}: not a JSON list of wire lists: {obs!r}") from None
    if "encoding_scale" in kwargs:
        kwargs["encoding_scale"] = parse_encoding_scale(kwargs["encoding_scale"])
    if kwargs.get("fourier_features", 0) < 0:
        raise ValueError(f"--fourier-features must be >= 0, got {kwargs['fourier_features']}")
    from ..models.config_checks import MODEL_BOUNDS  # deferred: torch, not for --help

    for flag, key in (("qubits", "n_qubits"), ("reuploads", "n_reuploads"), ("blocks", "n_blocks"),
                      ("fourier_features", "fourier_features")):
        high = int(MODEL_BOUNDS[key].high)  # (too low: the model's own message names the minimum)
        if kwargs.get(key) is not None and kwargs[key] > high:
            raise ValueError(f"--{flag.replace('_', '-')} must be at most {high} (the bound of a saved model's "
                             f"config), got {kwargs[key]}")
    return kwargs


def set_threads(threads: int) -> None:
    """Apply ``--threads`` (imports torch, so call it inside ``run``)."""
    import torch  # deferred: keeps `qiren-gen --help` torch-free

    torch.set_num_threads(threads)
