"""Reference image sets for FID / KID: a Hub dataset id, a local image folder or saved dataset, or a statistics file.

Images come out as torch-fidelity expects them: uint8 (3, H, W), grayscale replicated to RGB, resized to the
evaluation resolution with torch-fidelity's own protocol (``samples_resize_and_crop``: Resize(R) then CenterCrop(R)).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import datasets
import torch
import torchvision.transforms as T
from datasets import Image as ImageFeature
from PIL import Image
from torch.utils.data import Dataset

from ..io.dataset_rows import RowConfinement, open_image_value
from ..runtime.errors import one_line
from .fidelity import ReferenceStatistics

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")  # torch-fidelity's samples_find_ext


class ReferenceImages(Dataset):
    """A lazily decoded reference set of PIL images, served as uint8 (3, R, R) tensors for torch-fidelity."""

    def __init__(self, get_image: Callable[[int], Any], length: int, source: str, resolution: int | None = None):
        if length < 1:
            raise ValueError(f"reference set {source} is empty")
        self._get_image, self._length, self.source, self.resolution = get_image, length, source, resolution

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i: int) -> torch.Tensor:
        from torch_fidelity.datasets import TransformPILtoRGBTensor

        image = self._get_image(i).convert("RGB")
        r = self.resolution
        if r is not None and image.size != (r, r):
            image = T.CenterCrop(r)(T.Resize(r)(image))  # torch-fidelity's samples_resize_and_crop
        return TransformPILtoRGBTensor()(image)

    def first_size(self) -> tuple[int, int]:
        """(width, height) of the first image as stored, before any resize."""
        return self._get_image(0).size


def image_folder(path: str, resolution: int | None = None, max_images: int | None = None) -> ReferenceImages:
    """The PNG/JPEG files directly inside ``path`` (sorted, as torch-fidelity globs them)."""
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ValueError(f"reference folder {path} contains no .png/.jpg/.jpeg images")
    files = files[:max_images] if max_images else files

    def get(i: int) -> Any:
        with Image.open(files[i]) as im:
            im.load()
            return im

    return ReferenceImages(get, len(files), path, resolution)


def hf_dataset(
    dataset: Any, source: str, resolution: int | None = None, image_column: str | None = None,
    max_images: int | None = None,
) -> ReferenceImages:
    """Wrap a ``datasets.Dataset``: its image column (the first ``Image`` feature unless ``image_column`` is given).

    Rows are confined to the dataset (`RowConfinement`: ``source``'s folder, or
    its Hub cache entry): a row naming a file elsewhere or a URL is refused in one line, never opened."""
    columns = list(dataset.column_names)
    if image_column is None:
        image_columns = [c for c, f in dataset.features.items() if isinstance(f, ImageFeature)]
        if not image_columns:
            raise ValueError(f"dataset {source} has no image column (columns: {', '.join(columns) or 'none'})")
        image_column = image_columns[0]
    elif image_column not in columns:
        raise ValueError(f"dataset {source} has no column {image_column!r} (columns: {', '.join(columns)})")
    elif not isinstance(dataset.features[image_column], ImageFeature):
        raise ValueError(f"column {image_column!r} of dataset {source} is not an image column")
    n = len(dataset) if not max_images else min(len(dataset), max_images)
    confinement = RowConfinement.for_source(source if os.path.isdir(source) else None,
                                            None if os.path.isdir(source) else source)
    column = dataset.select_columns([image_column]).cast_column(image_column, ImageFeature(decode=False))
    column = column.with_transform(confinement.batch)  # lazy: only the rows read are checked

    def get(i: int) -> Any:
        with open_image_value(column[int(i)][image_column]) as image:
            image.load()
            return image

    return ReferenceImages(get, n, f"{source}[{image_column}]", resolution)


def load_reference(
    spec: str,
    resolution: int | None = None,
    *,
    split: str = "train",
    image_column: str | None = None,
    max_images: int | None = None,
) -> Any:
    """Open ``--reference``: a statistics ``.pt`` file, an image folder, a saved or local dataset, or a Hub dataset id.

    Returns a `ReferenceImages` or a [`qiren_gen.metrics.ReferenceStatistics`][qiren_gen.metrics.ReferenceStatistics].
    """
    if max_images is not None and max_images < 2:
        raise ValueError(f"--max-reference must be >= 2, got {max_images}")
    if os.path.isfile(spec):
        stats = ReferenceStatistics.load(spec)
        if resolution is not None and stats.resolution is not None and stats.resolution != resolution:
            r = stats.resolution
            raise ValueError(f"{spec} holds statistics of {r}x{r} images, not {resolution}x{resolution}")
        return stats
    if os.path.isdir(spec):
        names = os.listdir(spec)
        if any(n.lower().endswith(IMAGE_EXTENSIONS) for n in names):
            return image_folder(spec, resolution, max_images)
        if "dataset_info.json" in names or "state.json" in names or "dataset_dict.json" in names:
            loaded = datasets.load_from_disk(spec)  # written by Dataset.save_to_disk
        elif not names:
            raise ValueError(f"reference folder {spec} is empty")
        else:
            loaded = _load_dataset(spec, split)  # a local folder of parquet / csv / imagefolder files
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"dataset {spec} has no split {split!r} (splits: {', '.join(loaded)})")
            loaded = loaded[split]
        return hf_dataset(loaded, spec, resolution, image_column, max_images)
    if spec.endswith((".pt", ".pth")) or os.sep in spec and not _looks_like_hub_id(spec):
        raise ValueError(f"reference {spec} does not exist")
    return hf_dataset(_load_dataset(spec, split), spec, resolution, image_column, max_images)


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/"))


def _load_dataset(spec: str, split: str) -> Any:
    try:
        return datasets.load_dataset(spec, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises its own hierarchy (DatasetNotFoundError, ...)
        raise OSError(f"cannot load dataset {spec!r} (split {split!r}): {one_line(exc)}") from None
