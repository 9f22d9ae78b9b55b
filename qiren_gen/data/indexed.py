"""Training items with a stable index per image, decoded per batch: the data path whose memory is O(batch).

Map-style data (:class:`IndexedImages`): the index is the row of the (memory-mapped) dataset; with ``flip`` the rows
``N..2N-1`` are the mirrors of ``0..N-1``, flipped when their batch is collated. Streamed data (:class:`IndexedStream`):
the index is the position in stream order, assigned before a seeded shuffle buffer reorders items, so it is the same
in every epoch and after a resume (the stream's own order is never shuffled); a mirror of position ``i`` is
``capacity + i``; each rank and DataLoader worker reads only its own shards of the stream where their lengths are
known (:mod:`.stream_shards`). Images are decoded in :class:`IndexedCollator`, i.e. in the DataLoader's workers.
"""
from __future__ import annotations

import itertools
import logging
import random

import torch

from .datasets import ImageCollator
from .stream_shards import layout_for_ranks, rows

logger = logging.getLogger(__name__)


class IndexedImages(torch.utils.data.Dataset):
    """Dataset items with their index; with ``flip``, items ``N..2N-1`` are the mirror images of ``0..N-1``."""

    def __init__(self, dataset, flip: bool = False) -> None:
        self.dataset, self.flip = dataset, flip

    def __len__(self) -> int:
        return len(self.dataset) * (2 if self.flip else 1)

    def __getitem__(self, i: int) -> dict:
        n = len(self.dataset)
        return {"example": self.dataset[i % n], "index": i, "flip": i >= n}


class IndexedStream(torch.utils.data.IterableDataset):
    """A stream's first ``capacity`` items with their stream position as index (mirrors at ``capacity + i``),
    reordered by a shuffle buffer of ``buffer_size`` seeded by ``seed``, the epoch (:meth:`set_epoch`) and the rank.

    Data parallel: rank ``rank`` of ``num_ranks`` (and each DataLoader worker within it) reads only its own shards of
    a ``datasets`` stream when their lengths are known without reading them (:func:`~.stream_shards.stream_layout`:
    parquet row counts from the footers, in-memory shards; parquet files that do not divide among the ranks are
    split into row groups): rank ``r`` reads shards ``s % num_ranks == r``, as
    ``datasets.distributed.split_dataset_by_node`` assigns them, and its ``K`` workers split those shards again
    (``rank_shards[w::K]``; a rank with fewer shards than workers splits its shards' examples, ``k % K == w``). An
    example's index is its shard's offset plus its place in the shard: the position it has in the whole stream, the
    same for any number of ranks and workers and after a resume, and a shard that holds another number of examples
    than its footer declares is an error. Shards at or past ``capacity`` (or a ``take(n)``) are never opened.

    Read-and-skip otherwise (shards of unknown length, e.g. image folders, which ``datasets`` streams as one shard;
    or a shard count that ``num_ranks`` does not divide, where ``split_dataset_by_node`` also skips examples): every
    rank reads the whole stream and keeps the positions ``p % num_ranks == rank``, its worker ``w`` of ``K`` those
    with ``(p // num_ranks) % K == w`` (rank 0 says so in one line). In every case the ranks' workers cover every
    position once. One reader (one rank, no workers) reads the stream in its own order, as before sharding.
    """

    def __init__(self, stream, capacity: int | None = None, flip: bool = False, buffer_size: int = 0,
                 seed: int = 0, rank: int = 0, num_ranks: int = 1) -> None:
        import multiprocessing

        if flip and capacity is None:
            raise ValueError("mirrored stream items need a capacity (the index of a mirror is capacity + position)")
        if not 0 <= rank < num_ranks:
            raise ValueError(f"need 0 <= rank < num_ranks, got rank {rank} of {num_ranks}")
        self.stream, self.capacity, self.flip, self.buffer_size, self.seed = stream, capacity, flip, buffer_size, seed
        self.rank, self.num_ranks = rank, num_ranks
        self.epoch = 0
        self.layout = layout_for_ranks(stream, num_ranks)
        self._read = multiprocessing.Value("q", 0)
        if num_ranks > 1 and rank == 0 and self.rank_shards() is None:
            logger.warning("every process reads the whole stream and keeps its own positions: %s",
                           "its shards' lengths are unknown without reading them" if self.layout is None else
                           f"its {self.layout.num_shards} shard(s) do not divide among {num_ranks} processes")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def examples_read(self) -> int:
        """Examples this object has taken from the stream so far, skipped ones included (in any process)."""
        return int(self._read.value)

    @property
    def cut(self) -> int | None:
        """Positions at or past this one are never read: ``capacity``, or the stream's own ``take(n)`` if smaller."""
        limits = [n for n in (self.capacity, self.layout.limit if self.layout else None) if n is not None]
        return min(limits) if limits else None

    def rank_shards(self) -> list[int] | None:
        """The shards this rank reads (those before :attr:`cut`), or None when it reads the whole stream."""
        if self.layout is None or self.layout.num_shards % self.num_ranks:
            return None
        cut = self.cut
        return [s for s in range(self.rank, self.layout.num_shards, self.num_ranks)
                if cut is None or self.layout.offsets[s] < cut]

    def _counted(self, examples):
        count = 0
        try:
            for example in examples:
                count += 1
                if count == 64:
                    with self._read.get_lock():
                        self._read.value += count
                    count = 0
                yield example
        finally:
            with self._read.get_lock():
                self._read.value += count

    def _shard(self, shard: int):
        """``(position, example)`` of one shard, read alone and no further than :attr:`cut`; a shard read to its end
        must hold the number of examples its metadata declares."""
        offset, length, cut = self.layout.offsets[shard], self.layout.lengths[shard], self.cut
        wanted = length if cut is None else min(length, cut - offset)
        count = 0
        if wanted <= 0:
            return
        for example in self._counted(self.layout.shard_examples(shard)):
            if count == length:
                count += 1
                break
            yield offset + count, example
            count += 1
            if count == wanted < length:
                return
        if count != length:
            raise ValueError(f"shard {shard} of the stream held {'more than ' if count > length else ''}"
                             f"{min(count, length)} examples where its metadata declares {length}: its stream "
                             f"positions (latent rows) would be wrong")

    def _own_examples(self, workers: int, worker: int):
        """``(position, example)`` for the positions this rank's worker ``worker`` of ``workers`` owns."""
        shards = self.rank_shards()
        if shards is None or self.num_ranks * workers == 1:  # read-and-skip (or the one reader: the whole stream)
            cut = self.cut
            for position, example in enumerate(self._counted(rows(self.stream))):
                if cut is not None and position >= cut:
                    break
                if position % self.num_ranks == self.rank and (position // self.num_ranks) % workers == worker:
                    yield position, example
        elif len(shards) >= workers:
            for shard in shards[worker::workers]:
                yield from self._shard(shard)
        else:
            own = itertools.chain.from_iterable(self._shard(shard) for shard in shards)
            for k, item in enumerate(own):
                if k % workers == worker:
                    yield item

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        rng = random.Random(f"{self.seed}:{self.epoch}:{self.rank}:{worker}")  # str seeds hash the same everywhere
        buffer: list[dict] = []
        for position, example in self._own_examples(workers, worker):
            items = [{"example": example, "index": position, "flip": False}]
            if self.flip:
                items.append({"example": example, "index": self.capacity + position, "flip": True})
            for item in items:
                if self.buffer_size <= 1:
                    yield item
                elif len(buffer) < self.buffer_size:
                    buffer.append(item)
                else:
                    slot = rng.randrange(self.buffer_size)
                    yield buffer[slot]
                    buffer[slot] = item
        rng.shuffle(buffer)
        yield from buffer


class IndexedCollator:
    """``(images (B, C, R, R), indices (B,))`` from indexed items: unreadable images are left out and counted in
    :attr:`skipped` (a counter in shared memory, so DataLoader worker processes count into it too)."""

    def __init__(self, collate: ImageCollator) -> None:
        import multiprocessing

        self.collate = collate
        self._skipped = multiprocessing.Value("q", 0)

    @property
    def skipped(self) -> int:
        """Unreadable images met so far (counted each time one is met, in any process)."""
        return int(self._skipped.value)

    def __call__(self, items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        images, indices, before = [], [], self.collate.skipped
        for item in items:
            image = self.collate([item["example"]])
            if image.shape[0]:
                images.append(image.flip(-1) if item["flip"] else image)
                indices.append(item["index"])
        if self.collate.skipped != before:
            with self._skipped.get_lock():
                self._skipped.value += self.collate.skipped - before
        if not images:
            return self.collate([]), torch.zeros(0, dtype=torch.long)
        return torch.cat(images), torch.tensor(indices, dtype=torch.long)


def loader_options(device: torch.device | str, num_workers: int) -> dict:
    """DataLoader keyword arguments for ``device``: ``num_workers`` decoding processes, and pinned host memory when
    the batches go to CUDA (asynchronous copies)."""
    return {"num_workers": num_workers, "pin_memory": torch.device(device).type == "cuda"}


__all__ = ["IndexedCollator", "IndexedImages", "IndexedStream", "loader_options"]
