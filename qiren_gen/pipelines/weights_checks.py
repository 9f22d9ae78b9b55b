"""A component's safetensors weights checked against the model its config builds, before anything is loaded.

The model is first built on PyTorch's meta device (shapes and dtypes, no memory), so its size is known before any
allocation; then the safetensors headers are compared with it (missing and unexpected keys, shapes, dtypes: a bool,
int or uint8 tensor where the model holds floats is refused, not cast) and every floating tensor is read once to
check it is finite. Each refusal is one line naming the key.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

from ..models.config_checks import MAX_COMPONENT_ELEMENTS
from ..runtime.json_files import read_json_file

WEIGHTS_NAME = "diffusion_pytorch_model"
_FLOATING = {"F16", "BF16", "F32", "F64"}
_SAFETENSORS_DTYPES = {torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL", torch.uint8: "U8"}


def expected_tensors(klass: type, config: dict, where: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``{key: (shape, dtype)}`` of the state dict ``klass.from_config(config)`` has, built on the meta device;
    ``ValueError`` when it would hold more than ``MAX_COMPONENT_ELEMENTS`` numbers or the config does not build."""
    try:
        with torch.device("meta"):
            model = klass.from_config(config)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{where}: the config does not describe a valid {klass.__name__} ({first[:200]})") from None
    elements = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    if elements > MAX_COMPONENT_ELEMENTS:
        raise ValueError(f"{where}: this {klass.__name__} would hold {elements:,} numbers, over the limit of "
                         f"{MAX_COMPONENT_ELEMENTS:,} (512 MiB of float32) for one component")
    return {key: (tuple(t.shape), t.dtype) for key, t in model.state_dict().items()}


def weight_files(sub: Path, variant: str | None, where: str) -> list[Path]:
    """The safetensors files diffusers will read from ``sub``: a shard index's shards (diffusers prefers an index),
    else the single file; shard names must be plain file names inside ``sub``."""
    suffix = f".{variant}" if variant else ""
    index = sub / f"{WEIGHTS_NAME}.safetensors.index{suffix}.json"
    if index.is_file():
        weight_map = read_json_file(index, f"'{index}'").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{where}: '{index.name}' has no weight_map of tensor names to shard files")
        shards = sorted({v for v in weight_map.values() if isinstance(v, str)})
        if len(shards) != len(set(weight_map.values())) or any(
                Path(s).name != s or not s.endswith(".safetensors") or not (sub / s).is_file() for s in shards):
            raise ValueError(f"{where}: '{index.name}' names shards that are not safetensors files beside it")
        return [sub / s for s in shards]
    single = sub / f"{WEIGHTS_NAME}{suffix}.safetensors"
    if single.is_file():
        return [single]
    raise ValueError(f"{where}: no {single.name} (weights are loaded only as safetensors)")


def _read_headers(files: list[Path], where: str) -> dict[str, tuple[tuple[int, ...], str, Path]]:
    found: dict[str, tuple[tuple[int, ...], str, Path]] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    piece = handle.get_slice(key)
                    found[key] = (tuple(piece.get_shape()), piece.get_dtype(), path)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for every kind of damage
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{where}: '{path.name}' is damaged or not a safetensors file ({first[:160]})") from None
    return found


def check_weights(files: list[Path], expected: dict[str, tuple[tuple[int, ...], torch.dtype]], class_name: str,
                  where: str) -> None:
    """``ValueError`` (one line naming the key) unless ``files`` hold exactly the tensors of ``expected``: same keys,
    shapes, dtype kinds (floating where the model is floating), and finite values."""
    found = _read_headers(files, where)
    missing = [k for k in expected if k not in found]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ValueError(f"{where}: the weights lack '{missing[0]}'{more}, which a {class_name} with this config has")
    extra = [k for k in found if k not in expected]
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise ValueError(f"{where}: the weights hold '{extra[0][:120]}'{more}, which a {class_name} with this config "
                         "does not have")
    for key, (shape, dtype) in expected.items():
        got_shape, got_dtype, _ = found[key]
        want = "floating" if dtype.is_floating_point else _SAFETENSORS_DTYPES.get(dtype, str(dtype))
        if (got_dtype not in _FLOATING) if dtype.is_floating_point else got_dtype != want:
            raise ValueError(f"{where}: weight '{key}' is stored as {got_dtype}; a {class_name} needs a {want} tensor "
                             "there")
        if got_shape != shape:
            raise ValueError(f"{where}: weight '{key}' has shape {got_shape}; this {class_name} config needs {shape}")
    _check_finite(found, where)


def _check_finite(found: dict[str, tuple[tuple[int, ...], str, Path]], where: str) -> None:
    by_file: dict[Path, list[str]] = {}
    for key, (_, dtype, path) in found.items():
        if dtype in _FLOATING:
            by_file.setdefault(path, []).append(key)
    for path, keys in by_file.items():
        with safe_open(str(path), framework="pt") as handle:
            for key in keys:
                if not bool(torch.isfinite(handle.get_tensor(key)).all()):
                    raise ValueError(f"{where}: weight '{key}' holds NaN or infinite values (NaN or infinite weights: "
                                     "a damaged or diverged model)")


__all__ = ["WEIGHTS_NAME", "check_weights", "expected_tensors", "weight_files"]
