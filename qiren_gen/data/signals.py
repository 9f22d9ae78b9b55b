"""Signals to fit: images (a file or a scikit-image bundled image) and mono WAV audio, as arrays in [-1, 1].

Images follow the paper's preprocessing: grayscale, centre-cropped to a square, resized to ``size x size``, values
mapped from [0, 1] to [-1, 1]. Audio follows the paper's Bach clip: mono samples (optionally sliced, e.g.
``20000:25000:5``) divided by their largest magnitude. Every bad input is a one-line ``ValueError`` / ``OSError``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from ..io.atomic import write_file_with
from ..io.audio import MAX_AUDIO_FRAMES, read_wav
from ..io.images import MAX_SOURCE_PIXELS, read_image

# scikit-image's bundled images that load offline (no pooch download): the names `--image` accepts.
SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
    "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
    "rocket", "text",
)


MAX_IMAGE_SIZE = 4096
"""Largest side an image is resized to for fitting: 16.8M pixels (a larger size would exhaust memory, not fit)."""


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an int >= 2, got {size!r}")
    if size > MAX_IMAGE_SIZE:
        raise ValueError(f"size {size} is over the limit of {MAX_IMAGE_SIZE} pixels per side")


def _skimage_image(name: str) -> Image.Image:
    """A bundled scikit-image image as a PIL image."""
    if name not in SKIMAGE_IMAGES:
        raise ValueError(
            f"{name!r} is neither an existing file nor a bundled scikit-image image; "
            f"names: {', '.join(SKIMAGE_IMAGES)}"
        )
    array = np.asarray(getattr(skimage.data, name)())
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        array = (255 * (array - array.min()) / max(float(np.ptp(array)), 1e-12)).astype(np.uint8)
    return Image.fromarray(array)


def _to_gray(img: Image.Image) -> np.ndarray:
    """Grayscale float array in [0, 1] (ITU-R 601 luma for colour images; high bit depth kept)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or array.max() > 255 else 255.0
        return np.clip(array / hi, 0, 1) if img.mode != "F" else np.clip(array, 0, 1)
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def open_image(source: str | os.PathLike) -> np.ndarray:
    """Grayscale float64 image in [0, 1], centre-cropped to a square, from a file path or a scikit-image name."""
    path = Path(source)
    if path.exists():
        img = read_image(path)
    elif path.suffix or os.sep in str(source) or "/" in str(source):
        raise OSError(f"no such image file: {source}")
    else:
        img = _skimage_image(str(source))
    gray = _to_gray(img)
    if gray.size == 0:
        raise ValueError(f"image {source} is empty")
    h, w = gray.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return gray[top : top + side, left : left + side]


def resize_image(gray: np.ndarray, size: int) -> np.ndarray:
    """Resize a square [0, 1] image to ``(size, size)`` (PIL bilinear, antialiased) and map it to [-1, 1]."""
    _check_size(size)
    resized = Image.fromarray(np.asarray(gray, dtype=np.float32), mode="F").resize((size, size), Image.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float64), 0, 1) * 2 - 1


def load_image(source: str | os.PathLike, size: int = 32) -> np.ndarray:
    """``(size, size)`` float64 grayscale image in [-1, 1] from a file path or a scikit-image image name."""
    _check_size(size)
    return resize_image(open_image(source), size)


def parse_slice(text: str | None) -> slice | None:
    """``"START:STOP[:STEP]"`` -> ``slice`` (empty parts allowed), ``None`` -> ``None``."""
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"slice must look like START:STOP or START:STOP:STEP, got {text!r}")
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise ValueError(f"slice parts must be integers, got {text!r}") from None
    if len(values) == 3 and values[2] is not None and values[2] < 1:
        raise ValueError(f"slice step must be >= 1, got {values[2]}")
    return slice(*values)


@dataclass
class Audio:
    """A mono signal in [-1, 1] and its sample rate (after slicing: ``rate / step``)."""

    samples: np.ndarray
    rate: int


BACH_FILE = "gt_bach.wav"
"""The Bach cello clip of the SIREN and QIREN papers (float WAV, 44.1 kHz); not shipped with the project."""
BACH_FETCH = "curl -L -o gt_bach.wav https://raw.githubusercontent.com/vsitzmann/siren/master/data/gt_bach.wav"
"""One command that fetches it from SIREN's repository (1,232,886 bytes)."""


def load_wav(path: str | os.PathLike, sample_slice: slice | str | None = None) -> Audio:
    """Read a mono WAV (at most `MAX_AUDIO_FRAMES` frames), slice it, and divide by the largest magnitude (the
    paper's normalisation)."""
    path = Path(path)
    if not path.exists():
        hint = f"; the paper's Bach clip is not shipped, fetch it with: {BACH_FETCH}" if path.name == BACH_FILE else ""
        raise OSError(f"no such WAV file: {path}{hint}")
    if path.is_dir():
        raise OSError(f"{path} is a directory, not a WAV file")
    rate, data = read_wav(path)  # header checked and frames capped (MAX_AUDIO_FRAMES) before a sample is read
    data = np.asarray(data)
    if data.ndim == 2:
        if data.shape[1] != 1:
            raise ValueError(f"{path} has {data.shape[1]} channels; only mono WAV files can be fitted")
        data = data[:, 0]
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    data = data.astype(np.float64)
    if isinstance(sample_slice, str):
        sample_slice = parse_slice(sample_slice)
    step = 1
    if sample_slice is not None:
        data = data[sample_slice]
        step = sample_slice.step or 1
    if data.size == 0:
        raise ValueError(f"{path} has no samples" + (" in the requested slice" if sample_slice is not None else ""))
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{path} contains NaN or infinite samples")
    peak = np.abs(data).max()
    if peak == 0:
        raise ValueError(f"{path} is silent (all samples are zero); nothing to fit")
    return Audio(samples=data / peak, rate=max(1, int(round(rate / step))))


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int) -> None:
    """Write a float32 mono WAV (values clipped to [-1, 1]) atomically: an existing file is replaced whole or kept."""
    from scipy.io import wavfile  # noqa: PLC0415 (heavy: audio only; qiren_gen.models imports this module)

    data = np.clip(np.asarray(samples, dtype=np.float32), -1, 1)
    write_file_with(path, lambda tmp: wavfile.write(tmp, int(rate), data))


__all__ = ["BACH_FETCH", "BACH_FILE", "MAX_AUDIO_FRAMES", "MAX_IMAGE_SIZE", "MAX_SOURCE_PIXELS", "SKIMAGE_IMAGES",
           "Audio", "load_image", "load_wav", "open_image", "parse_slice", "resize_image", "write_wav"]
