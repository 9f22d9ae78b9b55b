"""Training items with a stable index per image, decoded per batch: the data path whose memory is O(batch).

Map-style data (`IndexedImages`): the index is the row of the (memory-mapped) dataset; with ``flip`` the rows
``N..2N-1`` are the mirrors of ``0..N-1``, flipped when their batch is collated. Streamed data (`IndexedStream`):
the index is the position in stream order, assigned before a seeded shuffle buffer reorders items, so it is the same
in every epoch and after a resume (the stream's own order is never shuffled); a mirror of position ``i`` is
``capacity + i``; each rank and DataLoader worker reads only its own shards of the stream where their lengths are
known (`stream_shards`). Images are decoded in `IndexedCollator`, i.e. in the DataLoader's workers.
"""
from __future__ import annotations

import logging
import multiprocessing
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
    reordered by a shuffle buffer of ``buffer_size`` seeded by ``seed``, the epoch (`set_epoch`) and the rank.

    Data parallel, when the lengths of a ``datasets`` stream's shards are known without reading them
    (`stream_layout`: parquet row counts from the footers, in-memory shards; parquet files that
    do not divide among the ranks become one shard per row group): of the ``S`` shards before `cut`, the first
    ``S - S % num_ranks`` are assigned as ``datasets.distributed.split_dataset_by_node`` assigns them, shard ``s`` to
    rank ``s % num_ranks``, and each rank opens only its own; the last ``S % num_ranks`` (none when ``num_ranks``
    divides ``S``) are read by every rank, which keeps their positions ``p % num_ranks == rank`` (``datasets`` would
    read and skip the whole stream). A rank's ``K`` DataLoader workers split its shards, own and shared, again
    (``[w::K]``; with fewer shards than workers, their examples, ``k % K == w``). An example's index is its shard's
    offset plus its place in the shard: its position in the whole stream, the same for any number of ranks and
    workers and after a resume; a shard that holds another number of examples than declared is an error. Shards at
    or past ``capacity`` (or the stream's ``take(n)``) are never opened.

    Otherwise (shards of unknown length, e.g. image folders, which ``datasets`` streams as one shard; or fewer shards
    than ranks) every rank reads the whole stream and keeps the positions ``p % num_ranks == rank``, its worker ``w``
    of ``K`` those with ``(p // num_ranks) % K == w``. Rank 0 says in one line when a rank reads more than its own
    shards. In every case the ranks' workers cover every position once. One reader (one rank, no workers) reads the
    stream in its own order, as before sharded reading; ``read_shards=False`` always reads and skips (the behaviour
    before sharded reading, which the stream-reading benchmark compares against).
    """

    def __init__(self, stream, capacity: int | None = None, flip: bool = False, buffer_size: int = 0,
                 seed: int = 0, rank: int = 0, num_ranks: int = 1, read_shards: bool = True) -> None:
        if flip and capacity is None:
            raise ValueError("mirrored stream items need a capacity (the index of a mirror is capacity + position)")
        if not 0 <= rank < num_ranks:
            raise ValueError(f"need 0 <= rank < num_ranks, got rank {rank} of {num_ranks}")
        self.stream, self.capacity, self.flip, self.buffer_size, self.seed = stream, capacity, flip, buffer_size, seed
        self.rank, self.num_ranks = rank, num_ranks
        self.epoch = 0
        self.layout = layout_for_ranks(stream, num_ranks) if read_shards else None
        self._read = multiprocessing.Value("q", 0)
        if num_ranks > 1 and rank == 0 and read_shards:
            self._say_what_is_read()

    def _say_what_is_read(self) -> None:
        if self.rank_shards() is None:
            reason = ("its shards' lengths are unknown without reading them" if self.layout is None else
                      f"it has fewer shards ({len(self._live_shards())} before the cut) than processes")
            logger.warning("every process reads the whole stream and keeps its own positions: %s", reason)
        elif self.shared_shards():
            shared = self.shared_shards()
            examples = sum(self.layout.lengths[s] for s in shared)
            logger.warning("the stream's shards do not divide among %d processes: every process reads the last %d "
                           "(%d examples) and keeps its own positions of them", self.num_ranks, len(shared), examples)

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

    def _live_shards(self) -> list[int]:
        cut = self.cut
        return [s for s in range(self.layout.num_shards) if cut is None or self.layout.offsets[s] < cut]

    def rank_shards(self) -> list[int] | None:
        """The shards only this rank reads (``s % num_ranks == rank`` of those before `cut` that divide among
        the ranks), or None when every rank reads the whole stream."""
        if self.layout is None:
            return None
        live = self._live_shards()
        own = live[: len(live) - len(live) % self.num_ranks][self.rank :: self.num_ranks]
        return own or None

    def shared_shards(self) -> list[int]:
        """The last shards before `cut` that do not divide among the ranks: every rank reads them and keeps
        its positions ``p % num_ranks == rank`` (empty when the ranks read the whole stream or divide the shards)."""
        if self.rank_shards() is None:
            return []
        live = self._live_shards()
        return live[len(live) - len(live) % self.num_ranks :]

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
        """``(position, example)`` of one shard, read alone and no further than `cut`; a shard read to its end
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
        own = self.rank_shards()
        if own is None or self.num_ranks * workers == 1:  # read-and-skip (or the one reader: the whole stream)
            cut = self.cut
            for position, example in enumerate(self._counted(rows(self.stream))):
                if cut is not None and position >= cut:
                    break
                if position % self.num_ranks == self.rank and (position // self.num_ranks) % workers == worker:
                    yield position, example
            return
        shards = [(shard, False) for shard in own] + [(shard, True) for shard in self.shared_shards()]

        def mine(shard_list):
            for shard, shared in shard_list:
                for position, example in self._shard(shard):
                    if not shared or position % self.num_ranks == self.rank:
                        yield position, example

        if len(shards) >= workers:
            yield from mine(shards[worker::workers])
        else:
            for k, item in enumerate(mine(shards)):
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
    `skipped` (a counter in shared memory, so DataLoader worker processes count into it too)."""

    def __init__(self, collate: ImageCollator) -> None:
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
