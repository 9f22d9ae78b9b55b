"""Uploaded files -> PIL images, refusing non-images, empty and huge files with one clear line each.

The header is read before the pixels, so a decompression bomb (a tiny file declaring gigapixels) is refused unread.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .limits import DemoLimits


def open_upload(path: str | os.PathLike | None, limits: DemoLimits, field: str = "image") -> Image.Image:
    """The uploaded image at ``path``, fully loaded and EXIF-rotated; ``ValueError`` naming ``field`` otherwise."""
    if path is None or str(path) == "":
        raise ValueError(f"{field}: upload an image first")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{field}: the upload did not arrive (no file)")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{field}: the uploaded file is empty")
    if size > limits.max_upload_bytes:
        raise ValueError(f"{field}: the file is {size / 2**20:.1f} MiB, over the cap of "
                         f"{limits.max_upload_bytes / 2**20:.0f} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width < 1 or height < 1:
                    raise ValueError(f"{field}: the image is empty ({width}x{height} pixels)")
                if width * height > limits.max_upload_pixels:
                    raise ValueError(f"{field}: the image is {width}x{height} pixels, over the cap of "
                                     f"{limits.max_upload_pixels:,} pixels")
                img.load()
                return ImageOps.exif_transpose(img).copy()
    except UnidentifiedImageError:
        raise ValueError(f"{field}: the uploaded file is not an image (PNG, JPEG, WebP, ... expected)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValueError(f"{field}: the image declares too many pixels (decompression bomb?)") from None
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{field}: the image file is damaged ({type(exc).__name__})") from None


def centre_square(img: Image.Image, side: int, mode: str) -> Image.Image:
    """Centre-crop ``img`` to a square, resize it to ``side`` (antialiased) and convert it to ``mode``."""
    return ImageOps.fit(img.convert("RGB"), (side, side), Image.Resampling.LANCZOS).convert(mode)


__all__ = ["centre_square", "open_upload"]
