"""FID reference sets read their rows through the same confinement as the training data: a row naming a file outside
the dataset, or a URL, is refused in one line and never opened (a loopback listener sees no connection)."""
from __future__ import annotations

import datasets
import pyarrow.parquet as pq
import pytest

from qiren_gen.metrics.reference import load_reference
from testing_utils import LoopbackListener as Listener
from testing_utils import png_bytes


def test_reference_rows_outside_the_dataset_or_urls_are_refused_unopened(tmp_path):
    private = tmp_path / "private.png"
    private.write_bytes(png_bytes(200))
    listener = Listener()
    try:
        rows = [{"bytes": png_bytes(10), "path": None}, {"bytes": None, "path": str(private)},
                {"bytes": None, "path": f"ftp://127.0.0.1:{listener.port}/x.png"}]
        folder = tmp_path / "ref" / "data"
        folder.mkdir(parents=True)
        table = datasets.Dataset.from_dict({"image": rows}, features=datasets.Features(
            {"image": datasets.Image()})).data.table
        pq.write_table(table, folder / "train.parquet")
        reference = load_reference(str(tmp_path / "ref"), resolution=8)
        assert reference[0].shape == (3, 8, 8)
        for i, fragment in ((1, "outside the dataset's folder: not opened"), (2, "ftp:// URL")):
            with pytest.raises(ValueError, match=fragment) as info:
                reference[i]
            assert "\n" not in str(info.value)
        assert listener.connections == 0
    finally:
        listener.close()
