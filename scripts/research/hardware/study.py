"""The decoders on a simulated quantum device: reconstruction PSNR and sample sharpness under finite shots and gate
noise, noise-aware fine-tuning, and the device budget per image. ``scripts/research/hardware/hardware_study.py`` runs it
and writes ``docs/research/hardware.md`` with PNG curves.

* Bundled pipeline and its noise-aware fine-tunes: `hardware_faces`.
* Signal-fitting QIREN on camera and (given its path) the Bach clip: `hardware_signals`.
* Device budget per image for the circuit-feature decoder (one evaluation per grid, shared by every sample) versus a
  per-sample circuit decoder (``ModulatedWideQIREN`` with ``angles`` modulation: every sample has its own circuits).
* The page and its figures: `hardware_report`.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from qiren_gen.models import ModulatedWideQIREN
from qiren_gen.pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir
from research.hardware.faces import finetune_study, pipeline_study
from research.hardware.report import plot_curves, shots_needed, write_report
from research.hardware.signals import signal_study, signal_tasks

SHOTS = (10, 100, 1000, 10_000, 100_000, 1_000_000)
DEPOLARIZING = (1e-4, 1e-3, 1e-2, 1e-1)
BUDGET_SIZES = (25, 128, 1024)
CARD_MARKER = ("<!-- hardware-study -->", "<!-- /hardware-study -->")


@dataclass
class StudyConfig:
    """What the study measures (defaults: the committed ``docs/research/hardware.md``)."""

    shots: tuple[int, ...] = SHOTS
    depolarizing: tuple[float, ...] = DEPOLARIZING
    seeds: int = 3
    sample_count: int = 16
    """Prior samples (seed 0) whose sharpness is measured under each shot count."""
    camera_size: int = 32
    bach_path: str | None = None
    """The paper's ``gt_bach.wav``; ``None`` leaves the Bach clip out (it does not ship with the project)."""
    signal_steps: int = 301
    signal_noise_points: int = 128
    budget_shots: int = 1000
    train_shots: int = 100
    train_eval_shots: tuple[int, ...] = (10, 100, 1000)
    finetune: bool = True
    finetune_workdir: str = "runs/hardware_finetune"
    finetune_steps: int = 600
    finetune_learning_rate: float = 3e-4
    finetune_prior_steps: int = 500
    finetune_eval_noise: tuple[float, ...] = (1e-3, 1e-2, 3e-2)
    output: str = "docs/research/hardware.md"
    figure_dir: str = "docs/research/figures"
    json_path: str = "docs/research/hardware.json"
    model_card: str | None = "pipelines/qiren-lfw-faces/README.md"


def device_budget(cfg: StudyConfig) -> list[dict]:
    """Circuits, executions and shots per image: the bundled circuit-feature decoder vs a per-sample one."""
    dec = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir()).decoder.config
    wide = ModulatedWideQIREN(n_heads=32, n_qubits=4, hidden_layers=2, modulation="angles").config
    rows = []
    for size in BUDGET_SIZES:
        points = size * size
        feature_exec = points * dec.n_heads
        per_sample_exec = points * wide.n_heads * (1 + wide.hidden_layers)
        rows.append({
            "size": size, "points": points,
            "feature_circuits": dec.n_heads, "feature_executions_per_grid": feature_exec,
            "feature_shots_per_grid": feature_exec * cfg.budget_shots,
            "per_sample_circuits_per_image": wide.n_heads * (1 + wide.hidden_layers),
            "per_sample_executions_per_image": per_sample_exec,
            "per_sample_shots_per_image": per_sample_exec * cfg.budget_shots,
            "feature_shots_16_images": feature_exec * cfg.budget_shots,
            "per_sample_shots_16_images": 16 * per_sample_exec * cfg.budget_shots,
        })
    return rows


def faces_line(results: dict) -> str:
    """The bundled pipeline's one-line summary (quoted by its model card)."""
    f = results["faces"]
    need = shots_needed(f["shots"], f["exact"])
    return ("On a simulated quantum device (`scripts/research/hardware/hardware_study.py`, "
            "`docs/research/hardware.md`): "
            "held-out reconstruction "
            f"PSNR {f['exact']:.2f} dB exact; {f['shots'][100]:.2f} / {f['shots'][1000]:.2f} / "
            f"{f['shots'][10000]:.2f} dB with 100 / 1,000 / 10,000 shots per circuit; {f['depolarizing'][1e-3]:.2f} / "
            f"{f['depolarizing'][1e-2]:.2f} dB with depolarizing noise p = 1e-3 / 1e-2 per gate; within 0.5 dB of "
            f"exact from {need:,} shots. The 32 feature circuits see coordinates only: a device runs them once per "
            f"grid (625 points x 32 circuits x 1,000 shots = 2.0e7 shots for every 25x25 face there will ever be).")


def hardware_card_block(json_path: str | Path | None = None) -> str:
    """The study's marked model-card line from its JSON (default: the checkout's ``docs/research/hardware.json``;
    empty when the study has not been run)."""
    checkout = Path(__file__).resolve().parents[3]  # scripts/research/hardware/study.py -> the repository root
    path = Path(json_path) if json_path is not None else checkout / "docs" / "research" / "hardware.json"
    if not path.is_file():
        return ""
    line = json.loads(path.read_text()).get("faces_line")
    return f"\n{CARD_MARKER[0]}\n{line}\n{CARD_MARKER[1]}\n" if line else ""


def update_model_card(path: str, line: str) -> None:
    """Put ``line`` into the model card's Quality section between the study's markers (replacing an older one)."""
    card = Path(path)
    text = card.read_text()
    block = f"{CARD_MARKER[0]}\n{line}\n{CARD_MARKER[1]}"
    if CARD_MARKER[0] in text:
        start = text.index(CARD_MARKER[0])
        end = text.index(CARD_MARKER[1]) + len(CARD_MARKER[1])
        text = text[:start] + block + text[end:]
    else:
        head, sep, rest = text.partition("## Quality")
        if not sep:
            raise ValueError(f"'{path}' has no '## Quality' section")
        nxt = rest.find("\n## ")
        nxt = len(rest) if nxt < 0 else nxt
        text = head + sep + rest[:nxt].rstrip() + "\n\n" + block + "\n" + rest[nxt:]
    card.write_text(text)


def run_study(cfg: StudyConfig, command: str = "python scripts/research/hardware/hardware_study.py") -> dict:
    """Run every measurement, write the JSON, figures, report and the model card line; returns the results."""

    torch.manual_seed(0)
    start = time.perf_counter()
    tasks = signal_tasks(cfg.camera_size, cfg.bach_path)  # a bad --bach path fails here, before any work
    bar = tqdm(total=2 + len(tasks) + cfg.finetune, desc="hardware study")
    results = {"config": asdict(cfg)}
    results["faces"] = pipeline_study(cfg, bar.write)
    bar.update()
    results["signals"] = {}
    for task in tasks:
        results["signals"][task.name] = signal_study(task, cfg, bar.write)
        bar.update()
    if cfg.finetune:
        results["finetune"] = finetune_study(cfg, bar.write)
        bar.update()
    results["budget"] = device_budget(cfg)
    bar.update()
    bar.close()
    results["seconds"] = time.perf_counter() - start
    results["faces_line"] = faces_line(results)
    Path(cfg.json_path).write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_report(results, cfg, plot_curves(results, cfg), command)
    if cfg.model_card:
        update_model_card(cfg.model_card, results["faces_line"])
    return results


__all__ = ["StudyConfig", "device_budget", "faces_line", "hardware_card_block", "run_study", "shots_needed",
           "update_model_card"]
