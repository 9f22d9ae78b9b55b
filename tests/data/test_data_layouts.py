"""The real Hub layouts of FFHQ / CelebA-HQ copies, built tiny in tmp dirs and loaded offline: parquet shards with
``image`` + ``label``, a zip imagefolder (``zip://`` paths), webdataset tars (``webp`` + ``__key__``), a Hub id found
in the local Hub cache with ``HF_HUB_OFFLINE``; and their bad inputs (corrupt shard, no image column, several image
columns, empty or unknown split), each one line."""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from qiren_gen.data.datasets import IMAGE_COLUMN, ImageCollator, load_image_dataset

RNG = np.random.default_rng(0)


def _encoded(fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(out, fmt)
    return out.getvalue()


def parquet_layout(root: Path, n: int = 5, split: str = "train") -> Path:
    """``data/{split}-00000-of-00001.parquet`` with ``image`` + ``label`` (as ``mattymchen/celeba-hq``)."""
    images = [Image.open(io.BytesIO(_encoded())) for _ in range(n)]
    ds = datasets.Dataset.from_dict({"image": images, "label": list(range(n))}).cast_column("image", datasets.Image())
    ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def zip_layout(root: Path, n: int = 5) -> Path:
    """One zip of PNGs (as ``nuwandaa/ffhq128``): ``datasets`` infers an imagefolder, values are ``zip://`` paths."""
    root.mkdir(parents=True)
    with zipfile.ZipFile(root / "train.zip", "w") as archive:
        for i in range(n):
            archive.writestr(f"faces/{i:05d}.png", _encoded())
    return root


def webdataset_layout(root: Path, n: int = 5) -> Path:
    """A webdataset tar with ``webp`` images and their ``__key__`` (as ``gaunernst/ffhq-1024-wds``)."""
    root.mkdir(parents=True)
    with tarfile.open(root / "train-0000.tar", "w") as tar:
        for i in range(n):
            for ext, payload in (("webp", _encoded("WEBP")), ("json", b'{"id": %d}' % i)):
                info = tarfile.TarInfo(f"{i:05d}.{ext}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return root


@pytest.mark.parametrize("layout", [parquet_layout, zip_layout, webdataset_layout])
@pytest.mark.parametrize("streaming", [False, True])
def test_every_layout_loads_and_decodes(tmp_path, layout, streaming, caplog):
    root = layout(tmp_path / "repo")
    ds = load_image_dataset(str(root), streaming=streaming, cache_dir=str(tmp_path / "cache"))
    assert ds.column_names == [IMAGE_COLUMN]
    examples = list(ds)
    assert len(examples) == 5
    batch = ImageCollator(IMAGE_COLUMN, resolution=4, channels=3)(examples)
    assert batch.shape == (5, 3, 4, 4) and -1 <= batch.min() and batch.max() <= 1
    if layout is webdataset_layout:  # no `image` column: the one image-typed column, said once in the log
        assert "using 'webp'" in caplog.text


def test_hub_id_resolves_from_the_local_hub_cache_offline(tmp_path, monkeypatch):
    """What ``huggingface-cli download --repo-type dataset merkol/ffhq-256`` leaves on a node without internet."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / "datasets--merkol--ffhq-256"
    commit = "0123456789abcdef0123456789abcdef01234567"
    parquet_layout(repo / "snapshots" / commit, n=4)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for streaming in (False, True):
        ds = load_image_dataset("merkol/ffhq-256", streaming=streaming, cache_dir=str(tmp_path / "cache"))
        assert len(list(ds)) == 4
    with pytest.raises(OSError):  # not in the cache: the loader's own error, one line
        load_image_dataset("someone/not-downloaded", cache_dir=str(tmp_path / "cache"))


def test_bad_layouts_are_one_line_each(tmp_path):
    cache = str(tmp_path / "cache")
    corrupt = parquet_layout(tmp_path / "corrupt")
    shard = corrupt / "data" / "train-00001-of-00002.parquet"
    shard.write_bytes(b"PAR1 this is not a parquet file")
    for streaming in (False, True):
        with pytest.raises(ValueError, match=f"corrupt parquet shard {shard}"):
            load_image_dataset(str(corrupt), streaming=streaming, cache_dir=cache)

    labels = tmp_path / "labels"
    datasets.Dataset.from_dict({"label": [1, 2]}).to_parquet(str(labels / "data" / "train-00000-of-00001.parquet"))
    with pytest.raises(ValueError, match="no image-typed column; the dataset has columns \\['label'\\]"):
        load_image_dataset(str(labels), cache_dir=cache)

    two = tmp_path / "two"
    img = [Image.open(io.BytesIO(_encoded()))]
    datasets.Dataset.from_dict({"face": img, "mask": img}).cast_column("face", datasets.Image()).cast_column(
        "mask", datasets.Image()).to_parquet(str(two / "data" / "train-00000-of-00001.parquet"))
    with pytest.raises(ValueError, match="several image columns \\['face', 'mask'\\]: choose one with --image_column"):
        load_image_dataset(str(two), cache_dir=cache)
    assert load_image_dataset(str(two), image_column="mask", cache_dir=cache).num_rows == 1

    empty = tmp_path / "empty"
    datasets.Dataset.from_dict({"image": []}, features=datasets.Features({"image": datasets.Image()})).to_parquet(
        str(empty / "data" / "train-00000-of-00001.parquet"))
    for streaming in (False, True):
        with pytest.raises(ValueError, match="is empty"):
            load_image_dataset(str(empty), streaming=streaming, cache_dir=cache)
    with pytest.raises(ValueError, match='Unknown split "validation"'):
        load_image_dataset(str(parquet_layout(tmp_path / "ok")), split="validation", cache_dir=cache)


def test_train_functa_on_a_hub_cache_webdataset_streamed_offline(tmp_path, monkeypatch, capsys):
    """End to end: a Hub id whose snapshot (webdataset tars, no `image` column) is only in the local Hub cache,
    streamed, auto-decoded latents sized by --max_train_samples."""
    from accelerate.state import AcceleratorState
    from huggingface_hub import constants

    from train_functa import main

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hub" / "datasets--gaunernst--ffhq-1024-wds"
    webdataset_layout(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    AcceleratorState._reset_state(True)
    out = tmp_path / "run"
    assert main(["--dataset_name", "gaunernst/ffhq-1024-wds", "--streaming", "--max_train_samples", "5",
                 "--encoding", "auto_decode", "--resolution", "4", "--channels", "3", "--n_qubits", "2",
                 "--hidden_layers", "1", "--latent_dim", "3", "--train_batch_size", "2", "--max_train_steps", "3",
                 "--checkpointing_steps", "3", "--cache_dir", str(tmp_path / "cache"),
                 "--output_dir", str(out)]) == 0, capsys.readouterr().err
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["visited_latents"] == 5  # 3 batches of 2 over 5 streamed images
