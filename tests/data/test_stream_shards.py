"""Sharded stream reading: each rank (and DataLoader worker) opens only its own parquet shards, yet every stream
position is read once with the index it has in the whole stream; shards of unknown length, or a shard count the ranks
do not divide, fall back to every rank reading the whole stream and keeping its own positions."""
from __future__ import annotations

import logging

import datasets
import pytest
import torch

from qiren_gen.data.datasets import load_image_dataset
from qiren_gen.data.indexed import IndexedStream
from qiren_gen.data.stream_shards import StreamLayout, stream_layout
from testing_utils import write_parquet_shards

LENGTHS = [3, 5, 2, 4]  # uneven shards: 14 positions, offsets 0, 3, 8, 10


def _items(stream: IndexedStream, workers: int = 0) -> list[tuple[int, int, bool]]:
    """``(index, stream position the example was written at, flip)`` of every item one pass yields."""
    loader = torch.utils.data.DataLoader(stream, batch_size=3, num_workers=workers, collate_fn=lambda items: items)
    return [(item["index"], int(item["example"]["image"]["path"].split(".")[0]), item["flip"])
            for batch in loader for item in batch]


@pytest.fixture(scope="module")
def parquet_stream(tmp_path_factory):
    folder = write_parquet_shards(tmp_path_factory.mktemp("shards") / "faces", LENGTHS)
    return lambda **kw: load_image_dataset(dataset_name=str(folder), streaming=True, **kw)


def test_the_layout_of_a_parquet_stream_comes_from_its_footers(parquet_stream):
    layout = stream_layout(parquet_stream())
    assert layout.lengths == tuple(LENGTHS) and layout.offsets == (0, 3, 8, 10) and layout.limit is None
    assert stream_layout(parquet_stream(max_samples=9)).limit == 9  # a take(n) becomes a cut by position


def test_two_ranks_of_two_workers_read_only_their_shards_and_cover_every_position_once(parquet_stream):
    single = IndexedStream(parquet_stream(), capacity=14, flip=True, buffer_size=4, seed=3)
    reference = _items(single)
    assert single.examples_read == 14
    assert sorted(reference) == sorted([(p, p, False) for p in range(14)] + [(14 + p, p, True) for p in range(14)])
    seen, read = [], []
    for rank in (0, 1):
        stream = IndexedStream(parquet_stream(), capacity=14, flip=True, buffer_size=4, seed=3, rank=rank,
                               num_ranks=2)
        assert stream.rank_shards() == [rank, rank + 2]  # shards s % 2 == rank, as split_dataset_by_node assigns
        items = _items(stream, workers=2)
        read.append(stream.examples_read)
        seen += items
    assert read == [3 + 2, 5 + 4]  # rank 0 opened shards 0 and 2, rank 1 shards 1 and 3: nothing else
    assert sorted(seen) == sorted(reference)  # every position once, each with the index one rank gives it


def test_the_capacity_and_a_take_stop_reading_at_the_cut(parquet_stream):
    for stream_kw, capacity in (({}, 9), ({"max_samples": 9}, None), ({"max_samples": 12}, 9)):
        seen, read = [], []
        for rank in (0, 1):
            stream = IndexedStream(parquet_stream(**stream_kw), capacity=capacity, rank=rank, num_ranks=2)
            seen += _items(stream)
            read.append(stream.examples_read)
        assert sorted(seen) == [(p, p, False) for p in range(9)]
        # 3 shards before the cut: shard 0 to rank 0, shard 1 to rank 1, shard 2 (position 8, up to the cut) read
        # by both; shard 3 (from position 10) never opened
        assert read == [3 + 1, 5 + 1]


def test_one_reader_keeps_the_stream_order_and_epochs_keep_the_indices(parquet_stream):
    plain = IndexedStream(parquet_stream(), capacity=14)
    assert _items(plain) == [(p, p, False) for p in range(14)]
    stream = IndexedStream(parquet_stream(), capacity=14, buffer_size=5, seed=1, rank=1, num_ranks=2)
    first = _items(stream, workers=2)
    stream.set_epoch(1)
    second = _items(stream, workers=2)
    assert first != second and sorted(first) == sorted(second)  # another order, the same index for each image
    stream.set_epoch(0)
    assert _items(stream, workers=2) == first  # what a resume skips into: the epoch's batches, again, in order


def test_the_last_shards_the_ranks_do_not_divide_are_read_by_every_rank_with_a_notice(tmp_path, caplog):
    """3 files (one row group each) on 2 ranks: rank 0 reads shard 0, rank 1 shard 1, both read shard 2 and keep
    its positions p % 2 == rank; rank 0 says so once."""
    folder = write_parquet_shards(tmp_path / "three", [4, 5, 3])
    seen, read = [], []
    for rank in (0, 1):
        with caplog.at_level(logging.WARNING, logger="qiren_gen.data.indexed"):
            stream = IndexedStream(load_image_dataset(dataset_name=str(folder), streaming=True), capacity=12,
                                   rank=rank, num_ranks=2)
        assert stream.rank_shards() == [rank] and stream.shared_shards() == [2]
        items = _items(stream, workers=2)
        assert {position for _, position, _ in items} == (
            {0, 1, 2, 3, 10} if rank == 0 else {4, 5, 6, 7, 8, 9, 11})
        read.append(stream.examples_read)
        seen += items
    assert read == [4 + 3, 5 + 3]
    assert sorted(seen) == [(p, p, False) for p in range(12)]
    notices = [r.getMessage() for r in caplog.records if "do not divide" in r.getMessage()]
    assert notices == ["the stream's shards do not divide among 2 processes: every process reads the last 1 "
                       "(3 examples) and keeps its own positions of them"]  # rank 0 only


def test_fewer_shards_than_ranks_are_read_and_skipped(tmp_path):
    folder = write_parquet_shards(tmp_path / "one", [5])
    seen = []
    for rank in (0, 1):
        stream = IndexedStream(load_image_dataset(dataset_name=str(folder), streaming=True), rank=rank, num_ranks=2)
        assert stream.rank_shards() is None and stream.shared_shards() == []
        items = _items(stream, workers=2)
        # each of the rank's 2 workers reads all 5 examples (as before sharded reading) and keeps its own positions
        assert {position % 2 for _, position, _ in items} == {rank} and stream.examples_read == 2 * 5
        seen += items
    assert sorted(seen) == [(p, p, False) for p in range(5)]


def test_files_the_ranks_do_not_divide_are_split_into_row_groups(tmp_path):
    """3 files of 2 + 3 + 1 row groups: 6 row-group shards, 3 per rank, each read alone."""
    folder = write_parquet_shards(tmp_path / "groups", [4, 6, 2], row_group_size=2)
    seen = []
    for rank in (0, 1):
        stream = IndexedStream(load_image_dataset(dataset_name=str(folder), streaming=True), capacity=12,
                               rank=rank, num_ranks=2)
        assert stream.layout.lengths == (2,) * 6 and stream.rank_shards() == [rank, rank + 2, rank + 4]
        items = _items(stream, workers=2)
        assert {position // 2 % 2 for _, position, _ in items} == {rank} and stream.examples_read == 6
        seen += items
    assert sorted(seen) == [(p, p, False) for p in range(12)]


def test_shards_of_unknown_length_are_read_and_skipped(tmp_path):
    """A generator-made stream (and an image folder, one shard to ``datasets``) has no layout: each rank of 2, with 2
    workers, reads every example and keeps its own positions, each once, at its stream position."""
    def examples(count):
        for i in range(count):
            yield {"image": {"bytes": None, "path": f"{i}.png"}}

    stream = datasets.IterableDataset.from_generator(examples, gen_kwargs={"count": 11})
    assert stream_layout(stream) is None
    seen = []
    for rank in (0, 1):
        indexed = IndexedStream(stream, capacity=11, flip=True, buffer_size=3, seed=2, rank=rank, num_ranks=2)
        items = _items(indexed, workers=2)
        assert {position % 2 for _, position, _ in items} == {rank} and indexed.examples_read == 2 * 11
        seen += items
    assert sorted(seen) == sorted([(p, p, False) for p in range(11)] + [(11 + p, p, True) for p in range(11)])
    (tmp_path / "folder" / "train").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "folder" / "train" / f"{i}.png").write_bytes(b"")
    folder_stream = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "folder"), split="train",
                                          streaming=True)
    assert stream_layout(folder_stream) is None


def test_a_shard_that_does_not_hold_its_declared_length_is_an_error(parquet_stream):
    stream = IndexedStream(parquet_stream(), rank=0, num_ranks=2)
    stream.layout = StreamLayout(stream.layout.source, (3, 5, 3, 3))  # shard 2 declared one longer than it is
    with pytest.raises(ValueError, match="shard 2 of the stream held 2 examples where its metadata declares 3"):
        _items(stream)
