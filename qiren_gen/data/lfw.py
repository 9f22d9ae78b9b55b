"""Write scikit-image's bundled LFW faces as a small ``imagefolder`` dataset (the project's offline face data)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.data import lfw_subset

from ..io.atomic import save_image

N_TRAIN_FACES = 90
N_FACES = 100  # lfw_subset(): 200 images of 25x25, the first 100 are faces


def export_lfw_faces(root: str | Path) -> Path:
    """Write faces 0-89 to ``root/train/*.png`` and 90-99 to ``root/test/*.png`` (8-bit grayscale, 25x25).

    The folder loads with ``datasets.load_dataset("imagefolder", data_dir=root)``. Existing files are replaced, each
    atomically.
    """
    root = Path(root)
    faces = lfw_subset()[:N_FACES]
    for split, indices in (("train", range(N_TRAIN_FACES)), ("test", range(N_TRAIN_FACES, N_FACES))):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in indices:
            pixels = np.clip(np.rint(faces[i] * 255), 0, 255).astype(np.uint8)
            save_image(folder / f"face_{i:03d}.png", pixels)
    return root


__all__ = ["export_lfw_faces", "N_FACES", "N_TRAIN_FACES"]
