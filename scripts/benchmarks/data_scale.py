"""How ``scripts/train_pipeline.py`` scales with the dataset: peak RSS and wall time at several dataset sizes, plain
(memory-mapped Arrow) and ``--streaming``, from scratch (the README's FFHQ recipe decoder) and fine-tuning the bundled
pipeline, each in its own subprocess, side by side; then the loader's images/s against the stage-1 step's.

Data: synthetic Hub-layout parquet sets (``data/train-XXXXX-of-YYYYY.parquet``, an ``image`` column of RGB PNGs,
1,000 rows a shard), made once under ``work_dir`` and reused. Runs are offline (``HF_HUB_OFFLINE=1``).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image

from qiren_gen.data.datasets import IMAGE_COLUMN, ImageCollator, load_image_dataset
from qiren_gen.data.grids import image_grid
from qiren_gen.data.indexed import IndexedCollator, IndexedImages
from qiren_gen.functa import per_image_mse
from qiren_gen.training.functa_trainer import FunctaTrainingConfig, LatentTable, build_models

REPO = Path(__file__).resolve().parents[2]
SCRATCH = ["--resolution", "64", "--channels", "3", "--decoder", "circuit_features", "--n_heads", "32", "--n_qubits",
           "2", "--frequency_init", "2", "--hidden_features", "128", "--hidden_layers", "3", "--modulation", "weight",
           "--latent_dim", "64", "--encoding", "auto_decode", "--latent_learning_rate", "1e-2", "--latent_l2", "1e-4"]
FINETUNE = ["--pretrained_model_name_or_path", str(REPO / "pipelines" / "qiren-lfw-faces"), "--resolution", "64",
            "--channels", "1"]


def _png(rng: np.random.Generator, size: int) -> bytes:
    """A smooth random colour field plus mild noise: a PNG of about the size of a real face crop (~8 KB at 64x64)."""
    y, x = np.mgrid[0:size, 0:size] / size
    f = rng.uniform(1, 4, (3, 2))
    phase = rng.uniform(0, 6.3, 3)
    base = np.stack([127 + 90 * np.sin(f[c, 0] * 6 * x + f[c, 1] * 6 * y + phase[c]) for c in range(3)], -1)
    pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def make_parquet_set(root: Path, n: int, size: int = 64, shard_rows: int = 1000, seed: int = 0) -> Path:
    """``root`` as a Hub dataset repo of ``n`` ``size``x``size`` RGB PNGs (reused when already complete)."""
    done = root / "complete.json"
    if done.is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    shards = (n + shard_rows - 1) // shard_rows
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    for s in range(shards):
        rows = range(s * shard_rows, min(n, (s + 1) * shard_rows))
        table = {"image": [{"bytes": _png(rng, size), "path": None} for _ in rows], "label": [i % 2 for i in rows]}
        datasets.Dataset.from_dict(table, features=features).to_parquet(
            str(root / "data" / f"train-{s:05d}-of-{shards:05d}.parquet"))
    size_bytes = sum(p.stat().st_size for p in (root / "data").glob("*.parquet"))
    done.write_text(json.dumps({"images": n, "bytes": size_bytes}))
    return root


def run_trainer(data: Path, out: Path, n: int, streaming: bool, finetune: bool, steps: int = 10) -> dict:
    """One ``scripts/train_pipeline.py`` run in a subprocess: its peak RSS (GB), wall time (s) and summary."""
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache = out.parent / f"{out.name}-cache"
    shutil.rmtree(cache, ignore_errors=True)
    args = [sys.executable, str(REPO / "scripts" / "train_pipeline.py"), "--dataset_name", str(data),
            "--output_dir", str(out), "--cache_dir", str(cache), "--train_batch_size", "16",
            "--max_train_steps", str(steps), "--checkpointing_steps", str(steps), "--prior_max_train_steps",
            str(steps), "--prior_checkpointing_steps", str(steps), "--prior_train_batch_size", "64",
            "--validation_steps", "100000", "--validation_images", "2", "--psnr_images", "2",
            "--eval_encode_steps", "10", *(FINETUNE if finetune else SCRATCH)]
    if streaming:
        args += ["--streaming", "--max_train_samples", str(n)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    began = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode:
        tail = (out.parent / f"{out.name}.log").read_text()[-1500:]
        raise RuntimeError(f"train_pipeline failed ({proc.returncode}) for {out.name}:\n{tail}")
    summary = json.loads((out / "train_pipeline_summary.json").read_text())
    return {"peak_rss_gb": usage.ru_maxrss / 2**20, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "median_step_s": summary["seconds"]["median_stage1_step"],
            "step_cpu_s": summary["seconds"]["stage1_cpu_per_step"]}


def loader_images_per_second(data: Path, resolution: int, workers: int, images: int = 800) -> float:
    """Images/s of the stage-1 DataLoader (memory-mapped rows, decoded + resized per batch of 16)."""
    ds = load_image_dataset(str(data), cache_dir=str(data.parent / f"{data.name}-loader-cache"))
    ds = ds.select(range(min(images, len(ds))))
    loader = torch.utils.data.DataLoader(IndexedImages(ds), batch_size=16, shuffle=True, num_workers=workers,
                                         collate_fn=IndexedCollator(ImageCollator(IMAGE_COLUMN, resolution, 3)))
    began, count = time.perf_counter(), 0
    for batch, _ in loader:
        count += batch.shape[0]
    return count / (time.perf_counter() - began)


def step_images_per_second(resolution: int, steps: int = 3, batch: int = 16) -> float:
    """Images/s of one stage-1 step of the README's FFHQ decoder (auto-decoded latents, batch 16): the median step."""
    torch.manual_seed(0)
    cfg = FunctaTrainingConfig(resolution=resolution, channels=3, decoder="circuit_features", n_heads=32, n_qubits=2,
                               frequency_init=2.0, hidden_features=128, hidden_layers=3, modulation="weight",
                               latent_dim=64, encoding="auto_decode")
    decoder, modulator = build_models(cfg)
    decoder.set_engine("fused")
    table = LatentTable(batch, 64)
    optimizer = torch.optim.Adam([*decoder.parameters(), *modulator.parameters(), table.latents], lr=1e-3)
    coords = image_grid(resolution, resolution)
    targets = torch.rand(batch, resolution * resolution, 3) * 2 - 1
    times = []
    for _ in range(steps + 1):
        began = time.perf_counter()
        mse = per_image_mse(decoder, modulator, table.latents, coords, targets, decoder.reference_statistics())
        (mse.sum() + 1e-4 * table.latents.square().sum()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - began)
    return batch / sorted(times[1:])[len(times[1:]) // 2]


def benchmark_data_scale(work_dir: str | Path, sizes: tuple[int, ...] = (1000, 8000, 20000), steps: int = 10,
                         modes: tuple[str, ...] = ("scratch", "finetune"), loaders: bool = True, say=print) -> dict:
    """Every (mode, size, plain / streamed) run, then the loader-vs-step throughput; prints a table and the targets."""
    torch.set_num_threads(1)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    saved = work_dir / "results.json"
    previous = json.loads(saved.read_text())["runs"] if saved.is_file() else []
    results: dict = {"runs": [], "throughput": []}
    for n in sizes:
        data = make_parquet_set(work_dir / f"set-{n}", n)
        info = json.loads((data / "complete.json").read_text())
        say(f"data: {n} images, {info['bytes'] / n / 1024:.1f} KB per image in parquet")
        for mode in modes:
            for streaming in (False, True):
                name = f"{mode}-{n}-{'streamed' if streaming else 'plain'}"
                key = {"mode": mode, "images": n, "streaming": streaming, "steps": steps}
                row = next((r for r in previous if all(r.get(k) == v for k, v in key.items())), None)
                if row is None:  # runs of an interrupted benchmark are kept (same settings), the rest are run
                    row = {**key, **run_trainer(data, work_dir / "runs" / name, n, streaming, mode == "finetune",
                                                steps)}
                results["runs"].append(row)
                say(json.dumps(row))
                (work_dir / "results.json").write_text(json.dumps(results, indent=2))
    if loaders:
        small = make_parquet_set(work_dir / "set-1000", 1000)
        big = make_parquet_set(work_dir / "set-1000-128px", 1000, size=128)
        for resolution, data in ((64, small), (128, big)):
            step = step_images_per_second(resolution)
            for workers in (0, 2):
                rate = loader_images_per_second(data, resolution, workers)
                row = {"resolution": resolution, "workers": workers, "loader_images_per_s": rate,
                       "step_images_per_s": step, "ratio": rate / step}
                results["throughput"].append(row)
                say(json.dumps(row))
        (work_dir / "results.json").write_text(json.dumps(results, indent=2))
    report(results, say)
    return results


def report(results: dict, say=print) -> None:
    """The side-by-side table and each target of the issue, measured in this run."""
    runs = results["runs"]
    say("\n| run | images | peak RSS plain / streamed (GB) | wall plain / streamed (s) | median step (s) |")
    say("|---|---:|---:|---:|---:|")
    for mode in ("scratch", "finetune"):
        for n in sorted({r["images"] for r in runs if r["mode"] == mode}):
            pair = {r["streaming"]: r for r in runs if r["mode"] == mode and r["images"] == n}
            if len(pair) == 2:
                say(f"| {mode} | {n} | {pair[False]['peak_rss_gb']:.2f} / {pair[True]['peak_rss_gb']:.2f} | "
                    f"{pair[False]['wall_s']:.0f} / {pair[True]['wall_s']:.0f} | "
                    f"{pair[False]['median_step_s']:.2f} / {pair[True]['median_step_s']:.2f} |")

    def get(mode, n, streaming):
        return next((r for r in runs if (r["mode"], r["images"], r["streaming"]) == (mode, n, streaming)), None)

    sizes = sorted({r["images"] for r in runs})
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        a, b = get("scratch", lo, True), get("scratch", hi, True)
        if a and b:
            say(f"scratch streamed {lo} -> {hi}: peak RSS +{b['peak_rss_gb'] - a['peak_rss_gb']:.3f} GB "
                f"(target <= 0.25), wall x{b['wall_s'] / a['wall_s']:.2f} (target <= 1.3), CPU time "
                f"x{b['cpu_s'] / a['cpu_s']:.2f} (wall follows the machine's load, CPU time the work)")
            per_image = max(0.0, (b["peak_rss_gb"] - a["peak_rss_gb"]) / (hi - lo))
            say(f"projected peak RSS at 70k images (scratch streamed, from the measured growth): "
                f"{b['peak_rss_gb'] + per_image * (70000 - hi):.2f} GB (target <= 4)")
        for streaming in (False, True):
            a, b = get("finetune", lo, streaming), get("finetune", hi, streaming)
            if a and b:
                say(f"fine-tune {'streamed' if streaming else 'plain'} {hi}: {b['wall_s']:.0f} s (target <= 180), "
                    f"x{b['wall_s'] / a['wall_s']:.2f} the {lo} run (target <= 1.3; CPU time "
                    f"x{b['cpu_s'] / a['cpu_s']:.2f})")
    for row in results["throughput"]:
        say(f"loader {row['resolution']}x{row['resolution']}, {row['workers']} workers: "
            f"{row['loader_images_per_s']:.0f} images/s vs stage-1 step {row['step_images_per_s']:.1f} images/s: "
            f"x{row['ratio']:.0f} (target >= 3)")


__all__ = ["benchmark_data_scale", "loader_images_per_second", "make_parquet_set", "report", "run_trainer",
           "step_images_per_second"]
