"""Where each shard of a ``datasets`` stream starts in stream order, learned without reading the stream.

A streamed ``datasets.IterableDataset`` reads its shards (data files) one after another, so an example's position in
the stream is its shard's offset (the examples of the shards before it) plus its place in the shard. When every
shard's length is known cheaply, a reader can open only its own shards and still give each example its global
position. Known: parquet files (row counts from each footer, the same numbers ``datasets`` reads; split into one
shard per row group when the files do not divide among the ranks) and in-memory shards
(``Dataset.to_iterable_dataset``). Anything else (image folders, which ``datasets`` streams as one shard,
webdataset tars, JSON, a filter or a shuffle in the pipeline) has no layout, and the caller reads the whole stream.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from itertools import accumulate

import datasets
import fsspec
import pyarrow.parquet as pq
from datasets import iterable_dataset as it
from datasets.packaged_modules.parquet.parquet import Parquet

from ..io.dataset_rows import RowConfinement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamLayout:
    """A stream's shards: ``source`` (the stream without a ``take``, whose shards are read one by one), the length
    of each shard in stream order, and ``limit``, the ``take(n)`` the stream had (None: none)."""

    source: object
    lengths: tuple[int, ...]
    limit: int | None = None

    @property
    def num_shards(self) -> int:
        return len(self.lengths)

    @property
    def offsets(self) -> tuple[int, ...]:
        """The stream position of each shard's first example."""
        return (0, *accumulate(self.lengths))[:-1]

    def shard_examples(self, shard: int) -> Iterator[dict]:
        """The examples of shard ``shard``, in order, reading that shard only (``.iter`` ignores torch worker info,
        so a DataLoader worker reads the whole shard it is given)."""
        one = self.source.shard(num_shards=self.num_shards, index=shard, contiguous=True)
        yield from rows(one)


def rows(stream) -> Iterator[dict]:
    """A stream's examples in its own order: a ``datasets`` stream through ``.iter`` (never split by torch worker
    info), anything else by plain iteration."""
    if hasattr(stream, "iter") and hasattr(stream, "column_names"):
        for batch in stream.iter(batch_size=32):
            keys = list(batch)
            for values in zip(*(batch[k] for k in keys), strict=True):  # a batch's columns have one length
                yield dict(zip(keys, values, strict=True))
    else:
        yield from stream


def stream_layout(stream) -> StreamLayout | None:
    """The shard layout of a ``datasets`` stream, or None when a shard's length cannot be known without reading it
    (or the stream's pipeline may drop, add or reorder examples)."""
    if not isinstance(stream, datasets.IterableDataset) or stream._distributed:
        return None
    try:
        ex_iterable, limit, source = stream._ex_iterable, None, stream
        if isinstance(ex_iterable, it.TakeExamplesIterable):  # take(n) splits n over shards: cut by position instead
            ex_iterable, limit = ex_iterable.ex_iterable, ex_iterable.n
            source = datasets.IterableDataset(ex_iterable=ex_iterable, info=stream._info.copy(), split=stream._split,
                                              formatting=stream._formatting, distributed=None,
                                              token_per_repo_id=stream._token_per_repo_id)
        base = ex_iterable
        while not isinstance(base, it.ArrowExamplesIterable):
            if isinstance(base, it.SelectColumnsIterable) or _is_rename(base, it) or _is_confinement(base, it) \
                    or _is_row_preserving(base, it):
                base = base.ex_iterable
            else:
                return None
        lengths = _arrow_shard_lengths(base)
        if lengths is None or len(lengths) != ex_iterable.num_shards:
            return None
        return StreamLayout(source, tuple(lengths), limit)
    except Exception as err:  # noqa: BLE001 - private structure of another version, an unreadable footer ...
        logger.debug("no shard layout for the stream: %s", err)
        return None


def _is_rename(ex_iterable, it) -> bool:
    """A one-to-one ``rename_column`` map (what `load_image_dataset` may add)."""
    function = getattr(ex_iterable, "function", None)
    return (isinstance(ex_iterable, it.MappedExamplesIterable) and not ex_iterable.batched
            and isinstance(function, partial) and function.func is it._rename_columns_fn)


def _is_confinement(ex_iterable, it) -> bool:
    """The one-to-one `RowConfinement` map that ``load_image_dataset`` adds."""
    return (isinstance(ex_iterable, it.MappedExamplesIterable) and not ex_iterable.batched
            and isinstance(getattr(ex_iterable, "function", None), RowConfinement))


def _is_row_preserving(ex_iterable, it) -> bool:
    """The steps ``datasets`` puts under a ``map``: features cast per row (no formatting) and Arrow re-batching,
    both one row out for each row in."""
    if isinstance(ex_iterable, it.RebatchedArrowExamplesIterable):
        return True
    return isinstance(ex_iterable, it.FormattedExamplesIterable) and ex_iterable.formatting is None


def _arrow_shard_lengths(base) -> list[int] | None:
    """Rows per shard of an Arrow-backed stream: in-memory shards, or parquet files read without filters."""
    kwargs = base.kwargs
    if "shards" in kwargs and getattr(base.generate_tables_fn, "__name__", "") == "_generate_tables_from_shards":
        return [len(shard) for shard in kwargs["shards"]]
    builder = getattr(base.generate_tables_fn, "__self__", None)
    if not isinstance(builder, Parquet) or getattr(builder.config, "filters", None) is not None:
        return None
    files, row_groups = kwargs.get("files"), kwargs.get("row_groups_list")
    if not isinstance(files, list) or not isinstance(row_groups, list) or len(files) != len(row_groups):
        return None
    footers: dict[str, object] = {}  # one footer read per file, however many row-group shards it has
    lengths = []
    for file, groups in zip(files, row_groups, strict=True):
        if file not in footers:
            footers[file] = parquet_metadata(file)
        metadata = footers[file]
        lengths.append(metadata.num_rows if groups is None else sum(metadata.row_group(i).num_rows for i in groups))
    return lengths


def parquet_metadata(path: str):
    """The footer metadata of a parquet file (row counts, row groups): a local path or any fsspec URL."""
    if "://" not in path and "::" not in path:
        return pq.read_metadata(path)
    with fsspec.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata


def layout_for_ranks(stream, num_ranks: int) -> StreamLayout | None:
    """`stream_layout`, with parquet files split into one shard per row group (``IterableDataset.reshard``)
    when the files alone do not divide among ``num_ranks`` (finer shards leave less for every rank to read); None
    when the stream has no layout."""
    layout = stream_layout(stream)
    if layout is None or num_ranks == 1 or layout.num_shards % num_ranks == 0:
        return layout
    try:
        finer = stream_layout(stream.reshard())
    except Exception as err:  # noqa: BLE001 - a source that cannot be resharded keeps its files
        logger.debug("could not reshard the stream: %s", err)
        return layout
    return finer if finer is not None and finer.num_shards > layout.num_shards else layout


__all__ = ["StreamLayout", "layout_for_ranks", "parquet_metadata", "rows", "stream_layout"]
