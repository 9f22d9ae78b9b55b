"""The one checked reader for dataset image rows: a row's bytes, or a file inside the dataset's own folder or Hub
cache entry; never a path elsewhere, never a URL (so no connection is made). Shared by the training data
(`qiren_gen.data.datasets`) and the FID reference sets (`qiren_gen.metrics.reference`)."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import fsspec
from huggingface_hub import constants
from PIL import Image

from .errors import quoted

_ARCHIVE_PROTOCOLS = ("zip", "tar")
REFUSED_KEY = "refused"
"""Key `RowConfinement` adds to a row it refuses (with the reason); its bytes are empty, its path kept out."""


@dataclass(frozen=True)
class RowConfinement:
    """Keeps a dataset's image rows inside the dataset: bytes, or a path under one of ``roots`` (real paths, links
    resolved), or ``hf://datasets/<hub_repo>/...``; archive members (``zip://m::<such a path>``) too. Any other row is
    replaced by an empty one carrying `REFUSED_KEY` (the reason), which `decode_image` refuses without
    opening anything: the row is skipped and counted. Used lazily (``with_transform`` / a one-to-one ``map``)."""

    roots: tuple[str, ...]
    hub_repo: str | None = None

    @classmethod
    def for_source(cls, data_dir: str | os.PathLike | None, dataset_name: str | None, snapshot: str | None = None,
                   cache_dir: str | None = None) -> RowConfinement:
        """The roots of a loaded dataset: its folder, or its Hub cache entry (and ``datasets``' download cache)."""
        if data_dir is not None:
            return cls((os.path.realpath(data_dir),))
        if Path(dataset_name).is_dir():
            return cls((os.path.realpath(dataset_name),))
        entry = Path(constants.HF_HUB_CACHE) / f"datasets--{dataset_name.replace('/', '--')}"
        roots = [os.path.realpath(Path(snapshot).parent.parent)] if snapshot is not None else []  # snapshots + blobs
        roots.append(os.path.realpath(entry))
        roots.append(os.path.realpath(cache_dir or datasets.config.HF_DATASETS_CACHE))  # extracted archives
        return cls(tuple(roots), hub_repo=dataset_name)

    def refusal(self, path: str) -> str | None:
        """Why ``path`` is not a file of the dataset, or None when it is."""
        *inner, outer = path.split("::")
        for part in inner:
            if "://" not in part or part.split("://", 1)[0] not in _ARCHIVE_PROTOCOLS:
                return "a URL, not a file of the dataset"
        if "://" in outer:
            protocol, rest = outer.split("://", 1)
            if protocol == "hf" and self.hub_repo and rest.startswith((f"datasets/{self.hub_repo}@",
                                                                       f"datasets/{self.hub_repo}/")):
                return None if ".." not in rest.split("/") else "a path that leaves the dataset's repository"
            if protocol != "file":
                return f"a {protocol}:// URL, not a file of the dataset"
            outer = rest
        if not os.path.isabs(outer):
            outer = os.path.join(self.roots[0], outer)
        real = os.path.realpath(outer)
        if any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots):
            return None
        return "outside the dataset's folder"

    def check(self, value):
        """``value``, or the refused empty row that stands for it."""
        if not isinstance(value, dict) or value.get("bytes") is not None or not value.get("path"):
            return value
        path = value["path"]
        reason = self.refusal(path) if isinstance(path, str) else "not a path"
        if reason is None:
            return value
        return {"bytes": b"", "path": None, REFUSED_KEY: f"the row names {quoted(path)}, {reason}: not opened"}

    def __call__(self, example: dict) -> dict:
        """One example of a stream (``IterableDataset.map``)."""
        return {key: self.check(value) for key, value in example.items()}

    def batch(self, batch: dict) -> dict:
        """A batch of a map-style dataset (``Dataset.with_transform``)."""
        return {key: [self.check(value) for value in values] for key, values in batch.items()}


def open_image_path(path: str):
    """A PIL image from a local path or an archive member / Hub URL of the dataset (``zip://member::archive.zip``,
    ``hf://datasets/...``); only called on paths `RowConfinement` let through."""
    if "://" not in path and "::" not in path:
        return Image.open(path)
    with fsspec.open(path, "rb") as handle:
        return Image.open(io.BytesIO(handle.read()))


def open_image_value(value):
    """A PIL image (header read) from an undecoded image value; refused rows raise ``ValueError`` unopened."""
    if isinstance(value, dict) and value.get(REFUSED_KEY):
        raise ValueError(value[REFUSED_KEY])
    if isinstance(value, dict) and value.get("bytes") is not None:
        return Image.open(io.BytesIO(value["bytes"]))
    if isinstance(value, dict) and value.get("path"):
        return open_image_path(value["path"])
    raise ValueError(f"not an image value: {type(value).__name__}")



__all__ = ["REFUSED_KEY", "RowConfinement", "open_image_path", "open_image_value"]
