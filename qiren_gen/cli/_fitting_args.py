"""Arguments and checks shared by ``qiren-gen fit`` and ``qiren-gen superres``."""
from __future__ import annotations

import argparse

FIT_MODELS = ("qiren", "siren", "relu", "tanh", "relu-rff", "ffn")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="qiren", choices=FIT_MODELS, help="INR to fit (default: qiren)")
    p.add_argument("--steps", type=int, default=301, help="full-batch Adam steps (default: 301, the paper's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.03; 3e-3 for siren)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these ~1000-point fits gain little from more, and one thread "
                        "avoids over-subscribing a shared CPU: 37 s vs 206 s for the Bach fit on a busy 2-core machine)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def check_common(args: argparse.Namespace) -> None:
    """Reject bad sizes / steps before any file is read or model built."""
    if getattr(args, "size", 2) < 2:
        raise ValueError(f"--size must be >= 2, got {args.size}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")


def set_threads(threads: int) -> None:
    """Apply ``--threads`` (imports torch, so call it inside ``run``)."""
    import torch

    torch.set_num_threads(threads)
