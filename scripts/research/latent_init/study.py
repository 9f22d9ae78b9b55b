"""Where should a fine-tuned auto-decoded table start each new image's latent? Fine-tune the bundled pipeline with
``scripts/train_pipeline.py`` once per ``--latent_init`` (a few Adam encoding steps on first visit, the prior's
mean latent, zeros) on the same faces and compare the reconstruction PSNR of held-out faces before / after.

Data: LFW faces 0-79 (``skimage``'s ``lfw_subset``) train, faces 90-99 are held out (the bundled pipeline never
trained on them); they are written so that the held-out faces come first (``--validation_images`` takes those).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.data import lfw_subset

import train_pipeline

VARIANTS = {"encode-10": ["--latent_init", "encode", "--latent_init_steps", "10"],
            "encode-3": ["--latent_init", "encode", "--latent_init_steps", "3"],
            "mean": ["--latent_init", "mean"],
            "zero": ["--latent_init", "zero"]}


def write_faces(folder: Path, train: range = range(80), heldout: range = range(90, 100)) -> Path:
    """Held-out faces as ``a_*.png`` (first in the folder's order), training faces as ``b_*.png``."""
    faces = lfw_subset()
    (folder / "train").mkdir(parents=True, exist_ok=True)
    for prefix, indices in (("a", heldout), ("b", train)):
        for i in indices:
            pixels = np.clip(np.rint(faces[i] * 255), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / "train" / f"{prefix}_{i:03d}.png")
    return folder


def compare_latent_inits(work_dir: str | Path, pipeline: str, steps: int = 40, batch_size: int = 16,
                         variants: list[str] | None = None, say=print) -> list[dict]:
    """One fine-tuning run per variant (same data, seed and steps); returns rows of PSNR before / after and time."""
    torch.set_num_threads(1)
    work_dir = Path(work_dir)
    data = write_faces(work_dir / "faces")
    rows = []
    for name in variants or list(VARIANTS):
        out = work_dir / f"run-{name}"
        summary_file = out / "train_pipeline_summary.json"
        if not summary_file.is_file():
            began = time.perf_counter()
            code = train_pipeline.main([
                "--pretrained_model_name_or_path", pipeline, "--train_data_dir", str(data), "--output_dir",
                str(out), "--max_train_steps", str(steps), "--train_batch_size", str(batch_size),
                "--checkpointing_steps", str(steps), "--prior_max_train_steps", "10",
                "--validation_steps", str(10 * steps), "--validation_images", "10", "--psnr_images", "16",
                "--learning_rate", "1e-3", "--seed", "0", *VARIANTS[name]])
            if code:
                raise RuntimeError(f"fine-tuning with {name} failed (exit {code})")
            wall = time.perf_counter() - began
        else:
            wall = float("nan")
        summary = json.loads(summary_file.read_text())
        psnr = summary["psnr"]
        row = {"latent_init": name, "heldout_before": psnr["heldout_before"], "heldout_after": psnr["heldout_after"],
               "train_before": psnr["train_before"], "train_after": psnr["train_after"],
               "last_stage1_psnr": summary["validation"][-1].get("heldout_psnr") if summary["validation"] else None,
               "median_step_seconds": summary["seconds"]["median_stage1_step"], "wall_seconds": wall}
        rows.append(row)
        say(json.dumps(row))
    say("| --latent_init | held-out before | held-out after | training (16) before | after | median step |")
    say("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        say(f"| {r['latent_init']} | {r['heldout_before']:.2f} | {r['heldout_after']:.2f} | {r['train_before']:.2f} | "
            f"{r['train_after']:.2f} | {r['median_step_seconds']:.2f} s |")
    return rows


__all__ = ["VARIANTS", "compare_latent_inits", "write_faces"]
