"""What each of 2 ranks reads of a streamed dataset, read-and-skip (every rank reads the whole stream and keeps its
own positions: the trainer before sharded reading) against sharded (each rank opens only its own shards:
``qiren_gen.data.indexed.IndexedStream``), side by side in one run.

Data: synthetic Hub-layout parquet sets of 64x64 RGB PNGs (``benchmarks.data_scale.make_parquet_set``) in 8 files;
in 3 files (which 2 ranks do not divide: both read the last), once with one row group per file and once with row
groups of 100 rows (one shard per row group); and the same PNGs as an image folder (one shard to ``datasets``, so
read-and-skip either way; its stream carries paths, and a rank opens only its own images, in the collator).
Both ranks run in this process, one after the other (``rank=0/1, num_ranks=2``), with no DataLoader workers, so the
bytes a rank reads are this process's ``rchar`` (``/proc/self/io``: every byte read through a read call, page
cache included) over building the stream and one pass over it; images are not decoded. Wall times are medians.
"""
from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import torch

from qiren_gen.data.datasets import load_image_dataset
from qiren_gen.data.indexed import IndexedStream

from .data_scale import make_parquet_set


def read_bytes() -> int:
    """Bytes this process has read through read calls so far (``rchar``; page-cache hits included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise OSError("no rchar in /proc/self/io")


def one_rank(stream_factory, rank: int, read_shards: bool, workers: int = 0) -> dict:
    """One pass of rank ``rank`` of 2 over a fresh stream: examples taken, bytes read, seconds, positions kept."""
    source = stream_factory()  # loading reads the first example (an empty dataset is refused): not counted
    before, start = read_bytes(), time.perf_counter()
    stream = IndexedStream(source, rank=rank, num_ranks=2, read_shards=read_shards)  # footers: counted
    if workers:
        loader = torch.utils.data.DataLoader(stream, batch_size=64, num_workers=workers, collate_fn=lambda b: b)
        kept = sum(len(batch) for batch in loader)
    else:
        kept = sum(1 for _ in stream)
    seconds = time.perf_counter() - start
    return {"examples": stream.examples_read, "bytes": read_bytes() - before, "seconds": seconds, "kept": kept,
            "shards": stream.rank_shards(), "shared": stream.shared_shards(),
            "num_shards": stream.layout.num_shards if stream.layout else None}


def _ranges(shards: list[int]) -> str:
    """``[0, 2, 4, 6]`` -> ``0,2..6``: a rank's shards (every other one) in a few characters."""
    if len(shards) <= 3:
        return ",".join(map(str, shards))
    return f"{shards[0]},{shards[1]}..{shards[-1]}"


def compare(name: str, stream_factory, repeats: int, say=print) -> dict:
    """Read-and-skip against sharded for ranks 0 and 1, alternating, ``repeats`` times; prints one block."""
    runs = {(mode, rank): [] for mode in (False, True) for rank in (0, 1)}
    for _ in range(repeats):
        for mode in (False, True):
            for rank in (0, 1):
                runs[mode, rank].append(one_rank(stream_factory, rank, mode))
    say(f"\n{name}")
    say(f"  {'reading':<14}{'rank':>5}{'kept':>7}{'examples read':>15}{'MB read':>10}{'median s':>10}  shards")
    summary = {}
    for mode in (False, True):
        for rank in (0, 1):
            r = runs[mode, rank]
            last = r[-1]
            seconds = statistics.median(x["seconds"] for x in r)
            summary[mode, rank] = {**last, "seconds": seconds}
            shards = ("whole stream, keeps p % 2 == rank" if last["shards"] is None else
                      f"{_ranges(last['shards'])} of {last['num_shards']}"
                      + (f", shared {_ranges(last['shared'])}" if last["shared"] else ""))
            say(f"  {'sharded' if mode else 'read-and-skip':<14}{rank:>5}{last['kept']:>7}{last['examples']:>15}"
                f"{last['bytes'] / 1e6:>10.2f}{seconds:>10.3f}  {shards}")
    for rank in (0, 1):
        skip, shard = summary[False, rank], summary[True, rank]
        say(f"  rank {rank}: sharded reads {shard['bytes'] / max(skip['bytes'], 1):.2f}x the bytes, "
            f"{shard['examples'] / max(skip['examples'], 1):.2f}x the examples, "
            f"{shard['seconds'] / skip['seconds']:.2f}x the time of read-and-skip")
    return summary


def workers_block(name: str, stream_factory, say=print) -> None:
    """Examples taken from the stream by 2 ranks x 2 DataLoader workers (shared counter), both ways."""
    say(f"\n{name}, 2 DataLoader workers per rank (examples taken from the stream by the rank's workers together)")
    for mode in (False, True):
        counts = [one_rank(stream_factory, rank, mode, workers=2) for rank in (0, 1)]
        say(f"  {'sharded' if mode else 'read-and-skip':<14} rank 0: {counts[0]['examples']:>5} read, "
            f"{counts[0]['kept']:>5} kept   rank 1: {counts[1]['examples']:>5} read, {counts[1]['kept']:>5} kept")


def benchmark_stream_reading(work_dir: str | Path, images: int = 2000, repeats: int = 3, say=print) -> None:
    datasets.disable_progress_bars()
    logging.getLogger("qiren_gen.data.indexed").setLevel(logging.ERROR)  # the table says what each rank reads
    work_dir = Path(work_dir)
    eight = make_parquet_set(work_dir / f"parquet-{images}-8", images, shard_rows=(images + 7) // 8)
    three = make_parquet_set(work_dir / f"parquet-{images}-3", images, shard_rows=(images + 2) // 3)
    groups = work_dir / f"parquet-{images}-3-rowgroups-100"
    if not (groups / "complete").is_file():  # the same 3 files, in row groups of 100 rows
        (groups / "data").mkdir(parents=True, exist_ok=True)
        for path in sorted((three / "data").glob("*.parquet")):
            pq.write_table(pq.read_table(path), groups / "data" / path.name, row_group_size=100)
        (groups / "complete").write_text("")
    folder = work_dir / f"folder-{images}"
    if not (folder / "complete").is_file():
        (folder / "train").mkdir(parents=True, exist_ok=True)
        source = load_image_dataset(dataset_name=str(eight), streaming=True)
        for i, example in enumerate(source):
            (folder / "train" / f"{i:06d}.png").write_bytes(example["image"]["bytes"])
        (folder / "complete").write_text("")
    megabytes = sum(p.stat().st_size for p in (eight / "data").glob("*.parquet")) / 1e6
    say(f"{images} 64x64 RGB PNGs, {megabytes:.1f} MB of parquet; 2 ranks, in one process, one after the other; "
        f"MB read = rchar (read calls, page cache included); {repeats} repeats, median seconds")
    compare("parquet, 8 files", lambda: load_image_dataset(dataset_name=str(eight), streaming=True), repeats, say)
    compare("parquet, 3 files of one row group (2 ranks do not divide them: both read the last file)",
            lambda: load_image_dataset(dataset_name=str(three), streaming=True), repeats, say)
    compare("parquet, the same 3 files in row groups of 100 rows (one shard per row group: 21)",
            lambda: load_image_dataset(dataset_name=str(groups), streaming=True), repeats, say)
    compare("image folder (1 shard to datasets: the stream carries paths; the images are opened by the collator)",
            lambda: load_image_dataset(data_dir=str(folder), streaming=True), repeats, say)
    workers_block("parquet, 8 files", lambda: load_image_dataset(dataset_name=str(eight), streaming=True), say)


__all__ = ["benchmark_stream_reading", "compare", "one_rank", "read_bytes"]
