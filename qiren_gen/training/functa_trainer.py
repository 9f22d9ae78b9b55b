"""Training a functa model (shared decoder + latent modulator) with Accelerate: meta-SGD or auto-decoded latents.

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
dropped); gradients are summed over processes and divided by the global
number of images (an exact global-batch mean, also when a rank had to drop corrupt images), so every rank applies
the same update and parameters stay identical (checked at the end). SIGTERM / SIGINT stop every rank after a
checkpoint (``qiren_gen.training.stopping``). Under finite shots (``quantum.shots.measurement`` around the call, as
``--train_shots`` does), the circuits draw each step's samples from a generator seeded by (seed, stage 1, rank,
step), whatever generator they were given: a resumed run draws what an uninterrupted one drew, and ranks draw
independently.
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..data.datasets import (IMAGE_COLUMN, ImageCollator, check_resolution, declared_num_examples,
                             load_image_dataset)
from ..data.grids import image_grid
from ..data.indexed import IndexedCollator, IndexedImages, IndexedStream, loader_options
from ..data.stream_shards import rows as stream_rows
from ..functa import backward_per_image_mse, encode_images, inner_loop, per_image_mse, step_chunk_points
from ..metrics import psnr_from_mse
from ..models.modulated import ENCODINGS, LatentModulator, ModulatedQIREN, ModulatedSIREN
from ..models.synthesis import FeatureSynthesisDecoder
from ..models.wide import ModulatedWideQIREN
from ..quantum.shots import circuit_modules
from ..runtime.allocator import configure_allocator
from .checkpointing import (agreed_resume_checkpoint, check_compatible, load_checkpoint_models, read_training_state,
                            save_checkpoint)
from .latent_rows import LatentTable, gather_row_gradients, rowwise_adam_step
from .launch import make_accelerator, synthesis_dtype
from .outputs import save_folder_atomically
from .rank_failures import failure_shared_by_ranks
from .randomness import INIT_STEP, STAGE_FUNCTA, step_generator
from .stopping import TrainingStopped, stop_on_signals

logger = logging.getLogger(__name__)

DECODERS = ("modulated-qiren", "modulated-siren", "circuit-features", "fourier-features", "wide-qiren")
"""``modulated-qiren``: the paper's QIREN, latent-modulated (`ModulatedQIREN`); ``modulated-siren``: Functa's
SIREN (`ModulatedSIREN`); ``circuit-features`` / ``fourier-features``: `FeatureSynthesisDecoder` with
``features="circuit"`` (quantum circuit features) or ``"fourier"`` (the classical control); ``wide-qiren``:
`ModulatedWideQIREN` (``n_heads`` circuits of ``n_qubits`` per hybrid layer). ``qiren`` / ``siren`` name the
unmodulated fitting models (``qiren_gen.models.MODEL_BUILDERS``)."""
DECODER_ALIASES = {"qiren": "modulated-qiren", "siren": "modulated-siren"}
"""Former decoder names, still accepted (and read as the current name) so that old commands and run configs work."""
MAX_LATENT_DIM = 65536
"""Largest latent size accepted (functa uses 64-1024); beyond it the modulator's weights alone exhaust memory."""


@dataclass
class FunctaTrainingConfig:
    """Everything a functa training run needs; ``scripts/train_functa.py`` fills it from the command line.

    Each field is the same-named flag of ``scripts/train_functa.py`` (``--train_batch_size`` is ``train_batch_size``);
    the main ones:

    Args:
        output_dir: Folder of checkpoints, the trained ``decoder`` / ``modulator`` and ``train_summary.json``.
        dataset_name: A Hub dataset (or ``train_data_dir``: a local image folder).
        resolution: Side of the square training images.
        channels: 1 (grayscale) or 3 (RGB).
        decoder: One of ``DECODERS``: ``"modulated-qiren"``, ``"modulated-siren"``, ``"circuit-features"``,
            ``"fourier-features"``, ``"wide-qiren"`` (``"qiren"`` / ``"siren"``, former names, are read as the first two).
        modulation: How latents act on the decoder.
        latent_dim: Numbers per image latent.
        encoding: ``"meta_sgd"`` (Functa's inner loop) or ``"auto_decode"`` (a latent table, DeepSDF-style).
        train_batch_size: Images per step.
        max_train_steps: Optimiser steps.
        learning_rate: Adam learning rate of the decoder and modulator.
        seed: Seed of the initial weights and the data order.

    Examples:
        >>> from qiren_gen.training.functa_trainer import FunctaTrainingConfig
        >>> cfg = FunctaTrainingConfig(decoder="circuit-features", resolution=8, latent_dim=16)
        >>> cfg.validate()  # raises ValueError for settings that cannot train
        >>> FunctaTrainingConfig(decoder="qiren").decoder
        'modulated-qiren'
    """

    output_dir: str = "functa-model"
    dataset_name: str | None = None
    train_data_dir: str | None = None
    split: str = "train"
    image_column: str | None = None
    streaming: bool = False
    shuffle_buffer_size: int = 1000
    cache_dir: str | None = None
    max_train_samples: int | None = None
    resolution: int = 16
    channels: int = 1
    decoder: str = "modulated-qiren"
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
    encoding_scale: float | list | str | None = None
    """circuit-features: per-re-upload RZ scales of the feature circuits (e.g. ``"ternary"``); None: ``RZ(x)``."""
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
    table_eval_images: int | None = 64
    synthesis_precision: str = "auto"
    step_memory_budget_mb: int = 64
    """auto_decode: MiB one activation of the widest layer may take in a step; larger grids train in chunks of
    points with the same gradient."""

    def __post_init__(self) -> None:
        self.decoder = DECODER_ALIASES.get(self.decoder, self.decoder)

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that cannot train."""
        check_resolution(self.resolution)
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        for name in ("latent_dim", "train_batch_size", "max_train_steps", "checkpointing_steps", "logging_steps",
                     "step_memory_budget_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.latent_dim > MAX_LATENT_DIM:
            raise ValueError(f"latent_dim must be <= {MAX_LATENT_DIM}, got {self.latent_dim}")
        if self.inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.dataloader_num_workers < 0 or self.shuffle_buffer_size < 0:
            raise ValueError("dataloader_num_workers and shuffle_buffer_size must be >= 0")
        if self.synthesis_precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"synthesis_precision must be auto, fp32 or bf16, got {self.synthesis_precision!r}")
        if not self.latent_learning_rate > 0 or not self.latent_l2 >= 0 or self.encode_steps < 1:
            raise ValueError("need latent_learning_rate > 0, latent_l2 >= 0 and encode_steps >= 1")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")


def build_decoder(cfg: FunctaTrainingConfig) -> torch.nn.Module:
    """The decoder family ``cfg.decoder`` with ``cfg``'s sizes."""
    if cfg.decoder == "modulated-qiren":
        return ModulatedQIREN(
            out_channels=cfg.channels, n_qubits=cfg.n_qubits, hidden_layers=cfg.hidden_layers,
            n_reuploads=cfg.n_reuploads, n_blocks=cfg.n_blocks, modulation=cfg.modulation,
        )
    if cfg.decoder == "wide-qiren":
        return ModulatedWideQIREN(
            out_channels=cfg.channels, n_heads=cfg.n_heads, n_qubits=cfg.n_qubits, hidden_layers=cfg.hidden_layers,
            n_reuploads=cfg.n_reuploads, n_blocks=cfg.n_blocks, entangler=cfg.entangler, modulation=cfg.modulation,
        )
    if cfg.decoder == "modulated-siren":
        return ModulatedSIREN(
            out_channels=cfg.channels, hidden_features=cfg.hidden_features, hidden_layers=cfg.hidden_layers,
            modulation=cfg.modulation,
        )
    return FeatureSynthesisDecoder(
        out_channels=cfg.channels, features="circuit" if cfg.decoder == "circuit-features" else "fourier",
        n_heads=cfg.n_heads, n_qubits=cfg.n_qubits, n_reuploads=cfg.n_reuploads, n_blocks=cfg.n_blocks,
        entangler=cfg.entangler, frequency_init=cfg.frequency_init, n_fourier=cfg.n_fourier,
        fourier_scale=cfg.fourier_scale, hidden_features=cfg.hidden_features, hidden_layers=cfg.hidden_layers,
        modulation=cfg.modulation, encoding_scale=cfg.encoding_scale if cfg.decoder == "circuit-features" else None,
    )


def build_models(cfg: FunctaTrainingConfig) -> tuple[torch.nn.Module, LatentModulator]:
    """Decoder and modulator for ``cfg``, freshly initialised (seed the RNG first for identical init on every process).

    Args:
        cfg: The run's configuration (decoder family and sizes).

    Returns:
        ``(decoder, modulator)``.

    Examples:
        >>> import torch
        >>> from qiren_gen.training.functa_trainer import FunctaTrainingConfig, build_models
        >>> _ = torch.manual_seed(0)
        >>> decoder, modulator = build_models(FunctaTrainingConfig(n_qubits=2, hidden_layers=1, latent_dim=4))
        >>> type(decoder).__name__, modulator.config.latent_dim
        ('ModulatedQIREN', 4)
    """
    decoder = build_decoder(cfg)
    # SIREN's omega_0 = 30 makes latent gradients ~30x larger than QIREN's, so its step sizes start smaller.
    lr_init = cfg.inner_lr_init if cfg.inner_lr_init is not None else (0.01 if cfg.decoder == "modulated-siren" else 1.0)
    auto = cfg.encoding == "auto_decode"
    modulator = LatentModulator.for_decoder(
        decoder, cfg.latent_dim, hidden_layers=cfg.modulator_hidden_layers,
        inner_steps=cfg.encode_steps if auto else cfg.inner_steps, inner_lr_init=lr_init, encoding=cfg.encoding,
        encode_lr=cfg.latent_learning_rate, latent_l2=cfg.latent_l2,
    )
    return decoder, modulator


_LATER_OPTIONS = ("encoding_scale",)


def model_signature(decoder, modulator) -> dict[str, Any]:
    """JSON-able configs of both models: what a checkpoint must match to be resumed."""
    def clean(model):
        config = json.loads(model.to_json_string())
        # Options added later are left out at their default, so checkpoints made before them still resume.
        return {k: v for k, v in config.items() if not k.startswith("_")
                and not (k in _LATER_OPTIONS and v is None)}

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
    """``output_dir/{decoder,modulator}`` via ``save_pretrained``; a kill leaves each folder's old version or none."""
    for name, model in (("decoder", decoder), ("modulator", modulator)):
        save_folder_atomically(model, output_dir / name)


LATENTS_FILE = "latents.safetensors"
"""Auto-decoded training latents (key ``latents``, one row per training item) saved next to decoder/ and modulator/."""


def head_items(source, count: int | None) -> list[dict]:
    """The indexed items of the first ``count`` images of ``source`` (all when None), mirrors included: a fixed,
    cheap evaluation subset (a stream is read from its start, not shuffled)."""
    if isinstance(source, IndexedImages):
        n = len(source.dataset)
        rows = list(range(n if count is None else min(count, n)))
        return [source[i] for i in rows] + ([source[n + i] for i in rows] if source.flip else [])
    limit = source.capacity if count is None else min(count, source.capacity or count)
    positions = itertools.count() if limit is None else range(limit)  # first in zip: no example read past limit
    items = [{"example": example, "index": position, "flip": False}
             for position, example in zip(positions, stream_rows(source.stream))]
    if source.flip:
        items += [{**item, "index": source.capacity + item["index"], "flip": True} for item in items]
    return items


@torch.no_grad()
def table_psnr(decoder, modulator, latents: torch.Tensor, source, collate: ImageCollator,
               cfg: FunctaTrainingConfig, coords: torch.Tensor) -> dict[str, float]:
    """Mean reconstruction PSNR of the first ``cfg.table_eval_images`` training items at their learned latents
    (mirrors, if any, separately): a fixed subset, so the cost does not grow with the dataset. Keys
    ``train_psnr_all[_mirrors]`` when that subset is every image, else ``train_psnr[_mirrors]``."""
    items = head_items(source, cfg.table_eval_images)
    values, mirrored = [], []
    for start in range(0, len(items), 32):
        chunk = items[start : start + 32]
        images, indices = IndexedCollator(collate)(chunk)
        if not images.shape[0]:
            continue
        targets = images.to(coords.device).permute(0, 2, 3, 1).reshape(images.shape[0], -1, cfg.channels)
        values.append(psnr_from_mse(per_image_mse(decoder, modulator, latents[indices.to(coords.device)], coords, targets), 2.0))
        flips = {item["index"] for item in chunk if item["flip"]}
        mirrored.append(torch.tensor([int(i) in flips for i in indices.tolist()], dtype=torch.bool))
    if not values:
        return {}
    values, mirrored = torch.cat(values).cpu(), torch.cat(mirrored)
    plain = values[~mirrored]
    total = len(source.dataset) if isinstance(source, IndexedImages) else source.capacity
    key = "train_psnr_all" if total is not None and plain.numel() >= total else "train_psnr"  # all, or a subset
    out = {key: plain.mean().item(), "train_psnr_images": int(plain.numel())}
    if mirrored.any():
        out[f"{key}_mirrors"] = values[mirrored].mean().item()
    return out


def train_functa(cfg: FunctaTrainingConfig, accelerator=None, init_models: tuple | None = None, dataset=None,
                 on_step: Callable[[int, dict[str, float]], None] | None = None,
                 init_latents: torch.Tensor | None = None, first_visit_steps: int = 0,
                 stream_capacity: int | None = None) -> dict[str, Any]:
    """Run (or resume) a functa training; returns the summary also written to ``output_dir/train_summary.json``.

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
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    cfg.validate()
    configure_allocator()  # every step's 32 MiB activations stay on the heap (QIREN_GEN_MALLOC=default: off)
    output_dir = Path(cfg.output_dir)
    owns_accelerator = accelerator is None
    if owns_accelerator:
        accelerator = make_accelerator(cfg.mixed_precision, cfg.seed)
    resume = agreed_resume_checkpoint(accelerator, output_dir, cfg.resume_from_checkpoint)
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
    collate = ImageCollator(IMAGE_COLUMN, cfg.resolution, cfg.channels)
    streamed = not hasattr(dataset, "__len__")
    if streamed:
        capacity = stream_capacity if stream_capacity is not None else cfg.max_train_samples
        if capacity is None:
            capacity = declared_num_examples(dataset, cfg.split)
        if capacity is None and (auto or cfg.flip_augment):
            raise ValueError("auto-decoded latents or --flip_augment on a stream need --max_train_samples (the size "
                             "of the latent table: one row per streamed image), as the dataset declares no "
                             "num_examples for its split")
        dataset = IndexedStream(dataset, capacity, cfg.flip_augment, cfg.shuffle_buffer_size, cfg.seed,
                                rank=accelerator.process_index, num_ranks=accelerator.num_processes)
        n_items = None if capacity is None else capacity * (2 if cfg.flip_augment else 1)
    else:
        dataset = IndexedImages(dataset, cfg.flip_augment)
        n_items = len(dataset)
    table = (LatentTable(n_items, cfg.latent_dim, step_generator(cfg.seed, STAGE_FUNCTA, 0, INIT_STEP)) if auto
             else None)
    if table is not None and init_latents is not None:
        if init_latents.ndim == 1:
            init_latents = init_latents[None].expand_as(table.latents)
        if tuple(init_latents.shape) != tuple(table.latents.shape):
            raise ValueError(f"init_latents must have shape {tuple(table.latents.shape)}, got {tuple(init_latents.shape)}")
        with torch.no_grad():
            table.latents.copy_(init_latents)
    signature = model_signature(decoder, modulator)
    if table is not None:
        signature["latent_table"] = list(table.latents.shape)
        signature["latent_update"] = "rowwise_adam"  # tables of the earlier dense update cannot resume here
    if resume is not None:
        check_compatible(read_training_state(resume).get("model", {}), signature, resume)
    decoder.to(accelerator.device)
    modulator.to(accelerator.device)
    if hasattr(decoder, "synthesis_dtype"):  # bf16 synthesis layers on CUDA; the circuits stay fp32
        decoder.synthesis_dtype = synthesis_dtype(accelerator.device, cfg.synthesis_precision)
    if table is not None:
        table.to(accelerator.device)
    indexed_collate = IndexedCollator(collate)
    drop_last = not streamed and len(dataset) >= cfg.train_batch_size * accelerator.num_processes
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.train_batch_size, shuffle=not streamed, collate_fn=indexed_collate,
        drop_last=drop_last, **loader_options(accelerator.device, cfg.dataloader_num_workers),
    )
    model_params = list(decoder.parameters()) + list(modulator.parameters())
    params = model_params
    groups = [{"params": model_params, "lr": cfg.learning_rate, "weight_decay": cfg.weight_decay}]
    optimizer = torch.optim.Adam(groups, lr=cfg.learning_rate)
    scheduler = get_scheduler("constant", optimizer=optimizer)
    if streamed:  # each rank reads its own positions (IndexedStream): no dispatching, no split of the batch
        optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    else:
        optimizer, loader, scheduler = accelerator.prepare(optimizer, loader, scheduler)
    models = {"decoder": decoder, "modulator": modulator}  # checkpointed as safetensors, not Accelerate pickles
    if table is not None:
        models["latents"] = table
    sampled_circuits = [m for m in circuit_modules(decoder) if m.shots is not None]  # under finite shots

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
    step_cpu: list[float] = []
    wait_seconds: list[float] = []
    history: list[dict[str, float]] = []

    def checkpoint_state() -> dict[str, Any]:
        return {"epoch": epoch, "batch_in_epoch": batch_in_epoch, "model": signature, "config": asdict(cfg)}

    with stop_on_signals() as stop_request:  # SIGTERM / SIGINT: finish the step, checkpoint, stop (every rank)
        while global_step < cfg.max_train_steps:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            if streamed:
                dataset.set_epoch(epoch)  # the shuffle buffer's order
            resumed_mid_epoch = batch_in_epoch > 0  # a checkpoint at an epoch's last batch leaves nothing to skip
            if streamed:  # this rank's own batches; a rank that ran out joins the others' steps with none
                batches = lockstep_batches(itertools.islice(loader, batch_in_epoch, None), accelerator,
                                           collate([]))
            else:
                batches = accelerator.skip_first_batches(loader, batch_in_epoch) if batch_in_epoch else loader
            got_batch = False
            waited = time.perf_counter()
            for batch in batches:
                got_batch = True
                start, cpu_start = time.perf_counter(), time.process_time()
                wait_seconds.append(start - waited)
                images, indices = batch
                images = images.to(accelerator.device, non_blocking=True)
                if sampled_circuits:  # this step's shots: the same on a resumed run, independent across ranks
                    shot_draws = step_generator(cfg.seed, STAGE_FUNCTA, accelerator.process_index, global_step,
                                                accelerator.device)
                    for circuit in sampled_circuits:
                        circuit.measurement_generator = shot_draws
                if table is not None and first_visit_steps:
                    first_visit_encode(decoder, modulator, table, images, indices, first_visit_steps, accelerator)
                targets = images.permute(0, 2, 3, 1).reshape(images.shape[0], coords.shape[0], cfg.channels)
                n_local = images.shape[0]
                rows = indices.to(accelerator.device)
                latents = None
                with accelerator.autocast():
                    if n_local and table is not None:
                        stats = decoder.reference_statistics()
                        latents = table.latents[rows].detach().requires_grad_(True)  # the batch's rows only
                        mse = backward_per_image_mse(  # in chunks of points beyond the step's memory budget
                            decoder, modulator, latents, coords, targets, stats,
                            chunk_points=step_chunk_points(decoder, n_local, cfg.step_memory_budget_mb * 2**20),
                            penalty=cfg.latent_l2 * latents.float().square().sum(), backward=accelerator.backward)
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
                if table is not None:  # (row, gradient) pairs of every rank's batch; the same step on every rank
                    grads = (latents.grad if latents is not None and latents.grad is not None
                             else torch.zeros(0, cfg.latent_dim, device=accelerator.device))
                    all_rows, all_grads = gather_row_gradients(rows[: grads.shape[0]], grads.float(),
                                                               cfg.train_batch_size, accelerator)
                    rowwise_adam_step(table, all_rows, all_grads / max(total, 1), cfg.latent_learning_rate)
                    with torch.no_grad():
                        table.visited[all_rows] = True
                sums = torch.tensor([mse.detach().sum().item(), psnr_from_mse(mse.detach(), 2.0).sum().item(),
                                     stop_request.flag], device=accelerator.device)
                if accelerator.num_processes > 1:
                    sums = accelerator.reduce(sums, reduction="sum")
                loss, mean_psnr = (sums[:2] / max(total, 1)).tolist()
                stopping = bool(sums[2].item() > 0)
                global_step += 1
                batch_in_epoch += 1
                step_seconds.append(time.perf_counter() - start)
                step_cpu.append(time.process_time() - cpu_start)
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.4f}", psnr=f"{mean_psnr:.2f}")
                history.append({"step": global_step, "loss": loss, "psnr": mean_psnr})
                if accelerator.is_main_process and (global_step % cfg.logging_steps == 0 or global_step == 1):
                    with open(log_path, "a") as handle:
                        handle.write(json.dumps({"step": global_step, "loss": loss, "psnr": mean_psnr,
                                                 "seconds": step_seconds[-1],
                                                 "skipped_images": indexed_collate.skipped}) + "\n")
                if (global_step % cfg.checkpointing_steps == 0 or global_step == cfg.max_train_steps
                        or stopping):
                    saved = save_checkpoint(accelerator, output_dir, global_step, checkpoint_state(),
                                            cfg.checkpoints_total_limit, models=models)
                if stopping:
                    accelerator.print(f"stopped by a signal at step {global_step}, after saving {saved}; "
                                      "continue with --resume_from_checkpoint latest")
                    raise TrainingStopped(f"stopped at step {global_step}")
                if on_step is not None:
                    on_step(global_step, history[-1])
                if global_step >= cfg.max_train_steps:
                    break
                waited = time.perf_counter()
            else:
                epoch += 1
                batch_in_epoch = 0
                if not got_batch and not resumed_mid_epoch:
                    raise ValueError("the dataset yields no batches (fewer readable images than processes?)")
    progress.close()

    checked = params + ([table.latents] if table is not None else [])
    flat = torch.cat([p.detach().reshape(-1).float() for p in checked]).unsqueeze(0)
    gathered = accelerator.gather(flat) if accelerator.num_processes > 1 else flat
    rank_diff = float((gathered - gathered[0:1]).abs().max().item())
    summary = {
        "steps": global_step,
        "num_processes": accelerator.num_processes,
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "last_psnr": history[-1]["psnr"] if history else None,
        "median_step_seconds": _median(step_seconds),
        "median_step_cpu_seconds": _median(step_cpu),
        "median_data_wait_seconds": _median(wait_seconds),
        "max_rank_parameter_difference": rank_diff,
        "skipped_images": indexed_collate.skipped,
        "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
        "modulator_parameters": sum(p.numel() for p in modulator.parameters()),
        "history": history,
    }
    if table is not None:
        if accelerator.is_main_process:  # an evaluation pass: once, not once per rank
            summary.update(table_psnr(decoder, modulator, table.latents.detach(), dataset, collate, cfg, coords))
        summary["visited_latents"] = int(table.visited.sum())
    if rank_diff != 0 and accelerator.is_main_process:
        logger.warning("parameters differ across processes by up to %g", rank_diff)
    with failure_shared_by_ranks(accelerator, f"the trained models to {output_dir}",
                                 kept="the checkpoints are intact"):
        if accelerator.is_main_process:  # a failure here stops every rank, none waits for the main one
            _save_final(decoder, modulator, output_dir)
            if table is not None:
                from safetensors.torch import save_file

                save_file({"latents": table.latents.detach().to("cpu").contiguous(),
                           "visited": table.visited.to("cpu").contiguous()}, str(output_dir / LATENTS_FILE))
            (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    if owns_accelerator:
        accelerator.end_training()
    if table is not None:  # in memory on every rank (equal everywhere): no rank has to read the main one's file
        summary["trained_latents"] = trained_rows({"latents": table.latents.detach().to("cpu").clone(),
                                                   "visited": table.visited.to("cpu")})
    return summary


def trained_rows(saved: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The rows of a saved latent table (``LATENTS_FILE``'s tensors) that trained at least once (all rows when the
    file has no ``visited`` mask, or none is marked); None without ``latents``."""
    latents, visited = saved.get("latents"), saved.get("visited")
    if latents is None or visited is None or not visited.any() or visited.all():
        return latents
    return latents[visited.bool()]


def lockstep_batches(batches, accelerator, empty_images: torch.Tensor):
    """This rank's ``batches`` in step with every other rank's: after its own run out, it yields empty batches
    while any rank still has one; ends when all are exhausted (one 1-element all-reduce per step)."""
    iterator = iter(batches)
    empty = (empty_images, torch.zeros(0, dtype=torch.long))
    while True:
        batch = next(iterator, None)
        if accelerator.num_processes > 1:
            alive = torch.tensor([0.0 if batch is None else 1.0], device=accelerator.device)
            if accelerator.reduce(alive, reduction="sum").item() == 0:
                return
        elif batch is None:
            return
        yield empty if batch is None else batch


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def _all_ranks(tensor: torch.Tensor, accelerator) -> torch.Tensor:
    """``tensor`` (first dim may differ per rank) concatenated over processes (itself with one process)."""
    if accelerator.num_processes == 1:
        return tensor
    return accelerator.gather(accelerator.pad_across_processes(tensor, dim=0, pad_index=-1))


@torch.no_grad()
def mark_visited(table: LatentTable, indices: torch.Tensor, accelerator) -> None:
    """Mark the rows of this step's batch (every rank's) as trained."""
    rows = _all_ranks(indices.to(table.visited.device), accelerator)
    table.visited[rows[rows >= 0]] = True


def first_visit_encode(decoder, modulator, table: LatentTable, images: torch.Tensor, indices: torch.Tensor,
                       steps: int, accelerator) -> None:
    """Encode the batch's never-seen images with ``steps`` Adam steps (decoder frozen) into their table rows, on
    every rank alike (rows and latents are gathered)."""
    rows = indices.to(table.visited.device)
    new = ~table.visited[rows]
    latents = encode_images(decoder, modulator, images[new], steps=steps) if new.any() else None
    dim = table.latents.shape[1]
    local = latents if latents is not None else torch.zeros(0, dim, device=table.latents.device)
    mask_rows = _all_ranks(rows[new], accelerator)
    gathered = _all_ranks(local.to(table.latents.dtype), accelerator)
    keep = mask_rows >= 0
    if keep.any():
        with torch.no_grad():
            table.latents[mask_rows[keep]] = gathered[keep]


__all__ = ["DECODERS", "DECODER_ALIASES", "LATENTS_FILE", "FunctaTrainingConfig", "IndexedCollator", "IndexedImages", "IndexedStream",
           "LatentTable", "build_decoder", "build_models", "first_visit_encode", "head_items", "lockstep_batches",
           "mark_visited",
           "model_signature", "table_psnr", "train_functa", "trained_rows"]
