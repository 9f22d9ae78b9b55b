"""The run around ``scripts/train_pipeline.py``'s two stages: the output-folder guard, the data (held-out split,
channels), validation and reports (held-out reconstruction PSNR, PNG grids, trackers, before / after lines) and the
model card. What each stage starts or resumes from (models, latents, checkpoints) is ``pipeline_stages``."""
from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import is_tensorboard_available
from diffusers.utils import make_image_grid
from PIL import Image

from ..data.datasets import IMAGE_COLUMN, declared_num_examples, decode_image, load_image_dataset
from ..functa import decode_latents, encode_images
from ..io.atomic import append_text, save_image
from ..metrics import psnr
from .outputs import LOCK_FILE

RUN_FILE = "train_pipeline.json"
"""Marks an ``--output_dir`` as made by ``train_pipeline`` (and with which data), so a rerun resumes it only."""

GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def check_output_dir(out: Path, resume: str | None, identity: dict) -> None:
    """Refuse an ``--output_dir`` under a file, holding a foreign pipeline or other files, or an earlier run of other
    settings; an earlier run of these settings needs ``--resume_from_checkpoint``. Nothing is written here."""
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise OSError(f"--output_dir {out}: '{parent}' is a file, not a folder")
    if not out.is_dir() or not any(p.name != LOCK_FILE for p in out.iterdir()):
        return
    marker = out / RUN_FILE
    if not marker.is_file():
        what = "a different pipeline" if (out / "model_index.json").is_file() else "files of something else"
        raise ValueError(f"--output_dir {out} holds {what} (no {RUN_FILE}); choose a new or empty folder")
    try:
        saved = json.loads(marker.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"--output_dir {out}: {RUN_FILE} is damaged; choose a new or empty folder") from None
    differs = [k for k in identity if saved.get(k) != identity[k]]
    if differs:
        raise ValueError(f"--output_dir {out} holds a run with another {differs[0]} ({saved.get(differs[0])!r}); "
                         "choose a new folder")
    if not resume:
        raise ValueError(f"--output_dir {out} holds an earlier run; pass --resume_from_checkpoint latest to continue "
                         "it, or choose a new folder")


def image_channels(value) -> int:
    """1 or 3: the channels of one undecoded ``datasets.Image`` value (or PIL image), from its mode."""
    if isinstance(value, Image.Image):
        return 1 if value.mode in GRAY_MODES else 3
    source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]
    with Image.open(source) as img:
        return 1 if img.mode in GRAY_MODES else 3


@dataclass
class TrainingData:
    """The training split (map-style rows past the held-out ones, memory-mapped; or the rest of a stream), and the
    only decoded images: the held-out ones and a fixed subset of training images for the before / after PSNR."""

    train: object
    heldout: torch.Tensor
    eval_train: torch.Tensor
    channels: int
    skipped: int
    description: str
    num_train: int | None
    streamed: bool
    resolution: int = 32
    heldout_names: list = field(default_factory=list)


START_SCAN_LIMIT = 1000
"""Images read from the start of the data at most to find the held-out and evaluation images."""
HEAD_SCAN_LIMIT = START_SCAN_LIMIT
"""Former name of ``START_SCAN_LIMIT``."""


def load_training_data(args, resolution: int, channels: int | None, heldout: int, eval_images: int = 16
                       ) -> TrainingData:
    """Load ``--dataset_name`` / ``--train_data_dir``; hold out the first ``heldout`` readable images and decode the
    first ``eval_images`` readable training images; nothing else is read or decoded here.

    Raises ``ValueError`` for no image column, no readable image at the start of the data, or too few images to hold
    some out. ``channels=None`` takes the data's own (gray or RGB, from the first readable image).
    """
    folder = Path(args.train_data_dir) if args.train_data_dir else None
    if folder is not None and folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
        raise ValueError(f"zero images: the folder '{args.train_data_dir}' holds no files")
    ds = load_image_dataset(args.dataset_name, args.train_data_dir, args.split, args.image_column, args.streaming,
                            args.cache_dir, args.max_train_samples)
    streamed = not hasattr(ds, "__len__")
    rows = iter(ds) if streamed else (ds[i] for i in range(len(ds)))
    held, evals, skipped, consumed, detected = [], [], 0, 0, channels
    held_names: list[str] = []
    unreadable: dict[str, str] = {}  # the first unreadable file (or row) for each reason, in the order met
    read = 0
    for example in itertools.islice(rows, START_SCAN_LIMIT):
        read += 1
        value = example[IMAGE_COLUMN]
        if detected is None:
            try:
                detected = image_channels(value)
            except (OSError, ValueError, SyntaxError, KeyError):
                pass
        image, reason = _decoded(value, resolution, detected or 1)
        if len(held) < heldout:
            consumed += 1
        if image is None:
            skipped += 1
            unreadable.setdefault(reason, _where(value))
        elif len(held) < heldout:
            held.append(image)
            held_names.append(_where(value))
        else:
            evals.append(image)
        if len(held) >= heldout and len(evals) >= max(eval_images, 2):
            break
    channels = detected or 1
    if not held and not evals:
        scope = f"the first {read}" if read >= START_SCAN_LIMIT else f"all {read}"
        causes = "; ".join(f"{where}: {reason}" for reason, where in unreadable.items())
        raise ValueError(f"no readable image in the dataset ({scope} image(s) read, none readable"
                         f"{': ' + causes if causes else ''})")
    if heldout and len(held) + len(evals) < heldout + 2:
        raise ValueError(f"only {len(held) + len(evals)} readable image(s): need at least {heldout + 2} to hold "
                         f"{heldout} out (lower --validation_images)")
    empty = torch.empty(0, channels, resolution, resolution)
    if streamed:
        train = ds.skip(consumed) if consumed else ds
        total = args.max_train_samples if args.max_train_samples is not None else declared_num_examples(ds, args.split)
        num_train = None if total is None else total - consumed  # the card's num_examples when not given
    else:
        train = ds.select(range(consumed, len(ds))) if consumed else ds  # contiguous: no copy
        num_train = len(train)
    source = args.dataset_name or args.train_data_dir
    return TrainingData(train=train, heldout=torch.stack(held) if held else empty,
                        eval_train=torch.stack(evals[:eval_images]) if evals[:eval_images] else empty,
                        channels=channels, skipped=skipped, num_train=num_train, streamed=streamed,
                        resolution=resolution, heldout_names=held_names,
                        description=f"`{source}` (split `{args.split}`)")


def _decoded(value, resolution: int, channels: int) -> tuple[torch.Tensor | None, str]:
    """``(image, "")``, or ``(None, why)`` when unreadable (those are counted and reported once, not per image)."""
    try:
        return decode_image(value, resolution, channels), ""
    except (OSError, ValueError, SyntaxError) as exc:
        return None, " ".join(str(exc).split()) or type(exc).__name__


def _where(value) -> str:
    """The file of an undecoded image value, quoted, or ``a row`` (an image stored in the dataset itself)."""
    path = value.get("path") if isinstance(value, dict) else getattr(value, "filename", None)
    return f"'{path}'" if path else "a row"


def reconstruction_psnr(decoder, modulator, images: torch.Tensor, batch_size: int = 32,
                        steps: int | None = None) -> float | None:
    """Mean PSNR (dB, images in [-1, 1]) of ``images`` encoded (``steps``: the modulator's default) and decoded at
    their own size; None if no images."""
    if images.shape[0] == 0:
        return None
    values = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(next(decoder.parameters()).device)
        z = encode_images(decoder, modulator, batch, steps=steps)
        with torch.no_grad():
            rec = decode_latents(decoder, modulator, z, batch.shape[-2], batch.shape[-1])
        values.append(psnr(rec, batch, data_range=2.0, dim=(1, 2, 3), reduction="none").cpu())
    return float(torch.cat(values).mean())


def _to_pil(images: torch.Tensor):
    arrays = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a[:, :, 0] if a.shape[-1] == 1 else a) for a in arrays]


@dataclass
class Validator:
    """Every ``every`` steps (main process): held-out PSNR in the log and a PNG in ``out/samples/``."""

    out: Path
    every: int
    heldout: torch.Tensor
    stage1_steps: int
    accelerator: object
    seed: int = 0
    num_samples: int = 16
    encode_steps: int | None = None
    records: list = field(default_factory=list)

    def _log(self, record: dict) -> None:
        self.records.append(record)
        append_text(self.out / "train_log.jsonl", json.dumps(record) + "\n")
        step = record["step"] + (self.stage1_steps if record["stage"] == "stage2" else 0)
        self.accelerator.log({f"{record['stage']}/{k}": v for k, v in record.items()
                              if isinstance(v, float)}, step=step)
        self.accelerator.print(json.dumps(record))

    def stage1(self, decoder, modulator, step: int, final: bool = False) -> None:
        """Held-out reconstructions (top: faces, bottom: reconstructions) and their PSNR."""
        if not self.accelerator.is_main_process or (step % self.every and not final):
            return
        record = {"stage": "stage1", "step": step}
        if self.heldout.shape[0]:
            z = encode_images(decoder, modulator, self.heldout.to(next(decoder.parameters()).device),
                              steps=self.encode_steps)
            with torch.no_grad():
                rec = decode_latents(decoder, modulator, z, *self.heldout.shape[-2:]).cpu()
            record["heldout_psnr"] = float(psnr(rec, self.heldout, data_range=2.0, dim=(1, 2, 3)))
            tiles = _to_pil(torch.cat([self.heldout, rec]))
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            save_image(self.out / "samples" / f"stage1-reconstructions-{step:06d}.png",
                       make_image_grid(tiles, rows=2, cols=self.heldout.shape[0]))
        self._log(record)

    def stage2(self, pipe_factory, step: int, loss: float, final: bool = False) -> None:
        """A grid of ``num_samples`` samples from the prior being trained (stage 2) and its loss."""
        if not self.accelerator.is_main_process or (step % self.every and not final):
            return
        pipe = pipe_factory()
        pipe.set_progress_bar_config(disable=True)
        was_training = pipe.prior.training
        pipe.prior.eval()
        images = pipe(batch_size=self.num_samples, num_inference_steps=25,
                      generator=torch.Generator().manual_seed(self.seed)).images
        pipe.prior.train(was_training)
        rows = max(1, int(self.num_samples**0.5))
        while self.num_samples % rows:
            rows -= 1
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        save_image(self.out / "samples" / f"stage2-samples-{step:06d}.png",
                   make_image_grid(images, rows=rows, cols=self.num_samples // rows))
        self._log({"stage": "stage2", "step": step, "loss": float(loss)})


def setup_trackers(report_to: str, out: Path) -> tuple[str | None, str | None]:
    """``(log_with, message)``: Accelerate's tracker name, or None and one line saying why not."""
    if report_to in (None, "none"):
        return None, None
    if report_to == "tensorboard":
        if not is_tensorboard_available():
            return None, ("--report_to tensorboard: tensorboard is not installed "
                          '(pip install "qiren-gen[tensorboard]"); '
                          f"validation metrics go to {out / 'train_log.jsonl'} only")
        return "tensorboard", None
    return report_to, None


def model_card_sections(source: str, data: TrainingData, resolution: int, stage1: dict, prior: dict,
                        psnr: dict, command: str, previous: dict[str, str]) -> dict[str, str]:
    """Training / Quality / Limitations sections of a pipeline made by ``train_pipeline``."""
    n_train = "streamed" if data.num_train is None else data.num_train
    n_held = data.heldout.shape[0]
    kind = "grayscale" if data.channels == 1 else "RGB"
    start = f"the pretrained pipeline `{source}`" if source else "scratch (decoder built from the flags)"
    training = f"""Made by `scripts/train_pipeline.py` from {start} on {data.description}: {n_train} training
images and {n_held} held out ({psnr.get('skipped', data.skipped)} unreadable met and skipped), {kind},
{resolution}x{resolution}.

1. Stage 1 (decoder + modulator): {stage1['steps']} steps of batch {stage1['batch_size']}, Adam
   {stage1['learning_rate']}, {stage1['algorithm']}.
2. Stage 2 (latent diffusion prior{', from the pretrained prior' if prior['pretrained'] else ''}): the training
   images encoded with the stage-1 models, {prior['steps']} steps of batch {prior['batch_size']}, AdamW
   {prior['learning_rate']}, DDPM objective; sampled with DDIM.

```bash
{command}
```
"""
    def fmt(v):
        return "n/a" if v is None else f"{v:.2f} dB"

    quality = f"""Reconstruction PSNR (encode + decode at {resolution}x{resolution}, images in [-1, 1]; a fixed subset,
so the cost does not grow with the data):

| images | before | after |
|---|---:|---:|
| the first {psnr['train_count']} training images | {fmt(psnr['train_before'])} | {fmt(psnr['train_after'])} |
| held-out images ({n_held}) | {fmt(psnr['heldout_before'])} | {fmt(psnr['heldout_after'])} |

No FID was measured by the training script: run `qiren-gen evaluate --pipeline THIS_FOLDER --reference DATA`.
"""
    limitations = (f"Trained on {n_train} images for {stage1['steps']} + {prior['steps']} steps; judge the samples in "
                   "`samples/` of the training run before relying on it. The decoder's circuits are simulated "
                   "exactly; nothing ran on quantum hardware.")
    if previous.get("Training"):
        training += "\n### The pretrained pipeline's own training\n\n" + previous["Training"].replace("## ", "### ")
    return {"Training": training, "Quality": quality, "Limitations": limitations}


def heldout_line(data: TrainingData) -> str | None:
    """The line naming the images held out of training for validation (files, or rows of a dataset), or None."""
    names = data.heldout_names
    if not names:
        return None
    what = ", ".join(names) if all(n != "a row" for n in names) else f"the first {len(names)} readable rows"
    return f"held out of training for validation (--validation_images {len(names)}): {what}"


def report_psnr(psnr: dict, say=print) -> None:
    """The before / after reconstruction PSNR lines of a run."""
    def fmt(v):
        return "n/a" if v is None else f"{v:.2f} dB"

    say(f"reconstruction PSNR, {psnr['train_count']} training images: {fmt(psnr['train_before'])} before -> "
        f"{fmt(psnr['train_after'])} after")
    if psnr["heldout_count"]:
        say(f"reconstruction PSNR, {psnr['heldout_count']} held-out images: {fmt(psnr['heldout_before'])} before -> "
            f"{fmt(psnr['heldout_after'])} after")


__all__ = ["RUN_FILE", "START_SCAN_LIMIT", "TrainingData", "Validator", "check_output_dir", "heldout_line",
           "image_channels",
           "load_training_data", "model_card_sections", "reconstruction_psnr", "report_psnr", "setup_trackers"]
