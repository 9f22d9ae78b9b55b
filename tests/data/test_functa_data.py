"""Image datasets for functa training: LFW export, load_dataset adapters, bad-input handling."""
import logging

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.data.datasets import ImageCollator, check_resolution, load_image_dataset
from qiren_gen.data.lfw import export_lfw_faces


def test_export_lfw_faces_loads_with_imagefolder(tmp_path):
    root = export_lfw_faces(tmp_path / "lfw")
    ds = datasets.load_dataset("imagefolder", data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows == 90 and ds["test"].num_rows == 10
    from skimage.data import lfw_subset

    first = np.asarray(ds["train"][0]["image"], dtype=np.float64) / 255
    assert first.shape == (25, 25)
    assert np.abs(first - lfw_subset()[0]).max() <= 0.5 / 255 + 1e-9


def _folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (12, 20, 3), dtype=np.uint8)).save(folder / "rgb_wide.png")
    Image.fromarray(rng.integers(0, 255, (30, 9), dtype=np.uint8)).save(folder / "gray_tall.png")
    Image.fromarray(rng.integers(0, 255, (16, 16, 4), dtype=np.uint8), mode="RGBA").save(folder / "alpha.png")
    Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).convert("P").save(folder / "palette.png")
    return folder


@pytest.mark.parametrize("channels", [1, 3])
def test_mixed_sizes_and_modes_convert(tmp_path, channels):
    ds = load_image_dataset(data_dir=_folder(tmp_path), cache_dir=str(tmp_path / "cache"))
    batch = ImageCollator("image", resolution=8, channels=channels)([ds[i] for i in range(len(ds))])
    assert batch.shape == (4, channels, 8, 8)
    assert batch.min() >= -1 and batch.max() <= 1 and batch.dtype == torch.float32


def test_corrupt_image_is_skipped_with_a_warning_and_count(tmp_path, caplog):
    folder = _folder(tmp_path)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    ds = load_image_dataset(data_dir=folder, cache_dir=str(tmp_path / "cache"))
    collate = ImageCollator("image", resolution=6)
    with caplog.at_level(logging.WARNING):
        batch = collate([ds[i] for i in range(len(ds))])
    assert batch.shape == (4, 1, 6, 6) and collate.skipped == 1
    assert "broken.png" in caplog.text


def test_bad_dataset_inputs(tmp_path):
    folder = _folder(tmp_path)
    with pytest.raises(ValueError, match="image column 'img' not found"):
        load_image_dataset(data_dir=folder, image_column="img", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(OSError, match="not found"):
        load_image_dataset(data_dir=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises((ValueError, OSError), match="empty|could not load"):
        load_image_dataset(data_dir=empty, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="exactly one"):
        load_image_dataset()
    for bad in (1, 0, 2.5):
        with pytest.raises(ValueError, match="resolution must be an int >= 2"):
            check_resolution(bad)
