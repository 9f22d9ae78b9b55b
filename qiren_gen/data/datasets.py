"""Image datasets through ``datasets.load_dataset``: a Hub id or a local ``imagefolder``, as model-ready tensors.

Images are converted to one mode (``L`` or ``RGB``), resized (shorter side) and centre-cropped to ``resolution``,
and scaled to ``[-1, 1]``. Undecodable images are skipped in the collate function with a warning and a count, so
one corrupt file never stops training. The loaded dataset keeps one column, renamed `IMAGE_COLUMN`, with its
images undecoded: a map-style dataset stays memory-mapped Arrow, a streamed one stays a stream.

A Hub id that cannot be reached (offline, ``HF_HUB_OFFLINE=1``, or no network) is loaded from its snapshot in the local
Hub cache (as ``huggingface-cli download`` leaves it), whatever its layout: parquet shards, a zip imagefolder or
webdataset tars.

Rows are confined to their dataset (`RowConfinement`): an image row's bytes are read, and a path only when it
lies inside the dataset's own folder or Hub cache entry (``zip://member::archive.zip`` of such an archive, or
``hf://datasets/<the same repo>/...``). An absolute path elsewhere, a path that leaves the folder through ``..`` or a
link, and every other URL (``ftp://``, ``http://``, ``s3://`` ...) are never opened: the row is skipped and counted
like an undecodable one. Every decoding error of one row skips that row.
"""
from __future__ import annotations

import itertools
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import torch
from huggingface_hub import constants, snapshot_download
from PIL import Image

from ..io.dataset_rows import REFUSED_KEY, RowConfinement, open_image_path, open_image_value
from ..io.errors import quoted, shown
from ..io.images import MAX_SOURCE_PIXELS
from ..runtime.errors import one_line

logger = logging.getLogger(__name__)

_MODES = {1: "L", 3: "RGB"}
IMAGE_COLUMN = "image"
"""The name of the image column of every dataset `load_image_dataset` returns (the source's column renamed)."""


def check_resolution(resolution: int) -> None:
    """Resolutions below 2 cannot hold an image worth encoding."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")


def load_image_dataset(
    dataset_name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    image_column: str | None = None,
    streaming: bool = False,
    cache_dir: str | None = None,
    max_samples: int | None = None,
):
    """Load a Hub dataset (``dataset_name``) or a local image folder (``data_dir``) with images left undecoded.

    ``image_column=None`` takes ``image``, else the one image-typed column (logged). The result has the one column
    `IMAGE_COLUMN`. Raises ``ValueError`` for no (or several candidate) image columns, an empty dataset, an
    unknown split or a corrupt parquet shard, and ``OSError`` when the data cannot be found or downloaded.
    """
    if (dataset_name is None) == (data_dir is None):
        raise ValueError("give exactly one of dataset_name (a Hub id) or data_dir (a local image folder)")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise OSError(f"image folder not found: {shown(data_dir)}")
    if data_dir is not None:
        check_file_names(Path(data_dir))
    source = str(data_dir) if data_dir is not None else dataset_name
    local = data_dir is not None or Path(dataset_name).is_dir()
    snapshot = None if local else hub_snapshot(dataset_name) if hub_offline() else None
    if snapshot is not None:
        logger.warning("offline: loading %r from its snapshot in the local Hub cache, %s", source, snapshot)
    ds, error = _load(source if snapshot is None else snapshot, data_dir is not None, split, streaming, cache_dir,
                      source)
    if ds is None:  # the Hub failed: the local Hub cache's snapshot, if there is one
        snapshot = None if local else hub_snapshot(dataset_name)
        if snapshot is None:
            raise error
        logger.warning("could not reach the Hub for %r: loading its snapshot in the local Hub cache, %s", source,
                       snapshot)
        ds, error = _load(snapshot, False, split, streaming, cache_dir, source)
        if ds is None:
            raise error
    features = ds.features
    columns = ds.column_names if ds.column_names is not None else list(features or {})
    if not columns and streaming:  # some streamed datasets only reveal their columns in the first example
        columns = list(next(iter(ds), {}).keys())
        if not columns:
            raise ValueError(f"the dataset (split {split!r}) is empty")
    column = pick_image_column(columns, features, image_column)
    ds = ds.select_columns([column])
    if ds.features is not None:  # decode lazily in the collator, where a corrupt file can be skipped
        ds = ds.cast_column(column, datasets.Image(decode=False))
    if column != IMAGE_COLUMN:
        ds = ds.rename_column(column, IMAGE_COLUMN)
    confinement = RowConfinement.for_source(data_dir, dataset_name, snapshot, cache_dir)
    if not streaming:
        if len(ds) == 0:
            raise ValueError(f"the dataset (split {split!r}) is empty")
        if max_samples is not None:
            ds = ds.select(range(min(max_samples, len(ds))))  # contiguous: a slice of the memory-mapped table
        ds = ds.with_transform(confinement.batch)  # lazy: applied to the rows read, nothing rewritten
    else:
        ds = ds.map(confinement, features=ds.features)  # one-to-one: the stream's shard layout is kept
        if max_samples is not None:
            ds = ds.take(max_samples)
        if next(iter(ds), None) is None:  # reads one example
            raise ValueError(f"the dataset (split {split!r}) is empty")
    return ds


def declared_num_examples(dataset, split: str = "train") -> int | None:
    """The number of examples the dataset's card declares for ``split`` (``dataset_info.splits``), or None when it
    declares none: what a stream holds without reading it."""
    splits = getattr(getattr(dataset, "info", None), "splits", None) or {}
    info = splits.get(split) if hasattr(splits, "get") else None
    count = getattr(info, "num_examples", None)
    return int(count) if count else None


def _load(path: str, folder: bool, split: str, streaming: bool, cache_dir: str | None, source: str):
    """``(dataset, None)`` from ``datasets.load_dataset`` of a folder / Hub id / snapshot path, or ``(None, error)``
    when a Hub id fails (the caller may still find it in the Hub cache); local data errors raise at once."""
    if Path(path).is_dir():
        check_parquet_shards(Path(path))
    try:
        if folder:
            return datasets.load_dataset("imagefolder", data_dir=path, split=split, streaming=streaming,
                                         cache_dir=cache_dir), None
        return datasets.load_dataset(path, split=split, streaming=streaming, cache_dir=cache_dir), None
    except ValueError as err:
        if "corresponds to no data" in str(err):  # datasets' words for a split of zero rows
            raise ValueError(f"the dataset {source!r} (split {split!r}) is empty") from None
        if "split" in str(err).lower() or folder or Path(path).is_dir():
            raise ValueError(f"dataset {source!r}: {err}") from None
        return None, err
    except OSError as err:
        if folder or Path(path).is_dir():
            raise
        return None, err
    except Exception as err:  # datasets raises its own types (DatasetNotFoundError, EmptyDatasetError, ...)
        if Path(path).is_dir() and type(err).__name__ == "DatasetGenerationError":
            raise ValueError(damaged_data_reason(Path(path), err)) from None
        wrapped = OSError(f"could not load dataset {source!r} (split {split!r}): {type(err).__name__}: {err}")
        if folder or Path(path).is_dir():
            raise wrapped from err
        return None, wrapped


def damaged_data_reason(folder: Path, err: BaseException) -> str:
    """One line naming the file and the cause behind ``datasets``' ``DatasetGenerationError`` (which names
    neither): the first parquet row group that cannot be read, else the innermost cause of the error."""
    for shard in sorted(folder.rglob("*.parquet")):
        try:
            handle = pq.ParquetFile(shard)
            for group in range(handle.num_row_groups):
                try:
                    handle.read_row_group(group)
                except Exception as exc:  # noqa: BLE001 - pyarrow's ArrowInvalid / OSError for damaged pages
                    return (f"corrupt parquet shard {quoted(shard)}: row group {group} cannot be read "
                            f"({type(exc).__name__}: {one_line(exc, 200)})")
        except Exception as exc:  # noqa: BLE001
            return f"corrupt parquet shard {quoted(shard)}: {type(exc).__name__}: {one_line(exc, 200)}"
    cause = err
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    return f"cannot read the data in {quoted(folder)}: {type(cause).__name__}: {one_line(cause, 300)}"


def check_file_names(folder: Path) -> None:
    """``ValueError`` naming the first file under ``folder`` whose name is not UTF-8 (``datasets`` cannot store it,
    and fails without naming it); the name is shown with its undecodable bytes escaped."""
    for directory, subfolders, files in os.walk(folder):
        for name in (*subfolders, *files):
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"the file name {quoted(os.path.join(directory, name))} is not UTF-8 text: rename "
                                 "it (the dataset cannot hold it)") from None


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``HF_DATASETS_OFFLINE``) is set: the Hub is not tried at all."""
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_DATASETS_OFFLINE", "0").upper() in ("1", "ON", "YES",
                                                                                                      "TRUE")


def hub_snapshot(repo_id: str) -> str | None:
    """The newest snapshot folder of dataset ``repo_id`` in the local Hub cache (``HF_HUB_CACHE``), or None."""
    try:
        return snapshot_download(repo_id=repo_id, repo_type="dataset", local_files_only=True)
    except Exception:  # noqa: BLE001 - LocalEntryNotFoundError, an invalid repo id, ...: no usable snapshot
        return None


def check_parquet_shards(folder: Path) -> None:
    """Raise ``ValueError`` naming the first parquet shard under ``folder`` whose footer cannot be read (cheap: the
    metadata only, not the rows)."""
    for shard in sorted(folder.rglob("*.parquet")):
        try:
            pq.ParquetFile(shard).close()
        except Exception as err:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError for a damaged file
            raise ValueError(f"corrupt parquet shard {shard}: {err}") from None


def pick_image_column(columns: list[str], features, requested: str | None) -> str:
    """``requested``, else ``image``, else the one ``datasets.Image`` column (logged); one-line errors otherwise."""
    if requested is not None:
        if requested not in columns:
            raise ValueError(f"image column {requested!r} not found; the dataset has columns {columns}")
        return requested
    if IMAGE_COLUMN in columns:
        return IMAGE_COLUMN
    typed = [c for c in columns if features is not None and isinstance(features.get(c), datasets.Image)]
    if len(typed) == 1:
        logger.warning("no 'image' column: using %r, the one image-typed column (--image_column names another)",
                       typed[0])
        return typed[0]
    if typed:
        raise ValueError(f"several image columns {typed}: choose one with --image_column")
    raise ValueError(f"image column 'image' not found and no image-typed column; the dataset has columns {columns}")


def image_channels(value) -> int:
    """1 or 3: the channels of one undecoded image value (or PIL image), from its mode; ``ValueError`` (one line)
    for a refused or unreadable row."""
    if isinstance(value, Image.Image):
        return 1 if value.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3
    try:
        with open_image_value(value) as img:
            return 1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of one row is that row's
        raise ValueError(f"unreadable image ({type(exc).__name__}: {one_line(exc, 200)})") from None


def decode_image(value, resolution: int, channels: int) -> torch.Tensor:
    """One undecoded ``datasets.Image`` value (or a PIL image) -> ``(channels, resolution, resolution)`` in [-1, 1].

    Any mode converts (palette, alpha, 16-bit, CMYK ...); the shorter side is resized to ``resolution`` (bicubic,
    antialiased) and the centre cropped. Raises ``ValueError`` (one line) for a row `RowConfinement` refused,
    and for every failure to decode the row (damaged, truncated: ``EOFError``, ...), so a caller skips that row.
    """
    try:
        return _decode(value, resolution, channels)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - EOFError, struct.error, ...: every failure of one row skips that row
        raise ValueError(f"unreadable image ({type(exc).__name__}: {one_line(exc, 200)})") from None


def _decode(value, resolution: int, channels: int) -> torch.Tensor:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = value if isinstance(value, Image.Image) else open_image_value(value)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValueError("the image declares too many pixels to decode (a decompression bomb?)") from None
    if img.size[0] * img.size[1] > MAX_SOURCE_PIXELS:  # known from the header, before the pixels are decoded
        raise ValueError(f"the image is {img.size[0]}x{img.size[1]} pixels, over the cap of {MAX_SOURCE_PIXELS:,}")
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
    warned: set = field(default_factory=set)

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
                where = quoted(value["path"]) if isinstance(value, dict) and value.get("path") else "row"
                if where == "row" or where not in self.warned:  # each file once, not again every epoch
                    self.warned.add(where)
                    logger.warning("skipping unreadable image %s (%s); %d unreadable file(s) met so far", where,
                                   shown(str(err)), len(self.warned))
        if not images:
            return torch.empty(0, self.channels, self.resolution, self.resolution)
        return torch.stack(images)


HEAD_SCAN_LIMIT = 1000
"""Rows `check_readable_images` reads at most before it refuses a dataset as holding no readable image."""


def check_readable_images(dataset, resolution: int, channels: int = 1, limit: int = HEAD_SCAN_LIMIT) -> int:
    """The position of the first readable image among the first ``limit`` rows of ``dataset`` (map-style or a
    stream); ``ValueError`` (one line, with the count of rows refused or unreadable) when there is none: a run with
    no readable image is refused before it trains or saves anything."""
    rows = iter(dataset) if not hasattr(dataset, "__len__") else (dataset[i] for i in range(len(dataset)))
    reasons: dict[str, int] = {}
    seen = 0
    for seen, example in enumerate(itertools.islice(rows, limit), start=1):
        try:
            decode_image(example[IMAGE_COLUMN], resolution, channels)
            return seen - 1
        except ValueError as err:
            kind = "outside the dataset or a URL" if "not opened" in str(err) else "unreadable"
            reasons[kind] = reasons.get(kind, 0) + 1
    detail = ", ".join(f"{n} {kind}" for kind, n in reasons.items()) or "no rows"
    scope = f"the first {seen}" if seen >= limit else f"all {seen}"
    raise ValueError(f"no readable image in the dataset ({scope} row(s) read: {detail})")


__all__ = ["HEAD_SCAN_LIMIT", "REFUSED_KEY", "RowConfinement", "check_file_names", "check_readable_images",
           "damaged_data_reason", "image_channels", "declared_num_examples", "IMAGE_COLUMN", "ImageCollator",
           "check_parquet_shards", "check_resolution", "decode_image",
           "hub_offline", "hub_snapshot", "load_image_dataset", "open_image_path", "pick_image_column"]
