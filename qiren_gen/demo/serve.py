"""Start the demo server: load the pipeline, build the page, launch it on loopback (by default) with a queue.

Everything Gradio writes (uploads, rendered images) goes to one temporary folder of the demo: uploads over the cap
are refused while they stream in (Gradio's ``max_file_size``), old files are deleted while it runs (``delete_cache``),
and the folder is removed on close, on Ctrl-C and on SIGTERM.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .limits import DemoLimits
from .store import is_public_bind, pipeline_allow_list

INSTALL_HINT = 'the demo needs Gradio: pip install "qiren-gen[demo]"'


def require_gradio() -> None:
    """Raise ``OSError`` with the install line when Gradio is missing."""
    if importlib.util.find_spec("gradio") is None:
        raise OSError(INSTALL_HINT)


@dataclass
class RunningDemo:
    """A started demo: its URL, the Blocks object, its temporary folder and how long start-up took."""

    url: str
    blocks: object
    temp_dir: Path
    startup_s: float
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Stop the server, stop running fits, and remove the demo's temporary folder."""
        try:
            self.blocks.close()
            fits = sys.modules.get("qiren_gen.demo.live_fit")  # loaded with the page; not imported here (torch)
            if fits is not None:
                fits.stop_all_fits()
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _keep_writes_in(temp_dir: Path) -> dict[str, str | None]:
    """Point Gradio's uploads / outputs and the caches torch and matplotlib would create into the demo's folder
    (unless the user set them), and keep Gradio from calling home; returns the previous values."""
    wanted = {"GRADIO_TEMP_DIR": str(temp_dir), "GRADIO_ANALYTICS_ENABLED": "False",
              "TORCHINDUCTOR_CACHE_DIR": str(temp_dir / "torchinductor"),  # made on importing diffusers
              "MPLCONFIGDIR": str(temp_dir / "matplotlib")}  # the Fit tab's loss curve
    previous = {name: os.environ.get(name) for name in wanted}
    for name, value in wanted.items():
        if name == "GRADIO_TEMP_DIR" or previous[name] is None:
            os.environ[name] = value
    return previous


def _restore(previous: dict[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def check_port_free(host: str, port: int) -> None:
    """``OSError`` (one line) when ``host:port`` cannot be bound, before the pipeline is loaded for nothing."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise OSError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); pick another --port") from None


def load_pipeline(source: str | os.PathLike | None):
    """The ``QirenGenerationPipeline`` at ``source`` (folder or Hub id; ``None``: the bundled one), safely."""
    # deferred: diffusers, only once start_demo has pointed torch's caches into its temporary folder
    from ..pipelines import QirenGenerationPipeline, bundled_pipeline_dir  # noqa: PLC0415

    return QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir() if source is None else source)


def start_demo(pipeline: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int | None = None,
               share: bool = False, device: str = "cpu", threads: int | None = 1, limits: DemoLimits | None = None,
               allow_other_pipelines: bool = True, temp_root: str | os.PathLike | None = None,
               warm_up: bool = True, allowed_pipelines: list[str] | None = None) -> RunningDemo:
    """Load, build and launch the demo without blocking; ``OSError`` / ``ValueError`` (one line) before anything
    is served when the pipeline cannot be loaded.

    On a public bind (``host`` not loopback, ``share``, a Space) visitors may name only ``allowed_pipelines`` (default:
    none but the started one); on loopback, any local folder (a Hub id only when ``allowed_pipelines`` lists it).
    """
    start = time.perf_counter()
    require_gradio()
    if port is not None:
        check_port_free(host, port)
    temp_dir = Path(tempfile.mkdtemp(prefix="qiren-gen-demo-", dir=temp_root))
    previous_env = _keep_writes_in(temp_dir)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        pipe = load_pipeline(pipeline)
        from .app import CSS, build_demo  # noqa: PLC0415 - Gradio, an optional extra

        name = None if pipeline is None else str(pipeline)
        allowed = pipeline_allow_list(is_public_bind(host, share), allowed_pipelines, name)
        blocks = build_demo(pipe, limits=limits, device=device, allow_other_pipelines=allow_other_pipelines,
                            allowed_pipelines=allowed, pipeline_name=name)
        if warm_up:  # first-call costs (kernel selection, lazy imports) paid before the first visitor
            pipe.set_progress_bar_config(disable=True)
            pipe(batch_size=1, height=4, width=4, num_inference_steps=1, generator=torch.Generator().manual_seed(0))
            pipe.set_progress_bar_config(disable=False, leave=False)
        blocks.queue(default_concurrency_limit=1, max_size=queue_size(limits or DemoLimits()))
        _, url, _ = blocks.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True,
                                  show_error=True, quiet=True, ssr_mode=False, css=CSS, footer_links=["api"],
                                  max_file_size=(limits or DemoLimits()).max_upload_bytes)
    except BaseException:  # nothing served: leave no folder and no changed environment behind
        shutil.rmtree(temp_dir, ignore_errors=True)
        _restore(previous_env)
        raise
    return RunningDemo(url=url, blocks=blocks, temp_dir=temp_dir, startup_s=time.perf_counter() - start)


def queue_size(limits: DemoLimits) -> int:
    """Gradio's overall queue bound: every line full at once (each line's own cap is checked on joining it)."""
    return limits.model_waiting + limits.fit_waiting


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C: Gradio's block_thread returns, the folder is removed


def serve_forever(running: RunningDemo) -> None:
    """Block until Ctrl-C or SIGTERM (a service manager, ``docker stop``, ``kill``), then close the server and remove
    its temporary folder."""
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    except ValueError:  # not the main thread: SIGTERM keeps its handler, Ctrl-C / close() still clean up
        pass
    try:
        running.blocks.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        running.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        print("qiren-gen demo: stopped", file=sys.stderr)


__all__ = ["INSTALL_HINT", "RunningDemo", "check_port_free", "load_pipeline", "queue_size", "require_gradio",
           "serve_forever", "start_demo"]
