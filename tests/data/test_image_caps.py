"""Pictures entering from files or datasets: a decompression bomb and an image over the pixel cap are refused from
their header, before any pixel is decoded; in a training dataset they are skipped and counted like unreadable ones."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from qiren_gen.data.datasets import ImageCollator, decode_image
from qiren_gen.data.signals import MAX_SOURCE_PIXELS, load_image
from testing_utils import png_bomb


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    (root / "bomb.png").write_bytes(png_bomb())
    Image.new("L", (6000, 6000)).save(root / "big.png")  # 36M pixels, a 36 KB file
    Image.new("L", (16, 16), 128).save(root / "small.png")
    return root


def test_fit_images_over_the_cap_or_bombs_are_refused_in_one_line(pictures):
    with pytest.raises(ValueError, match="declares too many pixels") as bomb:
        load_image(pictures / "bomb.png", 8)
    with pytest.raises(ValueError, match=f"6000x6000 pixels, over the cap of {MAX_SOURCE_PIXELS:,}") as big:
        load_image(pictures / "big.png", 8)
    assert all(len(str(e.value).splitlines()) == 1 for e in (bomb, big))
    assert load_image(pictures / "small.png", 8).shape == (8, 8)


def test_training_images_over_the_cap_or_bombs_are_skipped_and_counted(pictures):
    values = [{"bytes": (pictures / name).read_bytes(), "path": None} for name in ("bomb.png", "big.png", "small.png")]
    for value, fragment in zip(values[:2], ("decompression bomb", "over the cap"), strict=True):
        with pytest.raises(ValueError, match=fragment):
            decode_image(value, 8, 1)
    collate = ImageCollator("image", 8, 1)
    batch = collate([{"image": v} for v in values])
    assert batch.shape == (1, 1, 8, 8) and collate.skipped == 2
    assert decode_image(Image.open(io.BytesIO(values[2]["bytes"])), 8, 1).shape == (1, 8, 8)
