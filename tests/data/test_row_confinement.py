"""Dataset rows stay inside their dataset: a row's bytes, or a file in the dataset's own folder; an absolute path
elsewhere, a path that climbs out, and a URL are never opened (a loopback listener sees no connection), the row is
skipped and counted; every decoding error of one row skips that row; a dataset with no readable image is refused;
a corrupt parquet row group and a non-UTF-8 file name are one line naming the file."""
from __future__ import annotations

import os

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from qiren_gen.data.datasets import (
    IMAGE_COLUMN,
    ImageCollator,
    check_readable_images,
    decode_image,
    load_image_dataset,
)
from testing_utils import LoopbackListener as Listener
from testing_utils import png_bytes


def parquet_dataset(folder, rows: list[dict]):
    """A local dataset folder: one parquet shard whose ``image`` column is a ``datasets.Image`` (bytes / path)."""
    (folder / "data").mkdir(parents=True)
    features = datasets.Features({"image": datasets.Image()})
    table = datasets.Dataset.from_dict({"image": rows}, features=features).data.table  # the features in its schema
    pq.write_table(table, folder / "data" / "train.parquet")  # (datasets' to_parquet would stat every path)
    return folder


@pytest.mark.parametrize("streaming", [False, True])
def test_rows_naming_files_outside_or_urls_are_skipped_unopened_and_counted(tmp_path, streaming):
    private = tmp_path / "private.png"
    private.write_bytes(png_bytes(200))
    inside = tmp_path / "repo" / "inside.png"
    listener = Listener()
    try:
        rows = [
            {"bytes": png_bytes(10), "path": None},
            {"bytes": None, "path": str(private)},                                  # absolute path elsewhere
            {"bytes": None, "path": "../private.png"},                               # climbs out of the folder
            {"bytes": None, "path": f"ftp://127.0.0.1:{listener.port}/x.png"},        # any fsspec URL
            {"bytes": None, "path": f"http://127.0.0.1:{listener.port}/x.png"},
            {"bytes": None, "path": f"zip://x.png::http://127.0.0.1:{listener.port}/a.zip"},
            {"bytes": None, "path": str(inside)},                                    # inside: read
        ]
        folder = parquet_dataset(tmp_path / "repo", rows)
        inside.write_bytes(png_bytes(30))
        ds = load_image_dataset(str(folder), streaming=streaming)
        examples = list(ds) if streaming else [ds[i] for i in range(len(ds))]
        collate = ImageCollator(IMAGE_COLUMN, 8, 1)
        batch = collate(examples)
        assert batch.shape[0] == 2 and collate.skipped == 5
        values = sorted(round(float(v)) for v in (batch.mean(dim=(1, 2, 3)) + 1) * 127.5)
        assert values == [10, 30]
        assert listener.connections == 0
    finally:
        listener.close()


def test_a_link_inside_the_folder_that_points_out_is_refused(tmp_path):
    private = tmp_path / "private.png"
    private.write_bytes(png_bytes(200))
    folder = parquet_dataset(tmp_path / "repo", [{"bytes": None, "path": str(tmp_path / "repo" / "link.png")},
                                                 {"bytes": png_bytes(5), "path": None}])
    os.symlink(private, folder / "link.png")
    ds = load_image_dataset(str(folder))
    with pytest.raises(ValueError, match="outside the dataset's folder: not opened"):
        decode_image(ds[0][IMAGE_COLUMN], 8, 1)
    assert decode_image(ds[1][IMAGE_COLUMN], 8, 1).shape == (1, 8, 8)


def test_every_decoding_error_of_one_row_skips_that_row(tmp_path):
    truncated = png_bytes()[:40]  # a valid header over cut data: EOFError / OSError inside PIL
    rows = [{IMAGE_COLUMN: {"bytes": truncated, "path": None}}, {IMAGE_COLUMN: {"bytes": b"GIF89a", "path": None}},
            {IMAGE_COLUMN: {"bytes": png_bytes(), "path": None}}]
    collate = ImageCollator(IMAGE_COLUMN, 8, 1)
    assert collate(rows).shape[0] == 1 and collate.skipped == 2
    for row in rows[:2]:
        with pytest.raises(ValueError):
            decode_image(row[IMAGE_COLUMN], 8, 1)


@pytest.mark.parametrize("streaming", [False, True])
def test_a_dataset_with_no_readable_image_is_refused(tmp_path, streaming):
    folder = parquet_dataset(tmp_path / "repo", [{"bytes": None, "path": "/etc/hostname"},
                                                 {"bytes": png_bytes()[:30], "path": None}])
    ds = load_image_dataset(str(folder), streaming=streaming)
    with pytest.raises(ValueError, match=r"no readable image in the dataset \(all 2 row\(s\) read: 1 outside the "
                                         r"dataset or a URL, 1 unreadable\)"):
        check_readable_images(ds, 8)
    good = parquet_dataset(tmp_path / "good", [{"bytes": png_bytes()[:30], "path": None},
                                               {"bytes": png_bytes(), "path": None}])
    assert check_readable_images(load_image_dataset(str(good), streaming=streaming), 8) == 1


def test_a_corrupt_parquet_row_group_is_one_line_naming_the_file(tmp_path):
    folder = tmp_path / "repo" / "data"
    folder.mkdir(parents=True)
    table = pa.table({"image": [{"bytes": png_bytes(i), "path": None} for i in range(40)]})
    path = folder / "train.parquet"
    pq.write_table(table, path, row_group_size=10, compression="NONE")
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata
    start = meta.row_group(2).column(0).data_page_offset
    data[start + 20: start + 400] = b"\xff" * 380  # the third row group's page is garbage; the footer is intact
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as info:
        load_image_dataset(str(tmp_path / "repo"))
    message = str(info.value)
    assert "train.parquet" in message and "row group 2" in message and "\n" not in message


def test_a_non_utf8_file_name_in_an_image_folder_is_one_line_naming_it(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "ok.png")
    os.rename(folder / "ok.png", os.path.join(os.fsencode(folder), b"bad\xff.png"))
    with pytest.raises(ValueError, match=r"bad\\udcff\.png' is not UTF-8 text: rename it"):
        load_image_dataset(data_dir=str(folder))
