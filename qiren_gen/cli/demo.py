"""``qiren-gen demo``: serve the interactive page (Gradio) for a pipeline; the page itself is ``qiren_gen.demo``."""
from __future__ import annotations

import argparse
import os
import sys

from ..runtime.errors import one_line
from ..runtime.values import check_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help='interactive page in the browser (needs pip install "qiren-gen[demo]")')
    p.add_argument("--pipeline", default=None,
                   help="pipeline folder or Hub id (default: the bundled LFW-faces pipeline, offline)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="decoded pixels allowed per request (default 262144: 16 faces at 128x128; raise on a GPU)")
    p.add_argument("--no-other-pipelines", action="store_true",
                   help="hide the field where visitors name another pipeline folder")
    p.add_argument("--allow-pipeline", action="append", default=None, metavar="ID",
                   help="a pipeline folder or Hub id visitors may pick (repeatable; a Hub id only this way: "
                        "visitors' free text names local folders). On a public bind (--host 0.0.0.0, --share, a "
                        "Space) only these and the started one are served; default: only the started one")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoLimits, require_gradio, serve_forever, start_demo  # deferred: torch, not for --help

    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    check_threads(args.threads)
    if args.max_pixels is not None and args.max_pixels < 1:
        raise ValueError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    require_gradio()  # before loading anything: one line saying how to install it
    limits = DemoLimits() if args.max_pixels is None else DemoLimits(max_pixels=args.max_pixels)
    try:
        running = start_demo(args.pipeline, host=args.host, port=args.port, share=args.share, device=args.device,
                             threads=args.threads, limits=limits, allow_other_pipelines=not args.no_other_pipelines,
                             allowed_pipelines=args.allow_pipeline)
    except OSError as exc:
        if "address" in str(exc).lower() or "port" in str(exc).lower():
            raise OSError(f"cannot serve on {args.host}:{args.port} ({one_line(exc)}); "
                          "pick another --port") from None
        raise
    print(f"qiren-gen demo: serving {running.url} (started in {running.startup_s:.1f} s; Ctrl-C stops it)",
          file=sys.stderr, flush=True)
    serve_forever(running)
    # Everything is closed and the folder removed, but Gradio's worker threads are daemons and may still be inside
    # torch (a queued fit or render that started while the server closed): finalising the interpreter under them can
    # abort the process (SIGABRT) instead of exiting 0. Nothing is left to finalise: leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
