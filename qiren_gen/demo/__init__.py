"""The interactive demo (Gradio, optional: ``pip install "qiren-gen[demo]"``): sample, any resolution, interpolate,
encode your image, fit a signal. ``build_demo`` makes the page from a pipeline; ``start_demo`` serves it.

Importing this package does not import Gradio; ``build_demo`` does.
"""
from .limits import DemoLimits
from .serve import INSTALL_HINT, RunningDemo, require_gradio, serve_forever, start_demo


def build_demo(*args, **kwargs):
    """``qiren_gen.demo.app.build_demo``: the ``gr.Blocks`` page around a loaded pipeline (imports Gradio)."""
    require_gradio()
    from .app import build_demo as build  # noqa: PLC0415 - Gradio, an optional extra: imported when a page is built

    return build(*args, **kwargs)


__all__ = ["DemoLimits", "INSTALL_HINT", "RunningDemo", "build_demo", "require_gradio", "serve_forever", "start_demo"]
