"""Training items with a stable index per image, decoded per batch: the data path whose memory is O(batch).

Map-style data (:class:`IndexedImages`): the index is the row of the (memory-mapped) dataset; with ``flip`` the rows
``N..2N-1`` are the mirrors of ``0..N-1``, flipped when their batch is collated. Streamed data (:class:`IndexedStream`):
the index is the position in stream order, assigned before a seeded shuffle buffer reorders items, so it is the same
in every epoch and after a resume (the stream's own order is never shuffled); a mirror of position ``i`` is
``capacity + i``. Images are decoded in :class:`IndexedCollator`, i.e. in the DataLoader's workers.
"""
from __future__ import annotations

import random

import torch

from .datasets import ImageCollator


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

    Data parallel: rank ``rank`` of ``num_ranks`` keeps the positions ``p % num_ranks == rank`` (every rank reads
    the stream's bytes, decodes only its own). With DataLoader workers, worker ``w`` of ``K`` keeps, of those,
    ``(p // num_ranks) % K == w``. Together the ranks' workers cover every position once, and indices stay stream
    positions.
    """

    def __init__(self, stream, capacity: int | None = None, flip: bool = False, buffer_size: int = 0,
                 seed: int = 0, rank: int = 0, num_ranks: int = 1) -> None:
        if flip and capacity is None:
            raise ValueError("mirrored stream items need a capacity (the index of a mirror is capacity + position)")
        if not 0 <= rank < num_ranks:
            raise ValueError(f"need 0 <= rank < num_ranks, got rank {rank} of {num_ranks}")
        self.stream, self.capacity, self.flip, self.buffer_size, self.seed = stream, capacity, flip, buffer_size, seed
        self.rank, self.num_ranks = rank, num_ranks
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _examples(self):
        """The stream in its own order, never sharded by ``datasets`` (``.iter`` ignores torch worker info)."""
        if hasattr(self.stream, "iter") and hasattr(self.stream, "column_names"):
            for batch in self.stream.iter(batch_size=32):
                keys = list(batch)
                for values in zip(*(batch[k] for k in keys)):
                    yield dict(zip(keys, values))
        else:
            yield from self.stream

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        rng = random.Random(f"{self.seed}:{self.epoch}:{self.rank}:{worker}")  # str seeds hash the same everywhere
        buffer: list[dict] = []
        for position, example in enumerate(self._examples()):
            if self.capacity is not None and position >= self.capacity:
                break
            if position % self.num_ranks != self.rank or (position // self.num_ranks) % workers != worker:
                continue
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
