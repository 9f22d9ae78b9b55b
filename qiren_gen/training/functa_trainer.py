"""Stage 1 with Accelerate: the decoder + latent modulator, with meta-SGD or auto-decoded latents.

``encoding="meta_sgd"``: one outer step fits, for every image of the batch, a latent from zero in a few meta-SGD
steps (``inner_loop``); the outer loss is the MSE of the renders at those latents, and its gradient trains decoder,
modulator and step sizes. ``encoding="auto_decode"``: every training image owns a latent (a row of a
`LatentTable`, trained with Adam jointly with the decoder, plus ``latent_l2 * ||z||^2``); new images are
encoded later by fitting their latent with the decoder frozen (``qiren_gen.functa.encode_images``). Only the batch's
rows of the table are exchanged and stepped, by a row-wise Adam (``qiren_gen.training.latent_rows``). The table is
checkpointed with the models and saved as ``output_dir/latents.safetensors`` for the prior, with a ``visited`` mask
(rows that trained at least once). Images are decoded per batch in the DataLoader (``dataloader_num_workers``): a
map-style dataset stays memory-mapped, a stream stays a stream (index = stream position, see
``qiren_gen.data.indexed``); only the latent table and its Adam state grow with the number of images.

Data parallel: every process takes its own shard of the batch (map-style: Accelerate's sampler shards; streams:
each rank reads its own shards of the stream, or its own positions ``p % num_processes == rank`` where shard lengths
are unknown, see ``IndexedStream``, and the ranks step in lockstep until all are exhausted, so no readable image is
dropped); gradients are summed over processes and divided by the global number of images
(``qiren_gen.training.gradient_sync``), so every rank applies the same update and parameters stay identical
(checked at the end). SIGTERM / SIGINT stop every rank after a checkpoint (``qiren_gen.training.stopping``). Under
finite shots (``quantum.shots.measurement`` around the call, as ``--train_shots`` does), the circuits draw each
step's samples from a generator seeded by (seed, stage 1, rank, step): a resumed run draws what an uninterrupted one
drew, and ranks draw independently.

The run is a `FunctaTrainer` in the steps of functa's ``experiment_meta_learning``: set-up (models, data,
latent table, optimiser, resume), `FunctaTrainer.training_step` (loss, backward, gradient mean, clip,
optimiser, the table's rows), checkpoints, and `FunctaTrainer.finish`. This module also re-exports the
stage-1 names that live in the modules of one job each (config, signature, latent table, evaluation, iterators).
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from ..data.datasets import (
    IMAGE_COLUMN,
    ImageCollator,
    check_readable_images,
    declared_num_examples,
    load_image_dataset,
)
from ..data.grids import image_grid
from ..data.indexed import IndexedCollator, IndexedImages, IndexedStream, loader_options
from ..functa import backward_per_image_mse, inner_loop, per_image_mse, step_chunk_points
from ..io.atomic import append_text, write_text
from ..metrics import psnr_from_mse
from ..quantum.shots import circuit_modules
from .checkpoint_signature import model_signature, run_signature
from .checkpointing import (
    agreed_resume_checkpoint,
    check_compatible,
    load_checkpoint_models,
    load_checkpoint_state,
    read_training_state,
    save_checkpoint,
)
from .functa_config import (
    DECODER_ALIASES,
    DECODERS,
    MAX_LATENT_DIM,
    FunctaTrainingConfig,
    build_decoder,
    build_models,
    canonical_decoder,
)
from .gradient_sync import sync_gradients
from .latent_rows import LatentTable, gather_row_gradients, rowwise_adam_step
from .latent_table import LATENTS_FILE, first_visit_encode, save_latent_table, trained_rows
from .launch import make_accelerator, synthesis_dtype
from .outputs import save_folder_atomically
from .randomness import INIT_STEP, STAGE1, step_generator
from .rank_failures import failure_shared_by_ranks
from .rank_iterators import all_ranks, lockstep_batches
from .stopping import TrainingStopped, stop_on_signals
from .table_evaluation import first_items, head_items, table_psnr

logger = logging.getLogger(__name__)


class FunctaTrainer:
    """One stage-1 run (or its resumption); the arguments are those of `train_functa`.

    Construction is the set-up (models, data, latent table, optimiser, resume); `train` runs the steps to
    ``cfg.max_train_steps`` and `finish` saves the models. A trainer is used once.
    """

    def __init__(self, cfg: FunctaTrainingConfig, accelerator=None, init_models: tuple | None = None, dataset=None,
                 on_step: Callable[[int, dict[str, float]], None] | None = None,
                 init_latents: torch.Tensor | None = None, first_visit_steps: int = 0,
                 stream_capacity: int | None = None) -> None:
        cfg.validate()
        self.cfg, self.output_dir = cfg, Path(cfg.output_dir)
        self.owns_accelerator = accelerator is None
        self.accelerator = make_accelerator(cfg.mixed_precision, cfg.seed) if accelerator is None else accelerator
        self.on_step, self.first_visit_steps = on_step, first_visit_steps
        self.coords = image_grid(cfg.resolution, cfg.resolution, device=self.accelerator.device)  # its size checked
        self.resume_path = agreed_resume_checkpoint(self.accelerator, self.output_dir, cfg.resume_from_checkpoint)
        set_seed(cfg.seed)
        self.decoder, self.modulator = self._set_up_models(init_models)
        self.dataset, n_items = self._set_up_data(dataset, stream_capacity)
        self.table = self._set_up_table(n_items, init_latents)
        self.signature = run_signature(self.decoder, self.modulator, self.table)
        if self.resume_path is not None:
            check_compatible(read_training_state(self.resume_path, cfg.max_train_steps).get("model", {}),
                             self.signature, self.resume_path)
        self._move_to_device()
        self._set_up_loader_and_optimiser()
        self.global_step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self._resume()
        self.log_path = self.output_dir / "train_log.jsonl"
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.history: list[dict[str, float]] = []
        self.step_seconds: list[float] = []
        self.step_cpu: list[float] = []
        self.wait_seconds: list[float] = []
        self.stop_request = None

    # -- set-up ---------------------------------------------------------------------------------------------------

    def _set_up_models(self, init_models: tuple | None) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The pretrained ``init_models`` or fresh ones, on the engine the encoding needs."""
        cfg = self.cfg
        decoder, modulator = init_models if init_models is not None else build_models(cfg)
        if decoder.config.out_channels != cfg.channels:
            raise ValueError(f"the decoder renders {decoder.config.out_channels} channel(s) but "
                             f"channels={cfg.channels}")
        # Second-order meta-gradients need the twice-differentiable simulator; first-order can use the fast one.
        decoder.set_engine("fused" if cfg.first_order or cfg.encoding == "auto_decode" else "autograd")
        return decoder, modulator

    def _set_up_data(self, dataset, stream_capacity: int | None) -> tuple[IndexedImages | IndexedStream, int | None]:
        """The indexed training data (map-style, or this rank's part of a stream) and its number of items (None: a
        stream of unknown length)."""
        cfg, accelerator = self.cfg, self.accelerator
        if dataset is None:
            dataset = load_image_dataset(cfg.dataset_name, cfg.train_data_dir, cfg.split, cfg.image_column,
                                         cfg.streaming, cfg.cache_dir, cfg.max_train_samples)
        self.collate = ImageCollator(IMAGE_COLUMN, cfg.resolution, cfg.channels)
        self.streamed = not hasattr(dataset, "__len__")
        if not self.streamed:
            check_readable_images(dataset, cfg.resolution, cfg.channels)  # none readable: refused before training
            indexed = IndexedImages(dataset, cfg.flip_augment)
            return indexed, len(indexed)
        capacity = stream_capacity if stream_capacity is not None else cfg.max_train_samples
        if capacity is None:
            capacity = declared_num_examples(dataset, cfg.split)
        if capacity is None and (cfg.encoding == "auto_decode" or cfg.flip_augment):
            raise ValueError("auto-decoded latents or --flip_augment on a stream need --max_train_samples (the size "
                             "of the latent table: one row per streamed image), as the dataset declares no "
                             "num_examples for its split")
        check_readable_images(dataset, cfg.resolution, cfg.channels)
        indexed = IndexedStream(dataset, capacity, cfg.flip_augment, cfg.shuffle_buffer_size, cfg.seed,
                                rank=accelerator.process_index, num_ranks=accelerator.num_processes)
        return indexed, None if capacity is None else capacity * (2 if cfg.flip_augment else 1)

    def _set_up_table(self, n_items: int | None, init_latents: torch.Tensor | None) -> LatentTable | None:
        """Auto-decoding: one latent per item, from a seeded draw or ``init_latents``; meta-SGD: None."""
        cfg = self.cfg
        if cfg.encoding != "auto_decode":
            return None
        table = LatentTable(n_items, cfg.latent_dim, step_generator(cfg.seed, STAGE1, 0, INIT_STEP))
        if init_latents is not None:
            if init_latents.ndim == 1:
                init_latents = init_latents[None].expand_as(table.latents)
            if tuple(init_latents.shape) != tuple(table.latents.shape):
                raise ValueError(f"init_latents must have shape {tuple(table.latents.shape)}, got "
                                 f"{tuple(init_latents.shape)}")
            with torch.no_grad():
                table.latents.copy_(init_latents)
        return table

    def _move_to_device(self) -> None:
        device = self.accelerator.device
        self.decoder.to(device)
        self.modulator.to(device)
        if hasattr(self.decoder, "synthesis_dtype"):  # bf16 synthesis layers on CUDA; the circuits stay fp32
            self.decoder.synthesis_dtype = synthesis_dtype(device, self.cfg.synthesis_precision)
        if self.table is not None:
            self.table.to(device)

    def _set_up_loader_and_optimiser(self) -> None:
        """The DataLoader (decoding per batch), Adam over decoder + modulator, and what a checkpoint holds."""
        cfg, accelerator = self.cfg, self.accelerator
        self.indexed_collate = IndexedCollator(self.collate)
        drop_last = not self.streamed and len(self.dataset) >= cfg.train_batch_size * accelerator.num_processes
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=cfg.train_batch_size, shuffle=not self.streamed, collate_fn=self.indexed_collate,
            drop_last=drop_last, **loader_options(accelerator.device, cfg.dataloader_num_workers),
        )
        self.params = list(self.decoder.parameters()) + list(self.modulator.parameters())
        groups = [{"params": self.params, "lr": cfg.learning_rate, "weight_decay": cfg.weight_decay}]
        optimizer = fused_adam(groups, lr=cfg.learning_rate)
        scheduler = get_scheduler("constant", optimizer=optimizer)
        if self.streamed:  # each rank reads its own positions (IndexedStream): no dispatching, no split of the batch
            self.optimizer, self.scheduler = accelerator.prepare(optimizer, scheduler)
            self.loader = loader
        else:
            self.optimizer, self.loader, self.scheduler = accelerator.prepare(optimizer, loader, scheduler)
        self.models = {"decoder": self.decoder, "modulator": self.modulator}  # safetensors, not Accelerate pickles
        if self.table is not None:
            self.models["latents"] = self.table
        self.sampled_circuits = [m for m in circuit_modules(self.decoder) if m.shots is not None]  # finite shots

    # -- checkpoint / resume --------------------------------------------------------------------------------------

    def _resume(self) -> None:
        """Load the agreed checkpoint (if any): optimiser, models, table, and where in the data the run was."""
        if self.resume_path is not None:
            state = read_training_state(self.resume_path, self.cfg.max_train_steps, position=True)
            load_checkpoint_state(self.accelerator, self.resume_path)
            load_checkpoint_models(self.resume_path, self.models)
            self.global_step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
            self.accelerator.print(f"stage 1: resumed from {self.resume_path} at step {self.global_step}")
        if self.global_step >= self.cfg.max_train_steps:
            self.accelerator.print(f"stage 1: already at step {self.global_step} >= max_train_steps="
                                   f"{self.cfg.max_train_steps}; nothing to do")

    def save_checkpoint(self) -> Path:
        """``output_dir/checkpoint-<step>``: Accelerate's state, the models and table, and the data position."""
        state = {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "model": self.signature,
                 "config": asdict(self.cfg)}
        return save_checkpoint(self.accelerator, self.output_dir, self.global_step, state,
                               self.cfg.checkpoints_total_limit, models=self.models)

    # -- the step -------------------------------------------------------------------------------------------------

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        """One optimiser step on this rank's ``batch`` ``(images, indices)``: loss and backward, the gradients' global
        mean, clip, Adam, the table's rows. Returns the global mean ``loss`` and ``psnr`` and whether any rank was
        asked to stop (``stopping``)."""
        cfg, device = self.cfg, self.accelerator.device
        images, indices = batch
        images = images.to(device, non_blocking=True)
        self._seed_shots()
        if self.table is not None and self.first_visit_steps:
            first_visit_encode(self.decoder, self.modulator, self.table, images, indices, self.first_visit_steps,
                               self.accelerator)
        targets = images.permute(0, 2, 3, 1).reshape(images.shape[0], self.coords.shape[0], cfg.channels)
        rows = indices.to(device)
        latents = None
        with self.accelerator.autocast():
            if not images.shape[0]:  # every image of this shard was unreadable: contribute nothing, join collectives
                mse = torch.zeros(0, device=device)
            elif self.table is not None:
                mse, latents = self._auto_decode_loss(targets, rows)
            else:
                mse = self._meta_sgd_loss(targets)
        total = sync_gradients(self.params, self.accelerator, images.shape[0])
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.modulator.inner_lr.clamp_(min=0)  # a negative step size would climb the loss
        if self.table is not None:
            self._step_table_rows(rows, latents, total)
        return self._global_metrics(mse, total)

    def _auto_decode_loss(self, targets: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image MSE at the batch's table rows plus their L2 penalty, backpropagated (in chunks of points beyond
        the step's memory budget); returns the MSE and the rows' latents, whose ``.grad`` the table step uses."""
        cfg = self.cfg
        stats = self.decoder.reference_statistics()
        latents = self.table.latents[rows].detach().requires_grad_(True)  # the batch's rows only
        chunk = step_chunk_points(self.decoder, targets.shape[0], cfg.step_memory_budget_mb * 2**20)
        mse = backward_per_image_mse(self.decoder, self.modulator, latents, self.coords, targets, stats,
                                     chunk_points=chunk,
                                     penalty=cfg.latent_l2 * latents.float().square().sum(),
                                     backward=self.accelerator.backward)
        return mse, latents

    def _meta_sgd_loss(self, targets: torch.Tensor) -> torch.Tensor:
        """Per-image MSE at the latents the inner loop fits from zero, backpropagated through that loop."""
        stats = self.decoder.reference_statistics()
        latents = inner_loop(self.decoder, self.modulator, self.coords, targets, first_order=self.cfg.first_order,
                             stats=stats)
        mse = per_image_mse(self.decoder, self.modulator, latents, self.coords, targets, stats).float()
        self.accelerator.backward(mse.sum())
        return mse

    def _step_table_rows(self, rows: torch.Tensor, latents: torch.Tensor | None, total: int) -> None:
        """Row-wise Adam on every rank's batch rows with their (row, gradient) pairs: the same step on every rank."""
        cfg, device = self.cfg, self.accelerator.device
        grads = (latents.grad if latents is not None and latents.grad is not None
                 else torch.zeros(0, cfg.latent_dim, device=device))
        all_rows, all_grads = gather_row_gradients(rows[: grads.shape[0]], grads.float(), cfg.train_batch_size,
                                                   self.accelerator)
        rowwise_adam_step(self.table, all_rows, all_grads / max(total, 1), cfg.latent_learning_rate)
        with torch.no_grad():
            self.table.visited[all_rows] = True

    def _seed_shots(self) -> None:
        """Under finite shots: this step's draws, the same on a resumed run, independent across ranks."""
        if self.sampled_circuits:
            draws = step_generator(self.cfg.seed, STAGE1, self.accelerator.process_index, self.global_step,
                                   self.accelerator.device)
            for circuit in self.sampled_circuits:
                circuit.measurement_generator = draws

    def _global_metrics(self, mse: torch.Tensor, total: int) -> dict[str, Any]:
        """Loss and PSNR averaged over every rank's images, and whether a signal asked any rank to stop."""
        flag = self.stop_request.flag if self.stop_request is not None else 0
        sums = torch.tensor([mse.detach().sum().item(), psnr_from_mse(mse.detach(), 2.0).sum().item(), flag],
                            device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            sums = self.accelerator.reduce(sums, reduction="sum")
        loss, mean_psnr = (sums[:2] / max(total, 1)).tolist()
        return {"loss": loss, "psnr": mean_psnr, "stopping": bool(sums[2].item() > 0)}

    # -- the loop -------------------------------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Run the steps to ``cfg.max_train_steps`` (a SIGTERM / SIGINT: finish the step, checkpoint, stop on every
        rank), then `finish`; returns the summary."""
        self.progress = tqdm(total=self.cfg.max_train_steps, initial=self.global_step, desc="stage 1",
                             disable=not self.accelerator.is_local_main_process)
        with stop_on_signals() as self.stop_request:
            while self.global_step < self.cfg.max_train_steps:
                self._run_epoch()
        self.progress.close()
        return self.finish()

    def _epoch_batches(self):
        """This epoch's batches from where the run stands in it (a resumed run skips the ones it trained on)."""
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(self.epoch)
        if not self.streamed:
            return (self.accelerator.skip_first_batches(self.loader, self.batch_in_epoch) if self.batch_in_epoch
                    else self.loader)
        self.dataset.set_epoch(self.epoch)  # the shuffle buffer's order
        # this rank's own batches; a rank that ran out joins the others' steps with none
        return lockstep_batches(itertools.islice(self.loader, self.batch_in_epoch, None), self.accelerator,
                                self.collate([]))

    def _run_epoch(self) -> None:
        """The rest of the current epoch, or up to ``max_train_steps``."""
        resumed_mid_epoch = self.batch_in_epoch > 0  # a checkpoint at an epoch's last batch leaves nothing to skip
        got_batch = False
        waited = time.perf_counter()
        for batch in self._epoch_batches():
            got_batch = True
            start, cpu_start = time.perf_counter(), time.process_time()
            self.wait_seconds.append(start - waited)
            record = self.training_step(batch)
            self._after_step(record, start, cpu_start)
            if self.global_step >= self.cfg.max_train_steps:
                return
            waited = time.perf_counter()
        self.epoch += 1
        self.batch_in_epoch = 0
        if not got_batch and not resumed_mid_epoch:
            raise ValueError("the dataset yields no batches (fewer readable images than processes?)")

    def _after_step(self, record: dict[str, Any], start: float, cpu_start: float) -> None:
        """Count the step, log it, checkpoint when due (or when stopping), and call ``on_step``."""
        cfg = self.cfg
        self.global_step += 1
        self.batch_in_epoch += 1
        self.step_seconds.append(time.perf_counter() - start)
        self.step_cpu.append(time.process_time() - cpu_start)
        self.progress.update(1)
        self.progress.set_postfix(loss=f"{record['loss']:.4f}", psnr=f"{record['psnr']:.2f}")
        self.history.append({"step": self.global_step, "loss": record["loss"], "psnr": record["psnr"]})
        if self.accelerator.is_main_process and (self.global_step % cfg.logging_steps == 0 or self.global_step == 1):
            append_text(self.log_path, json.dumps({"step": self.global_step, "loss": record["loss"],
                                                   "psnr": record["psnr"], "seconds": self.step_seconds[-1],
                                                   "skipped_images": self.indexed_collate.skipped}) + "\n")
        if (self.global_step % cfg.checkpointing_steps == 0 or self.global_step == cfg.max_train_steps
                or record["stopping"]):
            saved = self.save_checkpoint()
        if record["stopping"]:
            self.accelerator.print(f"stage 1: stopped by a signal at step {self.global_step}, after saving {saved}; "
                                   "continue with --resume_from_checkpoint latest")
            raise TrainingStopped(f"stopped at step {self.global_step}, checkpoint saved in {saved}; continue "
                                  "with --resume_from_checkpoint latest")
        if self.on_step is not None:
            self.on_step(self.global_step, self.history[-1])

    # -- finish ---------------------------------------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Check the ranks agree, evaluate the table, save ``decoder`` / ``modulator`` / the table and
        ``train_summary.json``; returns the summary (with the trained rows of the table, in memory on every rank)."""
        summary = self._summary()
        with failure_shared_by_ranks(self.accelerator, f"the trained models to {self.output_dir}",
                                     kept="the checkpoints are intact"):
            if self.accelerator.is_main_process:  # a failure here stops every rank, none waits for the main one
                for name, model in (("decoder", self.decoder), ("modulator", self.modulator)):
                    save_folder_atomically(model, self.output_dir / name)  # a kill leaves the old folder or none
                if self.table is not None:
                    save_latent_table(self.table, self.output_dir)
                write_text(self.output_dir / "train_summary.json", json.dumps(summary, indent=2))
        if self.owns_accelerator:
            self.accelerator.end_training()
        if self.table is not None:  # equal on every rank: no rank has to read the main one's file
            summary["trained_latents"] = trained_rows({"latents": self.table.latents.detach().to("cpu").clone(),
                                                       "visited": self.table.visited.to("cpu")})
        return summary

    def _summary(self) -> dict[str, Any]:
        """``train_summary.json``: steps, losses, timings, the ranks' largest parameter difference, table PSNR."""
        history, accelerator = self.history, self.accelerator
        checked = self.params + ([self.table.latents] if self.table is not None else [])
        flat = torch.cat([p.detach().reshape(-1).float() for p in checked]).unsqueeze(0)
        gathered = accelerator.gather(flat) if accelerator.num_processes > 1 else flat
        rank_diff = float((gathered - gathered[0:1]).abs().max().item())
        summary = {
            "steps": self.global_step,
            "num_processes": accelerator.num_processes,
            "first_loss": history[0]["loss"] if history else None,
            "last_loss": history[-1]["loss"] if history else None,
            "last_psnr": history[-1]["psnr"] if history else None,
            "median_step_seconds": _median(self.step_seconds),
            "median_step_cpu_seconds": _median(self.step_cpu),
            "median_data_wait_seconds": _median(self.wait_seconds),
            "max_rank_parameter_difference": rank_diff,
            "skipped_images": self.indexed_collate.skipped,
            "decoder_parameters": sum(p.numel() for p in self.decoder.parameters()),
            "modulator_parameters": sum(p.numel() for p in self.modulator.parameters()),
            "history": history,
        }
        if self.table is not None:
            if accelerator.is_main_process:  # an evaluation pass: once, not once per rank
                summary.update(table_psnr(self.decoder, self.modulator, self.table.latents.detach(), self.dataset,
                                          self.collate, self.cfg, self.coords))
            summary["visited_latents"] = int(self.table.visited.sum())
        if rank_diff != 0 and accelerator.is_main_process:
            logger.warning("parameters differ across processes by up to %g", rank_diff)
        return summary


def train_functa(cfg: FunctaTrainingConfig, accelerator=None, init_models: tuple | None = None, dataset=None,
                 on_step: Callable[[int, dict[str, float]], None] | None = None,
                 init_latents: torch.Tensor | None = None, first_visit_steps: int = 0,
                 stream_capacity: int | None = None) -> dict[str, Any]:
    """Run (or resume) a stage-1 training; returns the summary also written to ``output_dir/train_summary.json``.

    Args:
        cfg: The run's configuration.
        accelerator: An ``accelerate.Accelerator`` (then not ended here, so a second stage can use it); default: one
            made from ``cfg``.
        init_models: A pretrained ``(decoder, modulator)`` to fine-tune, instead of ``build_models(cfg)``.
        dataset: A ready dataset (default: loaded from ``cfg``).
        on_step: Called as ``on_step(step, record)`` on every process after each step (validation hooks).
        init_latents: Auto-decoding: start the latent table from these rows ``(N, latent_dim)`` or one row for all
            (e.g. the pretrained prior's mean latent) instead of near zero.
        first_visit_steps: Auto-decoding: if > 0, encode each image with that many Adam steps (decoder frozen) the
            first time its batch comes, so nothing runs over all images before the first step.
        stream_capacity: Rows of a streamed dataset's latent table (default ``cfg.max_train_samples``), its mirrors
            as many again.

    Returns:
        The run's summary: ``steps``, the last loss and PSNR, timings, the output folders.

    Examples:
        >>> import numpy as np
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from qiren_gen.training.functa_trainer import FunctaTrainingConfig, train_functa
        >>> Path("faces").mkdir()
        >>> for i in range(4):
        ...     Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(f"faces/{i}.png")
        >>> cfg = FunctaTrainingConfig(output_dir="run", train_data_dir="faces", resolution=8, n_qubits=2,
        ...                            hidden_layers=1, latent_dim=4, train_batch_size=2, max_train_steps=2,
        ...                            checkpointing_steps=2, logging_steps=1, table_eval_images=None)
        >>> summary = train_functa(cfg)
        >>> summary["steps"], (Path("run") / "train_summary.json").is_file()
        (2, True)
    """
    return FunctaTrainer(cfg, accelerator, init_models, dataset, on_step, init_latents, first_visit_steps,
                         stream_capacity).train()


def fused_adam(params, lr: float) -> torch.optim.Adam:
    """Adam with torch's fused kernel (one pass per parameter instead of a handful of ops per tensor: the model's
    16 small tensors cost 0.1 ms a step instead of 0.6) where this torch has one for the parameters' device, else
    the per-tensor Adam; the same update up to rounding."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # no fused kernel for this device (or torch < 2.4 on the CPU)
        return torch.optim.Adam(params, lr=lr)


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


__all__ = ["DECODERS", "DECODER_ALIASES", "LATENTS_FILE", "MAX_LATENT_DIM", "FunctaTrainer", "FunctaTrainingConfig",
           "fused_adam",
           "IndexedCollator", "IndexedImages", "IndexedStream", "LatentTable", "all_ranks", "build_decoder",
           "build_models", "canonical_decoder", "first_items", "first_visit_encode", "head_items", "lockstep_batches",
           "model_signature", "sync_gradients", "table_psnr", "train_functa", "trained_rows"]
