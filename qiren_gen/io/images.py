"""The one checked reader for image files: the pixel count is read from the header and capped before any pixel is
decoded, a decompression bomb is refused unread, and a damaged file is one line naming it."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..runtime.errors import one_line
from .errors import BadInputFile, quoted

MAX_SOURCE_PIXELS = 2**25
"""Largest image file read: 33.5M pixels (an 8K photo is 33.2M). Decoded to float64 grayscale that is 256 MiB; a
144-megapixel file ran out of memory before it was resized."""


def read_image(path: str | os.PathLike, max_pixels: int = MAX_SOURCE_PIXELS):
    """A decoded PIL image from ``path``; `BadInputFile` (one line naming the file) when it is over
    ``max_pixels``, a decompression bomb, not an image or damaged; ``OSError`` when it cannot be opened."""
    path = Path(path)
    what = quoted(path)
    if path.is_dir():
        raise OSError(f"{what} is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only: the pixel count is known before decoding
                width, height = img.size
                if width * height <= max_pixels:
                    img.load()
                    return img.copy()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise BadInputFile(f"{what} declares too many pixels to decode (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise BadInputFile(f"{what} is not an image file PIL can read") from None
    except (PermissionError, FileNotFoundError) as exc:
        raise OSError(f"cannot read {what}: {exc.strerror}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # a valid header over damaged data (truncated, ...)
        raise BadInputFile(f"{what} is a damaged image file ({type(exc).__name__}: {one_line(exc, 200)})") from None
    raise BadInputFile(f"{what} is {width}x{height} pixels, over the cap of {max_pixels:,} pixels for an image "
                       "(resize it first)")


__all__ = ["MAX_SOURCE_PIXELS", "read_image"]
