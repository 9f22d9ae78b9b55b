"""Safe ``from_pretrained`` for every qiren-gen pipeline: safetensors only, no code or foreign classes from a folder.

The folder is checked first (``folders.validate_pipeline_folder``); then each component class is taken from the fixed
table of ``component_classes``, its config and weights are checked (``load_checked_component``), it is loaded from its
sub-folder, and the pipeline is built from them. Nothing
in the folder is imported or unpickled: diffusers' own loader is not used, because for a folder carrying the diffusers
entry module (``qiren_pipeline.py``) it would import that file.

It takes diffusers' loading arguments: ``dtype`` / ``torch_dtype`` (a dtype, or a per-component dict with
``"default"``), ``variant``, ``use_safetensors``, ``low_cpu_mem_usage``, ``device_map`` (what diffusers accepts:
``"balanced"``, ``"cpu"`` or the accelerator's name), ``trust_remote_code`` (accepted; the class is always the
installed one, so no code is run either way) and components by keyword (``scheduler=...``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from diffusers.pipelines.pipeline_utils import SUPPORTED_DEVICE_MAP
from diffusers.schedulers.scheduling_utils import SCHEDULER_CONFIG_NAME, SchedulerMixin
from diffusers.utils import logging
from diffusers.utils.torch_utils import get_device

from .. import models
from ..models.config_checks import check_model_config, check_scheduler_config
from ..runtime.errors import one_line
from ..runtime.json_files import read_json_file
from .component_classes import component_class
from .folders import resolve_pipeline_folder, validate_pipeline_folder
from .weights_checks import check_weights, expected_tensors, weight_files

_LOGGER = logging.get_logger("diffusers.pipelines.pipeline_utils")  # where diffusers' loader says what it loaded
_HUB_ONLY = ("revision", "token", "cache_dir", "local_files_only", "force_download", "proxies")
_LOAD_ERRORS = (ValueError, OSError, KeyError, RuntimeError, AttributeError, TypeError, NotImplementedError)


def _first_line(exc: BaseException) -> str:
    """The useful part of a loading error: its first line, without diffusers' boilerplate."""
    return one_line(exc).split(". If you want")[0].replace("Cannot load  because ", "")


def _as_dtype(value, what: str) -> torch.dtype | None:
    """``value`` (a ``torch.dtype``, its name like ``"float16"``, or ``"auto"``/``None`` = as saved) as a dtype."""
    if value is None or value == "auto":
        return None
    if isinstance(value, str):
        value = getattr(torch, value.removeprefix("torch."), value)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"{what} must be a floating torch dtype (e.g. torch.float16), got {value!r}")
    return value


def resolve_component_dtypes(dtype, torch_dtype, components: tuple[str, ...], class_name: str) -> dict:
    """Per-component dtypes (``None`` = as saved) from ``dtype`` / ``torch_dtype``: one dtype for all, or a dict of
    component names plus ``"default"``. ``ValueError`` (one line) for a key naming no component, or both given."""
    if dtype is not None and torch_dtype is not None and dtype != torch_dtype:
        raise ValueError("give dtype or torch_dtype (an older name for it), not both")
    value = dtype if dtype is not None else torch_dtype
    what = "dtype" if dtype is not None else "torch_dtype"
    if not isinstance(value, dict):
        one = _as_dtype(value, what)
        return {name: one for name in components}
    unknown = [k for k in value if k not in components and k != "default"]
    if unknown:
        raise ValueError(f"{what} dict names {', '.join(map(repr, unknown))}, not a component of {class_name} "
                         f"(components: {', '.join(components)}; or 'default')")
    default = _as_dtype(value.get("default"), f"{what}['default']")
    return {name: _as_dtype(value[name], f"{what}[{name!r}]") if name in value else default for name in components}


def _device_for(device_map) -> str | None:
    """The one device a ``device_map`` puts every component on (``None``: leave them where they load, the CPU).

    qiren-gen pipelines are a few MB, so ``"balanced"`` uses the first accelerator (the CPU when there is none,
    as diffusers does); ``"cpu"`` or the accelerator's name (``"cuda"``) place everything there.
    """
    if device_map is None:
        return None
    if not isinstance(device_map, str) or device_map not in SUPPORTED_DEVICE_MAP:
        raise ValueError(f"device_map={device_map!r} is not supported; use one of: "
                         f"{', '.join(dict.fromkeys(SUPPORTED_DEVICE_MAP))}")
    if device_map == "balanced":
        device = get_device()
        return None if device == "cpu" else device
    return device_map


def _weights_variant(sub: Path, variant: str | None) -> str | None:
    """The variant to load from ``sub``: the one asked for (``ValueError`` when absent), or, with none asked, the
    single variant a folder saved with ``variant=`` holds (diffusers' name
    ``diffusion_pytorch_model.<v>.safetensors``)."""
    plain = (sub / "diffusion_pytorch_model.safetensors").is_file() or any(
        sub.glob("diffusion_pytorch_model-*-of-*.safetensors"))
    found = sorted({p.name.split(".")[1] for p in sub.glob("diffusion_pytorch_model.*.safetensors")
                    if len(p.name.split(".")) == 3})
    if variant is not None:
        if variant not in found and not any(sub.glob(f"diffusion_pytorch_model.safetensors.index.{variant}.json")):
            have = ", ".join(found) if found else "none"
            raise ValueError(f"You are trying to load the model files of the `variant={variant}`, but '{sub}' has no "
                             f"variant={variant!r} weights (variants there: {have})")
        return variant
    if not plain and len(found) == 1:
        return found[0]
    return None


def load_checked_component(sub: Path, klass: type, dtype: torch.dtype | None = None, options: dict | None = None,
                           shown_as: str | None = None) -> object:
    """``klass`` loaded from the component folder ``sub`` after its config and weights are checked.

    The config file (size and nesting capped) must hold values ``klass`` takes, each typed and bounded
    (``config_checks``); the model is sized on the meta device and its safetensors weights compared with it
    (``weights_checks``: keys, shapes, dtypes, finite values) before diffusers' own ``from_pretrained`` builds it.
    ``ValueError`` / ``OSError`` with one line naming the file (as ``shown_as/<file>``, default the full path) and
    the key otherwise.
    """
    options = options or {}
    shown = shown_as if shown_as is not None else str(sub)
    if issubclass(klass, SchedulerMixin):
        where = f"{shown}/{SCHEDULER_CONFIG_NAME}"
        config = read_json_file(sub / SCHEDULER_CONFIG_NAME, where)
        check_scheduler_config(klass, config, where)
        return klass.from_pretrained(sub.parent, subfolder=sub.name)
    where = f"{shown}/config.json"
    config = read_json_file(sub / "config.json", where)
    check_model_config(klass, config, where)
    variant = _weights_variant(sub, options.get("variant"))
    check_weights(weight_files(sub, variant, shown), expected_tensors(klass, config, where), klass.__name__, shown)
    extra = {k: v for k, v in options.items() if v is not None and k != "variant"}
    if dtype is not None:
        extra["torch_dtype"] = dtype
    if variant is not None:
        extra["variant"] = variant
    return klass.from_pretrained(sub, use_safetensors=True, **extra)


def _load_component(folder: Path, name: str, spec: list[str], dtype, options: dict) -> object:
    klass = component_class(spec, name, f"pipeline '{folder}'")
    return load_checked_component(folder / name, klass, dtype, options, shown_as=name)


def safe_from_pretrained(cls: type[DiffusionPipeline], name_or_path: str | os.PathLike, components: tuple[str, ...],
                         optional: tuple[str, ...] = (), **kwargs) -> DiffusionPipeline:
    """Load ``cls`` from a folder or Hub id after validating it; ``OSError`` / ``ValueError`` with one clear line.

    ``optional`` components may be saved as absent (``[null, null]``); every present one is validated. Components
    given as keyword arguments are used instead of the saved ones; the module docstring lists the other arguments.
    """
    for bad in ("custom_pipeline", "custom_revision"):
        if kwargs.pop(bad, None):
            raise ValueError(f"{bad} is not supported: qiren-gen pipelines never run code from a folder")
    kwargs.pop("trust_remote_code", None)  # the class is the installed one; code in the folder is refused, never run
    if kwargs.pop("use_safetensors", None) is False:
        raise ValueError("use_safetensors=False is refused: qiren-gen pipelines load weights only as safetensors "
                         "(a pickled .bin file can run code when it is loaded)")
    dtypes = resolve_component_dtypes(kwargs.pop("dtype", None), kwargs.pop("torch_dtype", None), components,
                                      cls.__name__)
    low_cpu_mem_usage = kwargs.pop("low_cpu_mem_usage", None)
    device_map = kwargs.pop("device_map", None)
    if low_cpu_mem_usage is False and device_map is not None:
        raise ValueError(f"low_cpu_mem_usage=False cannot be combined with device_map={device_map!r}")
    device = _device_for(device_map)
    options = {"variant": kwargs.pop("variant", None), "low_cpu_mem_usage": low_cpu_mem_usage}
    given = {name: kwargs.pop(name) for name in components if name in kwargs}
    hub = {k: kwargs.pop(k) for k in _HUB_ONLY if k in kwargs}
    if kwargs:
        raise ValueError(f"unsupported argument(s) for {cls.__name__}.from_pretrained: {', '.join(sorted(kwargs))}")
    folder = resolve_pipeline_folder(name_or_path, **hub)
    index = validate_pipeline_folder(folder, cls.__name__, components, optional)
    parts = {}
    for name in components:
        spec = index.get(name)
        if name in given:
            parts[name] = given[name]
        elif spec in (None, [None, None]):
            parts[name] = None
        else:
            try:
                parts[name] = _load_component(folder, name, spec, dtypes[name], options)
                _LOGGER.info(f"Loaded {name} as {spec[1]} from `{name}` subfolder of {name_or_path}.")
            except _LOAD_ERRORS as exc:
                raise ValueError(f"cannot load the pipeline in '{folder}' (component '{name}'): {_first_line(exc)}"
                                 ) from None
    try:
        pipe = cls(**parts)
    except _LOAD_ERRORS as exc:  # components that do not fit together (latent sizes, NaN weights, ...)
        raise ValueError(f"cannot load the pipeline in '{folder}': {_first_line(exc)}") from None
    if device not in (None, "cpu"):  # components load on the CPU already
        pipe.to(device)
    if device_map is not None:
        pipe.hf_device_map = device or "cpu"  # one device: .to() and offloading stay allowed, as in diffusers
    pipe.register_to_config(_name_or_path=str(folder))
    return pipe


def load_stage1(folder: str | Path):
    """``(decoder, modulator)`` from ``folder/decoder`` and ``folder/modulator`` (safetensors only)."""
    folder = Path(folder)
    for sub in ("decoder", "modulator"):
        if not (folder / sub / "config.json").is_file():
            raise OSError(f"no stage-1 {sub} in '{folder}' (expected {folder / sub / 'config.json'})")
        if not any((folder / sub).glob("*.safetensors")):
            raise OSError(f"no safetensors weights in '{folder / sub}' (weights are loaded only as safetensors)")
    config_file = folder / "decoder" / "config.json"
    try:
        name = read_json_file(config_file).get("_class_name")
    except ValueError as exc:
        raise ValueError(f"not a valid model config: {exc}") from None
    known = tuple(cls.__name__ for cls in models.DECODER_CLASSES)
    if name not in known:
        raise ValueError(f"'{folder / 'decoder'}' holds a {str(name)[:80]}, not one of {known}")
    decoder = load_checked_component(folder / "decoder", getattr(models, name))
    modulator = load_checked_component(folder / "modulator", models.LatentModulator)
    return decoder.eval(), modulator.eval()


__all__ = ["load_checked_component", "load_stage1", "resolve_component_dtypes", "safe_from_pretrained"]
