"""Every value of a component's config typed and bounded before the component is built.

Types come from the class's ``__init__`` annotations (``int``, ``float``, ``bool``, ``str``, ``Literal[...]``,
``list``, ``| None``): a bool is not an int, an int is a float, floats are finite. Bounds come from the tables
below, by parameter name, and are derived from what one machine can hold:

* widths (``hidden_dim``, ``latent_dim``, ...) <= ``MAX_WIDTH`` = 8192: one ``width x width`` Linear is then 64M
  numbers (256 MiB of float32), half of the ``MAX_COMPONENT_ELEMENTS`` budget that ``weights_checks`` enforces
  for the whole component (counted on the meta device before anything is allocated);
* counts that build one module each (``hidden_layers``, ``num_blocks``) or repeat a circuit layer
  (``n_reuploads``, ``n_blocks``) <= 256 / 64: building stays under a second and far above any trained model
  (the deepest has 4 blocks); an unbounded count (``num_blocks`` 1e7) allocated 5 GiB before failing;
* ``n_qubits`` <= ``quantum.simulator.MAX_QUBITS`` (a state is 2**n amplitudes per point);
* the reference grid (``reference_size ** in_features`` points, evaluated every forward pass) <= 65,536 points;
* sizes and loop counts used at sampling time (``sample_size``, ``inner_steps``) <= the render cap and 100,000;
* probabilities in [0, 1) (``dropout``), learning rates and scales finite and positive.

Schedulers (``check_scheduler_config``): ``num_train_timesteps`` <= ``MAX_TRAIN_TIMESTEPS`` (1e9 never finished
loading), ``steps_offset`` below it, ``trained_betas`` exactly ``num_train_timesteps`` finite values in (0, 1),
betas' range, ``prediction_type`` and the other enumerations checked, before diffusers builds the scheduler.

Constructors (``check_whole_numbers``, ``check_positive_numbers``): the lower bounds every model checks on its own
arguments when it is built in code, in one call and one message format ("n_heads must be an int >= 1, got 0").
"""
from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from ..quantum.simulator import MAX_QUBITS

MAX_COMPONENT_ELEMENTS = 2**27
"""Numbers (parameters and buffers) one loaded component may hold: 134M, 512 MiB of float32. A loader briefly holds
the weights file's tensors and the model's, so loading stays near 1 GiB; qiren-gen's largest trained component (the
prior) holds 0.7M."""

MAX_WIDTH = 8192
MAX_LAYERS = 256
MAX_CIRCUIT_REPEATS = 64
MAX_REFERENCE_POINTS = 2**16
MAX_SAMPLE_SIZE = 4096
"""Same as the pipelines' render cap: ``MAX_RENDER_PIXELS`` is 4096 x 4096."""
MAX_INNER_STEPS = 100_000
MAX_TRAIN_TIMESTEPS = 100_000
"""Largest ``num_train_timesteps``: a scheduler holds a few float arrays of this length (under 10 MB) and sampling
may take up to this many steps; 100 x the usual 1,000."""
MAX_STRING = 64
MAX_LIST_ITEMS = 4096
MAX_MAGNITUDE = 1e6
"""Largest absolute value of a float a bound does not name (scales, omegas): far above any meaningful setting and
far below float32's overflow."""


@dataclass(frozen=True)
class Bound:
    """Closed ``[low, high]`` range for a number; ``open_high`` makes the top open (probabilities: [0, 1))."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False

    def describe(self) -> str:
        return f"{'(' if self.open_low else '['}{_fmt(self.low)}, {_fmt(self.high)}{')' if self.open_high else ']'}"

    def holds(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


_POSITIVE_SCALE = Bound(0, 1e4, open_low=True)
MODEL_BOUNDS: dict[str, Bound] = {
    "in_features": Bound(1, 8), "out_features": Bound(1, 1024), "out_channels": Bound(1, 1024),
    "n_qubits": Bound(1, MAX_QUBITS), "n_heads": Bound(1, MAX_WIDTH), "hidden_width": Bound(1, MAX_WIDTH),
    "hidden_layers": Bound(0, MAX_LAYERS), "num_blocks": Bound(0, MAX_LAYERS),
    "n_reuploads": Bound(1, MAX_CIRCUIT_REPEATS), "n_blocks": Bound(1, MAX_CIRCUIT_REPEATS),
    "hidden_features": Bound(1, MAX_WIDTH), "hidden_dim": Bound(1, MAX_WIDTH), "latent_dim": Bound(1, 65536),
    "time_embed_dim": Bound(2, MAX_WIDTH), "modulation_dim": Bound(1, 2**20), "n_fourier": Bound(1, MAX_WIDTH),
    "num_frequencies": Bound(1, MAX_WIDTH), "fourier_features": Bound(0, 64),
    "reference_size": Bound(2, 256), "sample_size": Bound(1, MAX_SAMPLE_SIZE),
    "inner_steps": Bound(0, MAX_INNER_STEPS), "seed": Bound(0, 2**63 - 1),
    "dropout": Bound(0, 1, open_high=True),
    "first_omega_0": _POSITIVE_SCALE, "hidden_omega_0": _POSITIVE_SCALE, "scale": _POSITIVE_SCALE,
    "fourier_scale": _POSITIVE_SCALE, "linear_scale": _POSITIVE_SCALE,
    "encoding_scale": _POSITIVE_SCALE, "hidden_encoding_scale": _POSITIVE_SCALE,
    "frequency_init": Bound(-1e4, 1e4), "inner_lr_init": Bound(-1e4, 1e4),
    "encode_lr": Bound(0, 1e3, open_low=True), "latent_l2": Bound(0, 1e3),
    # QFGN and QVF (models.qfgn, models.qvf)
    "n_frequencies": Bound(1, MAX_WIDTH), "frequency_scale": _POSITIVE_SCALE, "low_frequency_penalty": Bound(0, 1e4),
    "gaussian_features": Bound(1, MAX_WIDTH), "gaussian_sigma": _POSITIVE_SCALE, "feature_seed": Bound(0, 2**63 - 1),
    "energy_hidden": Bound(1, MAX_WIDTH), "energy_omega": _POSITIVE_SCALE, "n_layers": Bound(1, MAX_CIRCUIT_REPEATS),
}
"""Bounds of every number a qiren-gen model's config holds, by parameter name (see the module docstring). ``latent_dim``
is the trainer's own cap (``training.functa_trainer.MAX_LATENT_DIM``): a vector, not a square layer."""

SCHEDULER_BOUNDS: dict[str, Bound] = {
    "num_train_timesteps": Bound(1, MAX_TRAIN_TIMESTEPS), "steps_offset": Bound(0, MAX_TRAIN_TIMESTEPS - 1),
    "solver_order": Bound(1, 3),
    "beta_start": Bound(0, 1, open_low=True, open_high=True), "beta_end": Bound(0, 1, open_low=True, open_high=True),
    "dynamic_thresholding_ratio": Bound(0, 1, open_low=True), "clip_sample_range": _POSITIVE_SCALE,
    "sample_max_value": _POSITIVE_SCALE, "sigma_min": Bound(0, MAX_MAGNITUDE), "sigma_max": Bound(0, MAX_MAGNITUDE),
    "sigma_data": Bound(0, MAX_MAGNITUDE, open_low=True), "rho": Bound(0, 1e3, open_low=True),
    "flow_shift": Bound(0, 1e3, open_low=True), "shift_terminal": Bound(0, 1),
    "lambda_min_clipped": Bound(-math.inf, 1e3),
}
"""Bounds of the numbers a diffusers scheduler config holds; other ints lie in [0, MAX_TRAIN_TIMESTEPS]."""

SCHEDULER_CHOICES: dict[str, tuple[str, ...]] = {
    "prediction_type": ("epsilon", "v_prediction", "sample", "flow_prediction"),
    "beta_schedule": ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", "exp"),
    "timestep_spacing": ("leading", "trailing", "linspace"),
}
"""Enumerations diffusers annotates only as ``str``; a class's ``Literal`` annotation narrows them further."""

_METADATA_STRINGS = {"_class_name": MAX_STRING, "_diffusers_version": MAX_STRING, "_name_or_path": 4096}


class _Kinds(typing.NamedTuple):
    types: frozenset
    choices: tuple | None


def _kinds(hint) -> _Kinds:
    """The JSON value kinds an ``__init__`` annotation allows (``list`` for list / ndarray, ``None`` for Optional)."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return _Kinds(frozenset({str}), tuple(typing.get_args(hint)))
    if origin in (typing.Union, types.UnionType):
        parts = [_kinds(arg) for arg in typing.get_args(hint)]
        choices = [c for p in parts if p.choices for c in p.choices]
        free_str = any(str in p.types and p.choices is None for p in parts)
        return _Kinds(frozenset().union(*(p.types for p in parts)), None if free_str or not choices else tuple(choices))
    if origin is list or hint is list or getattr(hint, "__name__", "") == "ndarray":
        return _Kinds(frozenset({list}), None)
    if hint in (int, float, str, bool, type(None)):
        return _Kinds(frozenset({hint}), None)
    return _Kinds(frozenset({type(None)}), None)  # an object parameter (a scheduler instance): only null in a file


def _hints(klass: type) -> dict:
    try:
        hints = typing.get_type_hints(klass.__init__)
    except Exception:  # noqa: BLE001 - an annotation that cannot be evaluated: fall back to the defaults' types
        hints = {}
    params = inspect.signature(klass.__init__).parameters
    out = {}
    for name, param in params.items():
        if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        hint = hints.get(name)
        if hint is None:
            default = param.default
            hint = type(default) if default is not inspect.Parameter.empty and default is not None else object
        if param.default is None:
            hint = hint | None if hint is not object else type(None)
        out[name] = hint
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_number(where: str, key: str, value, bound: Bound | None) -> None:
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{where}: {key} is NaN; it must be a finite number")
    if bound is None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {key} is {value}; it must be a finite number")
        if abs(value) > MAX_MAGNITUDE and isinstance(value, float):
            raise ValueError(f"{where}: {key}={_short(value)} is over the limit of {MAX_MAGNITUDE:g} in size")
        return
    if not bound.holds(value):
        raise ValueError(f"{where}: {key}={_short(value)} is outside {bound.describe()}")
    if isinstance(value, float) and math.isinf(value) and not (math.isinf(bound.low) and value < 0):
        raise ValueError(f"{where}: {key} is {value}; it must be a finite number")


def _check_list(where: str, key: str, value: list, depth: int = 0, count: list | None = None) -> None:
    """A list of numbers / short strings / lists of them: finite, at most ``MAX_LIST_ITEMS`` items in all."""
    count = count if count is not None else [0]
    for item in value:
        count[0] += 1
        if count[0] > MAX_LIST_ITEMS:
            raise ValueError(f"{where}: {key} holds more than {MAX_LIST_ITEMS} items")
        if isinstance(item, list) and depth < 2:
            _check_list(where, key, item, depth + 1, count)
        elif isinstance(item, bool) or item is None or isinstance(item, (dict, list)):
            raise ValueError(f"{where}: {key} holds {_short(item)}; only numbers, names and lists of them belong there")
        elif isinstance(item, str):
            if len(item) > MAX_STRING:
                raise ValueError(f"{where}: {key} holds a string of {len(item)} characters (at most {MAX_STRING})")
        elif not math.isfinite(item) or abs(item) > (2**63 if isinstance(item, int) else MAX_MAGNITUDE):
            raise ValueError(f"{where}: {key} holds {_short(item)}; its numbers must be finite and at most "
                             f"{MAX_MAGNITUDE:g} in size")


def _check_value(where: str, key: str, value, kinds: _Kinds, bound: Bound | None) -> None:
    """One value against the kinds its annotation allows and its bound."""
    allowed = kinds.types
    if value is None:
        if type(None) not in allowed:
            raise ValueError(f"{where}: {key} is null; it must be {_kinds_text(allowed)}")
        return
    if isinstance(value, bool):
        if bool not in allowed:
            raise ValueError(f"{where}: {key} is {str(value).lower()} (a boolean); it must be {_kinds_text(allowed)}")
        return
    if isinstance(value, int):
        if int not in allowed and float not in allowed:
            raise ValueError(f"{where}: {key}={_short(value)} is a number; it must be {_kinds_text(allowed)}")
        _check_number(where, key, value, bound)
        return
    if isinstance(value, float):
        if float not in allowed:
            raise ValueError(f"{where}: {key}={_short(value)} is not a whole number; it must be "
                             f"{_kinds_text(allowed)}")
        _check_number(where, key, value, bound)
        return
    if isinstance(value, str):
        if str not in allowed:
            raise ValueError(f"{where}: {key} is a string; it must be {_kinds_text(allowed)}")
        if len(value) > MAX_STRING:
            raise ValueError(f"{where}: {key} is a string of {len(value)} characters (at most {MAX_STRING})")
        if kinds.choices is not None and value not in kinds.choices:
            raise ValueError(f"{where}: {key}={_short(value)} is not one of {', '.join(map(str, kinds.choices))}")
        return
    if isinstance(value, list):
        if list not in allowed:
            raise ValueError(f"{where}: {key} is a list; it must be {_kinds_text(allowed)}")
        _check_list(where, key, value)
        return
    raise ValueError(f"{where}: {key} is a JSON object; it must be {_kinds_text(allowed)}")


def _kinds_text(allowed: frozenset) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             type(None): "null"}
    return " or ".join(names[t] for t in (int, float, bool, str, list, type(None)) if t in allowed) or "absent"


def _check_metadata(where: str, key: str, value, class_name: str | None) -> None:
    """Keys diffusers writes with a leading underscore: short strings (and the list of defaulted keys)."""
    if key == "_use_default_values":
        if not isinstance(value, list) or len(value) > 1000 or not all(
                isinstance(v, str) and len(v) <= MAX_STRING for v in value):
            raise ValueError(f"{where}: _use_default_values must be a short list of parameter names")
        return
    limit = _METADATA_STRINGS.get(key, MAX_STRING)
    if isinstance(value, str):
        if len(value) > limit:
            raise ValueError(f"{where}: {key[:MAX_STRING]} is a string of {len(value)} characters (at most {limit})")
    elif not (value is None or isinstance(value, bool) or (isinstance(value, (int, float))
                                                            and math.isfinite(value))):
        raise ValueError(f"{where}: {key[:MAX_STRING]} must be a short string, a finite number or null")
    if key == "_class_name" and class_name is not None and value != class_name:
        raise ValueError(f"{where} describes a {_short(value)}, not a {class_name}")


def check_model_config(klass: type, config: dict, where: str) -> None:
    """``ValueError`` (one line naming the key) unless every value of ``config`` fits ``klass``'s parameters:
    no unknown keys, each value of its annotated type and within ``MODEL_BOUNDS``."""
    hints = _hints(klass)
    for key, value in config.items():
        if key.startswith("_"):
            _check_metadata(where, key, value, klass.__name__)
            continue
        if key not in hints:
            raise ValueError(f"{where}: '{key[:MAX_STRING]}' is not a parameter of {klass.__name__} (made by a newer "
                             "qiren-gen, or a damaged config)")
        kinds = _kinds(hints[key])
        bound = MODEL_BOUNDS.get(key)
        if bound is None and int in kinds.types and float not in kinds.types:
            bound = Bound(0, MAX_WIDTH)
        _check_value(where, key, value, kinds, bound)
    size, dims = config.get("reference_size"), config.get("in_features")
    if isinstance(size, int) and isinstance(dims, int) and size**dims > MAX_REFERENCE_POINTS:
        raise ValueError(f"{where}: reference_size ** in_features = {size}**{dims} points is over the limit of "
                         f"{MAX_REFERENCE_POINTS} (the reference grid is evaluated on every forward pass)")


def check_scheduler_config(klass: type, config: dict, where: str) -> None:
    """``ValueError`` (one line naming the key) unless ``config`` is a sound noise schedule for ``klass``: every
    known value typed and bounded, steps and offsets within the cap, ``trained_betas`` matching the step count."""
    hints = _hints(klass)
    for key, value in config.items():
        if key.startswith("_"):
            _check_metadata(where, key, value, None)
            continue
        if key in hints:
            kinds = _kinds(hints[key])
            if key in SCHEDULER_CHOICES:
                narrowed = tuple(c for c in SCHEDULER_CHOICES[key] if kinds.choices is None or c in kinds.choices)
                kinds = _Kinds(kinds.types, narrowed)
        else:  # a key of a sibling scheduler (diffusers ignores it): a plain scalar only
            kinds = _Kinds(frozenset({bool, int, float, str, type(None)}), SCHEDULER_CHOICES.get(key))
        bound = SCHEDULER_BOUNDS.get(key)
        if bound is None and isinstance(value, int) and not isinstance(value, bool):
            bound = Bound(0, MAX_TRAIN_TIMESTEPS)
        _check_value(where, key, value, kinds, bound)
    steps = config.get("num_train_timesteps", 1000)
    offset = config.get("steps_offset", 0)
    if isinstance(offset, int) and offset >= steps:
        raise ValueError(f"{where}: steps_offset={offset} must be below num_train_timesteps={steps}")
    betas = config.get("trained_betas")
    if isinstance(betas, list):
        bad = next((b for b in betas if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 < b < 1),
                   None)
        if bad is not None:
            raise ValueError(f"{where}: trained_betas holds {_short(bad)}; every beta must be a number in (0, 1)")
        if len(betas) != steps:
            raise ValueError(f"{where}: trained_betas has {len(betas)} values but num_train_timesteps is {steps}; "
                             "they must be equal")
    start, end = config.get("beta_start"), config.get("beta_end")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)) and start > end:
        raise ValueError(f"{where}: beta_start={start} is above beta_end={end}")
    corrector = config.get("disable_corrector")
    if isinstance(corrector, list) and not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= steps
                                               for i in corrector):
        raise ValueError(f"{where}: disable_corrector must list step indices in [0, {steps}]")


def check_whole_numbers(arguments: Mapping[str, object], **minimums: int) -> None:
    """``ValueError`` ("NAME must be an int >= LOW, got VALUE") for the first argument named in ``minimums`` that is
    not a whole number (a bool is not one) of at least its minimum.

    The count checks a model's constructor runs on its own arguments, in one call: ``arguments`` is its
    ``self.config`` (``register_to_config`` records every argument, defaults included, before the body runs).
    """
    for name, low in minimums.items():
        value = arguments[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def check_positive_numbers(arguments: Mapping[str, object], *names: str, zero_allowed: bool = False) -> None:
    """``ValueError`` ("NAME must be finite and > 0, got VALUE"; ``>= 0`` with ``zero_allowed``) for the first
    argument in ``names`` that is not such a number: the scale and rate checks of a model's constructor, as
    `check_whole_numbers` does for counts."""
    for name in names:
        value = arguments[name]
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not (number and (value >= 0 if zero_allowed else value > 0)):
            raise ValueError(f"{name} must be finite and {'>=' if zero_allowed else '>'} 0, got {value!r}")


__all__ = ["Bound", "MAX_COMPONENT_ELEMENTS", "MAX_TRAIN_TIMESTEPS", "MODEL_BOUNDS", "SCHEDULER_BOUNDS",
           "check_model_config", "check_positive_numbers", "check_scheduler_config", "check_whole_numbers"]
