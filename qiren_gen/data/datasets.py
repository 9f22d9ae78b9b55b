"""Image datasets through ``datasets.load_dataset``: a Hub id or a local ``imagefolder``, as model-ready tensors.

Images are converted to one mode (``L`` or ``RGB``), resized (shorter side) and centre-cropped to ``resolution``,
and scaled to ``[-1, 1]``. Undecodable images are skipped in the collate function with a warning and a count, so
one corrupt file never stops training.
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

_MODES = {1: "L", 3: "RGB"}


def check_resolution(resolution: int) -> None:
    """Resolutions below 2 cannot hold an image worth encoding."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")


def load_image_dataset(
    dataset_name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    image_column: str = "image",
    streaming: bool = False,
    cache_dir: str | None = None,
    max_samples: int | None = None,
):
    """Load a Hub dataset (``dataset_name``) or a local image folder (``data_dir``) with images left undecoded.

    Raises ``ValueError`` for a missing image column, an empty dataset or a missing split, and ``OSError`` when the
    data cannot be found or downloaded (e.g. offline).
    """
    import datasets

    if (dataset_name is None) == (data_dir is None):
        raise ValueError("give exactly one of dataset_name (a Hub id) or data_dir (a local image folder)")
    try:
        if data_dir is not None:
            if not Path(data_dir).is_dir():
                raise OSError(f"image folder not found: {data_dir}")
            ds = datasets.load_dataset("imagefolder", data_dir=str(data_dir), split=split, streaming=streaming,
                                       cache_dir=cache_dir)
        else:
            ds = datasets.load_dataset(dataset_name, split=split, streaming=streaming, cache_dir=cache_dir)
    except (ValueError, OSError):
        raise
    except Exception as err:  # datasets raises its own types (DatasetNotFoundError, EmptyDatasetError, ...)
        source = data_dir if data_dir is not None else dataset_name
        raise OSError(f"could not load dataset {source!r} (split {split!r}): {type(err).__name__}: {err}") from err
    columns = ds.column_names if ds.column_names is not None else list(ds.features or {})
    if not columns and streaming:  # some streamed datasets only reveal their columns in the first example
        columns = list(next(iter(ds), {}).keys())
        if not columns:
            raise ValueError(f"the dataset (split {split!r}) is empty")
    if image_column not in columns:
        raise ValueError(f"image column {image_column!r} not found; the dataset has columns {columns}")
    ds = ds.select_columns([image_column])
    if ds.features is not None:  # decode lazily in the collator, where a corrupt file can be skipped
        ds = ds.cast_column(image_column, datasets.Image(decode=False))
    if not streaming:
        if len(ds) == 0:
            raise ValueError(f"the dataset (split {split!r}) is empty")
        if max_samples is not None:
            ds = ds.select(range(min(max_samples, len(ds))))
    elif max_samples is not None:
        ds = ds.take(max_samples)
    return ds


def decode_image(value, resolution: int, channels: int) -> torch.Tensor:
    """One undecoded ``datasets.Image`` value (or a PIL image) -> ``(channels, resolution, resolution)`` in [-1, 1].

    Any mode converts (palette, alpha, 16-bit, CMYK ...); the shorter side is resized to ``resolution`` (bicubic,
    antialiased) and the centre cropped. Raises ``OSError`` if the bytes are not a readable image.
    """
    from PIL import Image

    if isinstance(value, Image.Image):
        img = value
    elif isinstance(value, dict) and value.get("bytes") is not None:
        img = Image.open(io.BytesIO(value["bytes"]))
    elif isinstance(value, dict) and value.get("path"):
        img = Image.open(value["path"])
    else:
        raise OSError(f"not an image value: {type(value).__name__}")
    img.load()
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8))
    img = img.convert(_MODES[channels])
    w, h = img.size
    scale = resolution / min(w, h)
    new_w, new_h = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    img = img.resize((new_w, new_h), Image.BICUBIC, reducing_gap=None)
    left, top = (new_w - resolution) // 2, (new_h - resolution) // 2
    img = img.crop((left, top, left + resolution, top + resolution))
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


@dataclass
class ImageCollator:
    """Collate undecoded examples into ``(B, C, R, R)`` tensors, skipping (and counting) unreadable images."""

    image_column: str
    resolution: int
    channels: int = 1
    skipped: int = field(default=0)

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        if self.channels not in _MODES:
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")

    def __call__(self, examples: list[dict]) -> torch.Tensor:
        images = []
        for example in examples:
            try:
                images.append(decode_image(example[self.image_column], self.resolution, self.channels))
            except (OSError, ValueError, SyntaxError) as err:
                self.skipped += 1
                value = example[self.image_column]
                where = value.get("path") if isinstance(value, dict) else None
                logger.warning("skipping unreadable image %s (%s); %d skipped so far", where, err, self.skipped)
        if not images:
            return torch.empty(0, self.channels, self.resolution, self.resolution)
        return torch.stack(images)


__all__ = ["ImageCollator", "check_resolution", "decode_image", "load_image_dataset"]
