"""Training a functa model (shared decoder + latent modulator) with Accelerate: meta-SGD or auto-decoded latents.

``encoding="meta_sgd"``: one outer step fits, for every image of the batch, a latent from zero in a few meta-SGD
steps (``inner_loop``); the outer loss is the MSE of the renders at those latents, and its gradient trains decoder,
modulator and step sizes. ``encoding="auto_decode"``: every training image owns a latent (a row of a
:class:`LatentTable`, trained with Adam jointly with the decoder, plus ``latent_l2 * ||z||^2``); new images are
encoded later by fitting their latent with the decoder frozen (``qiren_gen.functa.encode_images``). The table is
checkpointed with the models and saved as ``output_dir/latents.safetensors`` for the prior.
Data parallel: every process takes its own shard of the batch; gradients are summed over processes and divided by
the global number of images (an exact global-batch mean, also when a rank had to drop corrupt images), so every
rank applies the same update and parameters stay identical (checked at the end).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..data.datasets import ImageCollator, check_resolution, load_image_dataset
from ..data.grids import image_grid
from ..functa import inner_loop, per_image_mse, psnr
from ..models.modulated import ENCODINGS, LatentModulator, ModulatedQIREN, ModulatedSIREN
from ..models.synthesis import FeatureSynthesisDecoder
from ..models.wide import ModulatedWideQIREN
from .checkpointing import (check_compatible, load_checkpoint_models, read_training_state,
                            resolve_resume_checkpoint, save_checkpoint)
from .launch import make_accelerator

logger = logging.getLogger(__name__)

DECODERS = ("qiren", "siren", "circuit-features", "fourier-features", "wide-qiren")
"""``qiren``: the paper's modulated QIREN; ``siren``: Functa's SIREN; ``circuit-features`` / ``fourier-features``:
:class:`FeatureSynthesisDecoder` with quantum circuit features or random Fourier features (the classical control);
``wide-qiren``: :class:`ModulatedWideQIREN` (``n_heads`` circuits of ``n_qubits`` per hybrid layer)."""
MAX_LATENT_DIM = 65536
"""Largest latent size accepted (functa uses 64-1024); beyond it the modulator's weights alone exhaust memory."""


@dataclass
class FunctaTrainingConfig:
    """Everything a functa training run needs; ``scripts/train_functa.py`` fills it from the command line."""

    output_dir: str = "functa-model"
    dataset_name: str | None = None
    train_data_dir: str | None = None
    split: str = "train"
    image_column: str = "image"
    streaming: bool = False
    cache_dir: str | None = None
    max_train_samples: int | None = None
    resolution: int = 16
    channels: int = 1
    decoder: str = "qiren"
    modulation: str = "shift"
    latent_dim: int = 32
    n_qubits: int = 8
    hidden_layers: int = 2
    n_reuploads: int = 2
    n_blocks: int = 2
    hidden_features: int = 16
    n_heads: int = 32
    entangler: str = "cnot_chain"
    n_fourier: int = 32
    fourier_scale: float = 6.0
    frequency_init: float = 1.0
    modulator_hidden_layers: int = 0
    inner_steps: int = 3
    inner_lr_init: float | None = None
    first_order: bool = False
    encoding: str = "meta_sgd"
    latent_learning_rate: float = 1e-2
    latent_l2: float = 1e-4
    encode_steps: int = 300
    flip_augment: bool = False
    weight_decay: float = 0.0
    train_batch_size: int = 16
    max_train_steps: int = 200
    learning_rate: float = 3e-3
    max_grad_norm: float | None = 1.0
    checkpointing_steps: int = 100
    checkpoints_total_limit: int | None = 2
    resume_from_checkpoint: str | None = None
    mixed_precision: str = "no"
    seed: int = 0
    logging_steps: int = 10
    dataloader_num_workers: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that cannot train."""
        check_resolution(self.resolution)
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        for name in ("latent_dim", "train_batch_size", "max_train_steps", "checkpointing_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.latent_dim > MAX_LATENT_DIM:
            raise ValueError(f"latent_dim must be <= {MAX_LATENT_DIM}, got {self.latent_dim}")
        if self.inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.encoding == "auto_decode" and self.streaming:
            raise ValueError("encoding 'auto_decode' needs a fixed set of images (one latent each): not streaming")
        if not self.latent_learning_rate > 0 or not self.latent_l2 >= 0 or self.encode_steps < 1:
            raise ValueError("need latent_learning_rate > 0, latent_l2 >= 0 and encode_steps >= 1")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")


def build_decoder(cfg: FunctaTrainingConfig) -> torch.nn.Module:
    """The decoder family ``cfg.decoder`` with ``cfg``'s sizes."""
    if cfg.decoder == "qiren":
        return ModulatedQIREN(
            out_channels=cfg.channels, n_qubits=cfg.n_qubits, hidden_layers=cfg.hidden_layers,
            n_reuploads=cfg.n_reuploads, n_blocks=cfg.n_blocks, modulation=cfg.modulation,
        )
    if cfg.decoder == "wide-qiren":
        return ModulatedWideQIREN(
            out_channels=cfg.channels, n_heads=cfg.n_heads, n_qubits=cfg.n_qubits, hidden_layers=cfg.hidden_layers,
            n_reuploads=cfg.n_reuploads, n_blocks=cfg.n_blocks, entangler=cfg.entangler, modulation=cfg.modulation,
        )
    if cfg.decoder == "siren":
        return ModulatedSIREN(
            out_channels=cfg.channels, hidden_features=cfg.hidden_features, hidden_layers=cfg.hidden_layers,
            modulation=cfg.modulation,
        )
    return FeatureSynthesisDecoder(
        out_channels=cfg.channels, features="quantum" if cfg.decoder == "circuit-features" else "fourier",
        n_heads=cfg.n_heads, n_qubits=cfg.n_qubits, n_reuploads=cfg.n_reuploads, n_blocks=cfg.n_blocks,
        entangler=cfg.entangler, frequency_init=cfg.frequency_init, n_fourier=cfg.n_fourier,
        fourier_scale=cfg.fourier_scale, hidden_features=cfg.hidden_features, hidden_layers=cfg.hidden_layers,
        modulation=cfg.modulation,
    )


def build_models(cfg: FunctaTrainingConfig) -> tuple[torch.nn.Module, LatentModulator]:
    """Decoder and modulator for ``cfg`` (seed the RNG first for identical init on every process)."""
    decoder = build_decoder(cfg)
    # SIREN's omega_0 = 30 makes latent gradients ~30x larger than QIREN's, so its step sizes start smaller.
    lr_init = cfg.inner_lr_init if cfg.inner_lr_init is not None else (0.01 if cfg.decoder == "siren" else 1.0)
    auto = cfg.encoding == "auto_decode"
    modulator = LatentModulator.for_decoder(
        decoder, cfg.latent_dim, hidden_layers=cfg.modulator_hidden_layers,
        inner_steps=cfg.encode_steps if auto else cfg.inner_steps, inner_lr_init=lr_init, encoding=cfg.encoding,
        encode_lr=cfg.latent_learning_rate, latent_l2=cfg.latent_l2,
    )
    return decoder, modulator


class LatentTable(torch.nn.Module):
    """One trainable latent per training image (auto-decoding): ``latents (N, latent_dim)``, small random init."""

    def __init__(self, n_items: int, latent_dim: int) -> None:
        super().__init__()
        self.latents = torch.nn.Parameter(torch.randn(n_items, latent_dim) * 0.01)


class IndexedImages(torch.utils.data.Dataset):
    """Dataset items with their index; with ``flip``, items ``N..2N-1`` are the mirror images of ``0..N-1``."""

    def __init__(self, dataset, flip: bool = False) -> None:
        self.dataset, self.flip = dataset, flip

    def __len__(self) -> int:
        return len(self.dataset) * (2 if self.flip else 1)

    def __getitem__(self, i: int) -> dict:
        n = len(self.dataset)
        return {"example": self.dataset[i % n], "index": i, "flip": i >= n}


class IndexedCollator:
    """``(images (B, C, R, R), indices (B,))`` from :class:`IndexedImages` items; unreadable images are skipped."""

    def __init__(self, collate: ImageCollator) -> None:
        self.collate = collate

    def __call__(self, items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        images, indices = [], []
        for item in items:
            image = self.collate([item["example"]])
            if image.shape[0]:
                images.append(image.flip(-1) if item["flip"] else image)
                indices.append(item["index"])
        if not images:
            return self.collate([]), torch.zeros(0, dtype=torch.long)
        return torch.cat(images), torch.tensor(indices, dtype=torch.long)


def model_signature(decoder, modulator) -> dict[str, Any]:
    """JSON-able configs of both models: what a checkpoint must match to be resumed."""
    def clean(model):
        return {k: v for k, v in json.loads(model.to_json_string()).items() if not k.startswith("_")}

    return {"decoder_class": type(decoder).__name__, "decoder": clean(decoder), "modulator": clean(modulator)}


def _sync_gradients(params: list[torch.nn.Parameter], accelerator, n_local: int) -> int:
    """Sum gradients over processes and divide by the global image count; returns that count."""
    count = torch.tensor([float(n_local)], device=accelerator.device)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    if accelerator.num_processes > 1:
        flat = accelerator.reduce(flat, reduction="sum")
        count = accelerator.reduce(count, reduction="sum")
    total = int(count.item())
    flat = flat / max(total, 1)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n
    return total


def _save_final(decoder, modulator, output_dir: Path) -> None:
    """``output_dir/{decoder,modulator}`` via ``save_pretrained``, each written to a temp folder then renamed."""
    for name, model in (("decoder", decoder), ("modulator", modulator)):
        tmp, final = output_dir / f".tmp-{name}", output_dir / name
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)


LATENTS_FILE = "latents.safetensors"
"""Auto-decoded training latents (key ``latents``, one row per training item) saved next to decoder/ and modulator/."""


@torch.no_grad()
def table_psnr(decoder, modulator, latents: torch.Tensor, dataset: IndexedImages, collate: ImageCollator,
               cfg: FunctaTrainingConfig, coords: torch.Tensor) -> dict[str, float]:
    """Mean reconstruction PSNR of every training item at its learned latent (mirrors, if any, separately)."""
    values = []
    for start in range(0, len(dataset), 32):
        images, indices = IndexedCollator(collate)([dataset[i] for i in range(start, min(start + 32, len(dataset)))])
        if not images.shape[0]:
            continue
        targets = images.to(coords.device).permute(0, 2, 3, 1).reshape(images.shape[0], -1, cfg.channels)
        values.append(psnr(per_image_mse(decoder, modulator, latents[indices.to(coords.device)], coords, targets)))
    values = torch.cat(values)
    n = len(dataset.dataset)
    return {"train_psnr_all": values[:n].mean().item(),
            **({"train_psnr_all_mirrors": values[n:].mean().item()} if dataset.flip else {})}


def train_functa(cfg: FunctaTrainingConfig, accelerator=None, init_models: tuple | None = None, dataset=None,
                 on_step: Callable[[int, dict[str, float]], None] | None = None,
                 init_latents: torch.Tensor | None = None) -> dict[str, Any]:
    """Run (or resume) a functa training; returns the summary also written to ``output_dir/train_summary.json``.

    Fine-tuning passes ``init_models`` (a pretrained ``(decoder, modulator)``, used instead of ``build_models(cfg)``), a
    ready ``dataset`` (else loaded from ``cfg``) and its own ``accelerator`` (then not ended here, so a second stage
    can use it); ``on_step(step, record)`` runs on every process after each step (validation hooks);
    ``init_latents`` (auto-decoding) starts the latent table from given rows, e.g. the pretrained model's encodings
    of the training items, instead of near zero (which would first pull a pretrained decoder towards the mean image).
    """
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    cfg.validate()
    output_dir = Path(cfg.output_dir)
    resume = resolve_resume_checkpoint(output_dir, cfg.resume_from_checkpoint)
    owns_accelerator = accelerator is None
    if owns_accelerator:
        accelerator = make_accelerator(cfg.mixed_precision, cfg.seed)
    set_seed(cfg.seed)
    decoder, modulator = init_models if init_models is not None else build_models(cfg)
    if decoder.config.out_channels != cfg.channels:
        raise ValueError(f"the decoder renders {decoder.config.out_channels} channel(s) but channels={cfg.channels}")
    auto = cfg.encoding == "auto_decode"
    # Second-order meta-gradients need the twice-differentiable simulator; first-order can use the fast one.
    decoder.set_engine("fused" if cfg.first_order or auto else "autograd")

    if dataset is None:
        dataset = load_image_dataset(
            cfg.dataset_name, cfg.train_data_dir, cfg.split, cfg.image_column, cfg.streaming, cfg.cache_dir,
            cfg.max_train_samples,
        )
    collate = ImageCollator(cfg.image_column, cfg.resolution, cfg.channels)
    indexed = auto or cfg.flip_augment
    if indexed:
        if cfg.streaming:
            raise ValueError("flip_augment needs a fixed set of images: not streaming")
        dataset = IndexedImages(dataset, cfg.flip_augment)
    table = LatentTable(len(dataset), cfg.latent_dim) if auto else None
    if table is not None and init_latents is not None:
        if tuple(init_latents.shape) != tuple(table.latents.shape):
            raise ValueError(f"init_latents must have shape {tuple(table.latents.shape)}, got {tuple(init_latents.shape)}")
        with torch.no_grad():
            table.latents.copy_(init_latents)
    signature = model_signature(decoder, modulator)
    if table is not None:
        signature["latent_table"] = list(table.latents.shape)
    if resume is not None:
        check_compatible(read_training_state(resume).get("model", {}), signature, resume)
    decoder.to(accelerator.device)
    modulator.to(accelerator.device)
    if table is not None:
        table.to(accelerator.device)
    n_images = None if cfg.streaming else len(dataset)
    drop_last = n_images is not None and n_images >= cfg.train_batch_size * accelerator.num_processes
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.train_batch_size,
        shuffle=not cfg.streaming, collate_fn=IndexedCollator(collate) if indexed else collate, drop_last=drop_last,
        num_workers=cfg.dataloader_num_workers,
    )
    model_params = list(decoder.parameters()) + list(modulator.parameters())
    params = model_params + ([table.latents] if table is not None else [])
    groups = [{"params": model_params, "lr": cfg.learning_rate, "weight_decay": cfg.weight_decay}]
    if table is not None:
        groups.append({"params": [table.latents], "lr": cfg.latent_learning_rate, "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=cfg.learning_rate)
    scheduler = get_scheduler("constant", optimizer=optimizer)
    optimizer, loader, scheduler = accelerator.prepare(optimizer, loader, scheduler)
    models = {"decoder": decoder, "modulator": modulator}  # checkpointed as safetensors, not Accelerate pickles
    if table is not None:
        models["latents"] = table

    global_step, epoch, batch_in_epoch = 0, 0, 0
    if resume is not None:
        state = read_training_state(resume)
        accelerator.load_state(str(resume))
        load_checkpoint_models(resume, models)
        global_step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        accelerator.print(f"resumed from {resume} at step {global_step}")
    if global_step >= cfg.max_train_steps:
        accelerator.print(f"already at step {global_step} >= max_train_steps={cfg.max_train_steps}; nothing to do")

    coords = image_grid(cfg.resolution, cfg.resolution, device=accelerator.device)
    log_path = output_dir / "train_log.jsonl"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    progress = tqdm(total=cfg.max_train_steps, initial=global_step, disable=not accelerator.is_local_main_process,
                    desc="functa")
    step_seconds: list[float] = []
    history: list[dict[str, float]] = []

    def checkpoint_state() -> dict[str, Any]:
        return {"epoch": epoch, "batch_in_epoch": batch_in_epoch, "model": signature, "config": asdict(cfg)}

    while global_step < cfg.max_train_steps:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        resumed_mid_epoch = batch_in_epoch > 0  # a checkpoint at an epoch's last batch leaves nothing to skip to
        batches = accelerator.skip_first_batches(loader, batch_in_epoch) if batch_in_epoch else loader
        got_batch = False
        for batch in batches:
            got_batch = True
            start = time.perf_counter()
            images, indices = batch if indexed else (batch, None)
            images = images.to(accelerator.device)
            targets = images.permute(0, 2, 3, 1).reshape(images.shape[0], -1, cfg.channels)
            n_local = images.shape[0]
            with accelerator.autocast():
                if n_local and table is not None:
                    stats = decoder.reference_statistics()
                    latents = table.latents[indices.to(accelerator.device)]
                    mse = per_image_mse(decoder, modulator, latents, coords, targets, stats).float()
                    accelerator.backward(mse.sum() + cfg.latent_l2 * latents.float().square().sum())
                elif n_local:
                    stats = decoder.reference_statistics()
                    latents = inner_loop(decoder, modulator, coords, targets, first_order=cfg.first_order,
                                         stats=stats)
                    mse = per_image_mse(decoder, modulator, latents, coords, targets, stats).float()
                    accelerator.backward(mse.sum())
                else:  # every image of this shard was unreadable: contribute nothing, but join the collectives
                    mse = torch.zeros(0, device=accelerator.device)
            total = _sync_gradients(params, accelerator, n_local)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model_params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                modulator.inner_lr.clamp_(min=0)  # a negative step size would climb the loss
            sums = torch.tensor([mse.detach().sum().item(), psnr(mse.detach()).sum().item()],
                                device=accelerator.device)
            if accelerator.num_processes > 1:
                sums = accelerator.reduce(sums, reduction="sum")
            loss, mean_psnr = (sums / max(total, 1)).tolist()
            global_step += 1
            batch_in_epoch += 1
            step_seconds.append(time.perf_counter() - start)
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}", psnr=f"{mean_psnr:.2f}")
            history.append({"step": global_step, "loss": loss, "psnr": mean_psnr})
            if accelerator.is_main_process and (global_step % cfg.logging_steps == 0 or global_step == 1):
                with open(log_path, "a") as handle:
                    handle.write(json.dumps({"step": global_step, "loss": loss, "psnr": mean_psnr,
                                             "seconds": step_seconds[-1], "skipped_images": collate.skipped}) + "\n")
            if global_step % cfg.checkpointing_steps == 0 or global_step == cfg.max_train_steps:
                save_checkpoint(accelerator, output_dir, global_step, checkpoint_state(), cfg.checkpoints_total_limit,
                                models=models)
            if on_step is not None:
                on_step(global_step, history[-1])
            if global_step >= cfg.max_train_steps:
                break
        else:
            epoch += 1
            batch_in_epoch = 0
            if not got_batch and not resumed_mid_epoch:
                raise ValueError("the dataset yields no batches (fewer readable images than processes?)")
    progress.close()

    flat = torch.cat([p.detach().reshape(-1).float() for p in params]).unsqueeze(0)
    gathered = accelerator.gather(flat) if accelerator.num_processes > 1 else flat
    rank_diff = float((gathered - gathered[0:1]).abs().max().item())
    summary = {
        "steps": global_step,
        "num_processes": accelerator.num_processes,
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "last_psnr": history[-1]["psnr"] if history else None,
        "median_step_seconds": sorted(step_seconds)[len(step_seconds) // 2] if step_seconds else None,
        "max_rank_parameter_difference": rank_diff,
        "skipped_images": collate.skipped,
        "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
        "modulator_parameters": sum(p.numel() for p in modulator.parameters()),
        "history": history,
    }
    if table is not None:
        summary.update(table_psnr(decoder, modulator, table.latents.detach(), dataset, collate, cfg, coords))
    if rank_diff != 0:
        logger.warning("parameters differ across processes by up to %g", rank_diff)
    if accelerator.is_main_process:
        _save_final(decoder, modulator, output_dir)
        if table is not None:
            from safetensors.torch import save_file

            save_file({"latents": table.latents.detach().to("cpu").contiguous()}, str(output_dir / LATENTS_FILE))
        (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    if owns_accelerator:
        accelerator.end_training()
    return summary


__all__ = ["DECODERS", "LATENTS_FILE", "FunctaTrainingConfig", "IndexedCollator", "IndexedImages", "LatentTable",
           "build_decoder", "build_models", "model_signature", "table_psnr", "train_functa"]
