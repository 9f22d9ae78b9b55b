"""The demo page: ``build_demo(pipeline)`` returns a ``gr.Blocks`` with the five tabs; it does not start a server.

Every handler checks its inputs first (``qiren_gen.demo.limits``); a refusal is a ``gr.Error`` in the page and one
line on the server's stderr (control characters escaped), and the server keeps serving. The model tabs share one
line of Gradio's queue (one request at a time), the Fit tab has its own, each line bounded in length and per client
(``qiren_gen.demo.admission``); each request seeds its own generator, so requests never share random state.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from types import SimpleNamespace

import gradio as gr

from ..data.signals import load_image, open_image, resize_image
from ..io.errors import shown
from ..pipelines.schedulers import SAMPLERS
from ..runtime.errors import one_line
from . import actions
from .admission import QueueCaps, admission_check
from .limits import DemoLimits, as_int
from .live_fit import (
    FIT_BASELINES,
    PAPER_BASELINE,
    TUNED_BASELINE,
    canonical_baseline,
    frame_summary,
    live_fit,
    loss_figure,
)
from .store import PipelineRefused, PipelineStore
from .uploads import open_upload

FIT_IMAGES = ("camera", "astronaut", "coffee", "chelsea", "moon", "text")
"""scikit-image's bundled pictures offered by the Fit tab (they load offline)."""

CSS = """
.zoom img { width: 100% !important; height: 100% !important; object-fit: contain !important; }
.pixelated img { image-rendering: pixelated; }
"""
"""``zoom``: small images fill their box (a 25x25 face is not a stamp); ``pixelated``: enlarged pixels stay sharp
squares instead of being blurred by the browser, so what the model rendered is what one sees."""

PIXELS = ["zoom", "pixelated"]

INTRO = """# QIREN functional diffusion model
Faces drawn by a diffusion prior over latents and rendered by a **quantum implicit neural representation**
([QIREN](https://arxiv.org/abs/2406.03873)): the decoder is a function of continuous coordinates, so the same face
renders at any resolution. Made with qiren-gen. {caps}."""


MODEL_GROUP, FIT_GROUP = "pipeline", "fit"
"""The queue's lines: the four tabs that use the generation pipeline share one (one model), Fit has its own."""

TUNED_NOTE = ("With its usual settings (omega_0 30, lr 3e-3) SIREN fits this picture far better than QIREN: the "
              "paper's comparison used the authors' code's omega_0 1 and lr 0.03; see the paper reproduction page.")


def _refusal_line(tab: str, message: str) -> None:
    print(f"qiren-gen demo: {tab}: refused: {shown(message)}", file=sys.stderr, flush=True)


def _guarded(tab: str, fn: Callable) -> Callable:
    """``fn`` with any exception turned into a ``gr.Error`` (page) and one stderr line (server)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure: one line in the page and on the server
                raise _page_error(tab, exc) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure: one line in the page and on the server
            raise _page_error(tab, exc) from None
    return wrapper


def _page_error(tab: str, exc: Exception) -> gr.Error:
    """A refusal (``ValueError`` / ``OSError``) or an unexpected failure as one line; ``QIREN_GEN_DEBUG=1`` keeps the
    traceback of unexpected ones."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, PipelineRefused):  # the page: one answer for every reason; the log: the reason
        _refusal_line(tab, exc.detail)
        return gr.Error(shown(one_line(exc)), print_exception=False)
    if isinstance(exc, (ValueError, OSError)):
        _refusal_line(tab, one_line(exc))
        return gr.Error(shown(one_line(exc)), print_exception=False)
    message = f"internal error: {type(exc).__name__}: {shown(one_line(exc))}"
    print(f"qiren-gen demo: {tab}: {message} (set QIREN_GEN_DEBUG=1 for the traceback)", file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=bool(os.environ.get("QIREN_GEN_DEBUG")))


def _int_box(label: str, value: int, info: str | None = None) -> gr.Number:
    """A whole-number field; its range is checked by the handler (one clear line), not by Gradio (a traceback)."""
    return gr.Number(label=label, value=value, precision=0, info=info)


def build_demo(pipeline, limits: DemoLimits | None = None, device: str = "cpu", allow_other_pipelines: bool = True,
               title: str = "qiren-gen demo", allowed_pipelines: tuple[str, ...] | None = None,
               pipeline_name: str | None = None) -> gr.Blocks:
    """The demo page around a loaded ``QirenGenerationPipeline`` (any decoder, any training size).

    ``allow_other_pipelines`` shows a field where a visitor names another local pipeline folder (loaded with the
    safe loader; a Hub id only when ``allowed_pipelines`` lists it); ``allowed_pipelines`` (``None``: any local
    folder) restricts it to a list, as a public bind must.
    ``pipeline_name`` is the started pipeline's id or folder.
    """
    limits = limits or DemoLimits()
    store = PipelineStore(pipeline, device=device, allow_others=allow_other_pipelines, allowed=allowed_pipelines,
                          default_name=pipeline_name)
    handlers = make_handlers(store, limits)
    size = pipeline.prior.config.sample_size
    caps = limits.pixel_cost_note()
    with gr.Blocks(title=title, delete_cache=(limits.cache_every_s, limits.cache_max_age_s)) as demo:
        gr.Markdown(INTRO.format(caps=caps[0].upper() + caps[1:]))
        source = _source_field(store, pipeline_name)
        model_line = _line(demo, MODEL_GROUP, QueueCaps(limits.model_waiting, limits.waiting_per_client))
        fit_line = _line(demo, FIT_GROUP, QueueCaps(limits.fit_waiting, limits.waiting_per_client))
        _sample_tab(source, handlers, limits, size, model_line)
        _any_resolution_tab(source, handlers, limits, model_line)
        _interpolate_tab(source, handlers, limits, model_line)
        _your_image_tab(source, handlers, size, model_line)
        _fit_tab(handlers, limits, fit_line)
    return demo


def _line(blocks: gr.Blocks, group: str, caps: QueueCaps) -> dict:
    """The event arguments that put a tab's requests in the queue line ``group``: one at a time, bounded on joining."""
    return {"concurrency_id": group, "concurrency_limit": 1,
            "validator": admission_check(blocks, group, caps, group, _refusal_line)}


def make_handlers(store: PipelineStore, limits: DemoLimits) -> SimpleNamespace:
    """The page's event handlers (``sample``, ``any_resolution``, ``interpolate``, ``encode``, ``fit``), each
    checking its inputs against ``limits`` and running the model of ``store`` one request at a time."""
    def sample(source, seed, num_faces, resolution, steps, sampler="ddim", shots=0,
               progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
        with store.use(source) as pipe:
            return actions.sample_grid(pipe, seed, num_faces, resolution, steps, limits, sampler, shots)

    def any_resolution(source, seed, sizes, steps, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
        if isinstance(sizes, (str, int)):  # one size given alone through the API
            sizes = [sizes]
        with store.use(source) as pipe:
            images = actions.any_resolution(pipe, seed, [as_int(s, "size", 1, limits.max_side) for s in sizes or []],
                                            steps, limits)
        return [(im, f"{im.width}x{im.height}") for im in images]

    def interpolate(source, seed_a, seed_b, num_frames, resolution, steps, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
        with store.use(source) as pipe:
            return actions.interpolate(pipe, seed_a, seed_b, num_frames, resolution, steps, limits)

    def encode(source, upload, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
        image = open_upload(upload, limits)
        with store.use(source) as pipe:
            out = actions.encode_upload(pipe, image)
        note = (f"Encoded at {out.model_input.width}x{out.model_input.height} (the model's training size) by "
                f"{out.method}; reconstruction PSNR **{out.psnr_db:.2f} dB**. The 4x render is the same "
                "latent on a finer grid (prior-based superresolution), beside bicubic interpolation.")
        return out.model_input, out.reconstruction, out.prior_upscaled, out.bicubic_upscaled, note

    def fit(picture, upload, fit_size, steps, baseline=PAPER_BASELINE):
        fit_size = as_int(fit_size, "fit size", 8, limits.max_fit_size, limits.fit_cost_note())
        steps = as_int(steps, "steps", 1, limits.max_fit_steps, limits.fit_cost_note())
        baseline = canonical_baseline(baseline)
        if baseline not in FIT_BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(FIT_BASELINES)}, got '{shown(str(baseline)[:80])}'")
        if upload:
            open_upload(upload, limits)  # refuses non-images, empty and huge files before PIL decodes them fully
            signal = resize_image(open_image(upload), fit_size)
        elif picture in FIT_IMAGES:
            signal = load_image(picture, fit_size)
        else:
            raise ValueError(f"picture must be one of {', '.join(FIT_IMAGES)} (or upload an image), got "
                             f"'{shown(str(picture)[:80])}'")
        target = actions.to_uint8(signal)
        for frame in live_fit(signal, baseline, steps, every=max(1, steps // 20)):
            fits = [actions.to_uint8(t.fit) if t.fit is not None else None for t in frame.tracks]
            yield target, fits[0], fits[1], loss_figure(frame), frame_summary(frame)

    return SimpleNamespace(sample=_guarded("sample", sample),
                           any_resolution=_guarded("any resolution", any_resolution),
                           interpolate=_guarded("interpolate", interpolate),
                           encode=_guarded("your image", encode), fit=_guarded("fit", fit))


def _source_field(store: PipelineStore, pipeline_name: str | None) -> gr.Textbox | gr.Dropdown:
    """Where a visitor names another pipeline: free text, or a fixed list on a public bind (hidden when neither)."""
    if store.allowed is None:
        return gr.Textbox(label="pipeline (empty: the one this page started with; or a local pipeline folder)",
                          value="", visible=store.others_allowed, max_lines=1)
    # a fixed list (public bind): the server refuses anything else, whatever a client sends
    return gr.Dropdown(["", *[a for a in store.allowed if a != pipeline_name]], value="",
                       label="pipeline (empty: the one this page started with)",
                       visible=store.others_allowed, allow_custom_value=True)


def _sample_tab(source, handlers: SimpleNamespace, limits: DemoLimits, size: int, line: dict) -> None:
    with gr.Tab("Sample"):
        with gr.Row():
            seed = _int_box("seed", 0, "any whole number >= 0: same seed, same faces")
            num_faces = _int_box("number of faces", limits.max_faces, f"1 to {limits.max_faces}")
            resolution = _int_box("resolution", 128, f"trained at {size}; any size up to {limits.max_side}")
            steps = _int_box("steps", 50, f"1 to {limits.max_steps}")
            sampler = gr.Dropdown(list(SAMPLERS), value="ddim", label="sampler", allow_custom_value=True,
                                  info="dpm++ / unipc: the same faces in 20 steps")
            shots = _int_box("shots", 0, "0: exact; N: every circuit read out from N measurement samples, "
                             "as on a quantum device (try 10, 100, 1000)")
        run = gr.Button("Sample", variant="primary", elem_id="sample-button")
        grid = gr.Image(label="samples (PNG)", type="pil", format="png", buttons=["download", "fullscreen"],
                        elem_id="sample-grid", elem_classes=PIXELS, height=520)
        run.click(handlers.sample, [source, seed, num_faces, resolution, steps, sampler, shots], grid,
                  api_name="sample", **line)


def _any_resolution_tab(source, handlers: SimpleNamespace, limits: DemoLimits, line: dict) -> None:
    with gr.Tab("Any resolution"):
        gr.Markdown("One latent, rendered on coordinate grids of several sizes: nothing is resampled.")
        with gr.Row():
            seed = _int_box("seed", 0, "any whole number >= 0")
            # string values: the API advertises the sizes as strings, so strings are what it accepts
            sizes = gr.CheckboxGroup([str(s) for s in (16, 32, 64, 128, 256, 512)],
                                     value=[str(s) for s in actions.ANY_RESOLUTION_SIZES], label="sizes")
            steps = _int_box("DDIM steps", 50, f"1 to {limits.max_steps}")
        run = gr.Button("Render", variant="primary", elem_id="any-resolution-button")
        gallery = gr.Gallery(label="the same face", format="png", columns=6, object_fit="contain",
                             elem_classes="pixelated", height=320)
        run.click(handlers.any_resolution, [source, seed, sizes, steps], gallery, api_name="any_resolution", **line)


def _interpolate_tab(source, handlers: SimpleNamespace, limits: DemoLimits, line: dict) -> None:
    with gr.Tab("Interpolate"):
        gr.Markdown("A walk between two seeds: the prior's starting noise is interpolated on the sphere "
                    "(slerp) and each point is denoised with DDIM (deterministic), so every face is a proper "
                    "sample; a straight line between two latents would pass through blurry averages.")
        with gr.Row():
            seed_a = _int_box("seed A", 0)
            seed_b = _int_box("seed B", 1)
            frames = _int_box("number of faces", 8, f"2 to {limits.max_faces}")
            resolution = _int_box("resolution", 64, f"up to {limits.max_side}")
            steps = _int_box("DDIM steps", 50, f"1 to {limits.max_steps}")
        run = gr.Button("Interpolate", variant="primary", elem_id="interpolate-button")
        strip = gr.Image(label="A -> B", type="pil", format="png", buttons=["download"],
                         elem_classes=PIXELS, height=240)
        run.click(handlers.interpolate, [source, seed_a, seed_b, frames, resolution, steps], strip,
                  api_name="interpolate", **line)


def _your_image_tab(source, handlers: SimpleNamespace, size: int, line: dict) -> None:
    with gr.Tab("Your image"):
        gr.Markdown(f"Upload a picture (a face works best). It is centre-cropped, resized to the model's "
                    f"{size}x{size}, encoded into the model's latent space and decoded again.")
        upload = gr.File(label="image (PNG, JPEG, WebP, ...)", type="filepath")
        run = gr.Button("Encode", variant="primary", elem_id="encode-button")
        with gr.Row():
            model_input = gr.Image(label="what the model sees", type="pil", format="png", elem_classes=PIXELS,
                                   height=200)
            reconstruction = gr.Image(label="reconstruction", type="pil", format="png", elem_classes=PIXELS,
                                      height=200)
            prior_4x = gr.Image(label="4x: prior (QIREN)", type="pil", format="png", elem_classes="zoom", height=200)
            bicubic_4x = gr.Image(label="4x: bicubic", type="pil", format="png", elem_classes="zoom", height=200)
        note = gr.Markdown()
        run.click(handlers.encode, [source, upload], [model_input, reconstruction, prior_4x, bicubic_4x, note],
                  api_name="encode", **line)


def _fit_tab(handlers: SimpleNamespace, limits: DemoLimits, line: dict) -> None:
    with gr.Tab("Fit a signal"):
        gr.Markdown("The paper's comparison, live: its QIREN (about 650 parameters) against SIREN at the paper's "
                    "settings (about 1,000 parameters), fitted to one grayscale picture with the signal-fitting "
                    f"pipeline (full-batch Adam on the MSE). {limits.fit_cost_note()[0].upper()}"
                    f"{limits.fit_cost_note()[1:]}.")
        with gr.Row():
            picture = gr.Dropdown(list(FIT_IMAGES), value="camera", label="picture", allow_custom_value=True)
            upload = gr.File(label="or your image", type="filepath")
            fit_size = _int_box("size", limits.max_fit_size, f"8 to {limits.max_fit_size} pixels per side")
            steps = _int_box("steps", limits.max_fit_steps, f"1 to {limits.max_fit_steps}")
            baseline = gr.Dropdown([(FIT_BASELINES[b].label, b) for b in FIT_BASELINES], value=PAPER_BASELINE,
                                   label="classical baseline", allow_custom_value=True)
        run = gr.Button("Fit", variant="primary", elem_id="fit-button")
        with gr.Row():
            target = gr.Image(label="target", type="pil", format="png", elem_classes=PIXELS, height=220)
            qiren = gr.Image(label="QIREN", type="pil", format="png", elem_classes=PIXELS, height=220)
            base = gr.Image(label="baseline", type="pil", format="png", elem_classes=PIXELS, height=220)
            curve = gr.Image(label="MSE", type="pil", format="png", height=220)
        note = gr.Markdown()
        outputs = [target, qiren, base, curve, note]
        run.click(handlers.fit, [picture, upload, fit_size, steps, baseline], outputs, api_name="fit", **line)
        with gr.Accordion("Against a tuned SIREN", open=False):
            gr.Markdown(TUNED_NOTE, elem_id="tuned-note")
            tuned = gr.Button("Fit against the tuned SIREN", elem_id="fit-tuned-button")
            tuned_choice = gr.State(TUNED_BASELINE)
        tuned.click(handlers.fit, [picture, upload, fit_size, steps, tuned_choice], outputs, api_name="fit_tuned",
                    **line)


__all__ = ["CSS", "FIT_IMAGES", "build_demo", "make_handlers"]
