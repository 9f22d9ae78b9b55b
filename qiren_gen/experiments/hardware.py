"""The decoders on a simulated quantum device: reconstruction PSNR under finite shots and gate noise, and the
device budget per image. ``scripts/hardware_study.py`` runs it and writes ``docs/hardware.md`` with PNG curves.

* Bundled pipeline (circuit features, 32 two-qubit CNOT-chain circuits): held-out LFW faces 90-99 encoded exactly,
  then decoded with the circuits measured under ``shots`` (features once per grid, shared by the 10 faces, as a
  device would run them) or under depolarizing noise ``p`` (exact 4x4 density matrices), mean over seeds.
* Signal-fitting QIREN (8 qubits, 3 circuits) fitted exactly to ``camera`` at 32x32, then evaluated under shots
  (every pixel) and depolarizing noise (256x256 density matrices, on a random subset of the pixels).
* Device budget per image for the circuit-feature decoder (one evaluation per grid, shared by every sample) versus a
  per-sample circuit decoder (``ModulatedWideQIREN`` with ``angles`` modulation: every sample has its own circuits).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

SHOTS = (10, 100, 1000, 10_000, 100_000, 1_000_000)
DEPOLARIZING = (1e-4, 1e-3, 1e-2, 1e-1)
BUDGET_SIZES = (25, 128, 1024)
CARD_MARKER = ("<!-- hardware-study -->", "<!-- /hardware-study -->")


@dataclass
class StudyConfig:
    """What the study measures (defaults: the committed ``docs/hardware.md``)."""

    shots: tuple[int, ...] = SHOTS
    depolarizing: tuple[float, ...] = DEPOLARIZING
    seeds: int = 3
    camera_size: int = 32
    camera_steps: int = 301
    camera_noise_pixels: int = 128
    budget_shots: int = 1000
    train_shots: int = 100
    train_eval_shots: tuple[int, ...] = (10, 100, 1000)
    output: str = "docs/hardware.md"
    figure_dir: str = "docs/figures"
    json_path: str = "docs/hardware.json"
    model_card: str | None = "pipelines/qiren-lfw-faces/README.md"
    fields: dict = field(default_factory=dict)


def _psnr01(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over images of the PSNR (dB) of ``[0, 1]`` images ``(B, ...)``."""
    mse = (pred.double() - target.double()).square().flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def held_out_faces() -> torch.Tensor:
    """LFW faces 90-99 of scikit-image's ``lfw_subset()`` (the bundled pipeline's held-out split), ``(10, 1, 25, 25)``."""
    from skimage.data import lfw_subset

    return torch.as_tensor(lfw_subset()[90:100], dtype=torch.float32)[:, None]


def pipeline_study(cfg: StudyConfig, progress) -> dict:
    """Held-out reconstruction PSNR of the bundled pipeline: exact, vs shots, vs depolarizing p."""
    from ..functa import decode_latents, encode_images
    from ..pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir
    from ..quantum.noise import NoiseModel
    from ..quantum.shots import measurement

    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    faces = held_out_faces()
    latents = encode_images(pipe.decoder, pipe.modulator, faces * 2 - 1)  # exact encoding

    def psnr(shots=None, noise=None, seed=0) -> float:
        with torch.no_grad(), measurement(pipe.decoder, shots, noise, torch.Generator().manual_seed(seed)):
            out = decode_latents(pipe.decoder, pipe.modulator, latents, 25, 25)
        return _psnr01(((out.float().clamp(-1, 1) + 1) / 2), faces)

    exact = psnr()
    shots = {}
    for n in cfg.shots:
        shots[n] = float(np.mean([psnr(shots=n, seed=s) for s in range(cfg.seeds)]))
        progress(f"faces, {n} shots: {shots[n]:.2f} dB")
    noise = {}
    for p in cfg.depolarizing:
        noise[p] = psnr(noise=NoiseModel(depolarizing=p))
        progress(f"faces, depolarizing {p:g}: {noise[p]:.2f} dB")
    both = psnr(shots=1000, noise=NoiseModel(depolarizing=1e-3, readout=1e-2))
    dec = pipe.decoder.config
    return {"exact": exact, "shots": shots, "depolarizing": noise, "shots1000_dep1e-3_readout1e-2": both,
            "circuits": dec.n_heads, "qubits": dec.n_qubits, "entangler": dec.entangler}


def camera_study(cfg: StudyConfig, progress) -> dict:
    """The paper's QIREN fitted exactly to camera, evaluated under shots (all pixels) and noise (a pixel subset)."""
    from ..data.signals import load_image
    from ..pipelines import QirenSignalFittingPipeline
    from ..pipelines._signals import as_targets, grid_for
    from ..quantum.noise import NoiseModel
    from ..quantum.shots import measurement
    from ..training.fitting import render

    image = load_image("camera", cfg.camera_size)
    pipe = QirenSignalFittingPipeline.from_model_name("qiren", 2, 1, seed=0)
    pipe.set_progress_bar_config(disable=True)
    start = time.perf_counter()
    result = pipe(image, num_steps=cfg.camera_steps)
    fit_s = time.perf_counter() - start
    progress(f"camera fit: {result.psnr:.2f} dB in {fit_s:.0f} s")
    coords = grid_for(tuple(image.shape), 2, True)
    target = as_targets(image, 2, 1)[0].float().reshape(-1, 1)
    model = pipe.model

    def psnr(points, shots=None, noise=None, seed=0, net=None) -> float:
        net = model if net is None else net
        with torch.no_grad(), measurement(net, shots, noise, torch.Generator().manual_seed(seed)):
            out = render(net, coords[points]).float().reshape(-1, 1)
        mse = float((out.clamp(-1, 1) - target[points]).square().mean())
        return 10 * math.log10(4 / mse)

    every = torch.arange(coords.shape[0])
    exact = psnr(every)
    shots = {}
    for n in cfg.shots:
        shots[n] = float(np.mean([psnr(every, shots=n, seed=s) for s in range(cfg.seeds)]))
        progress(f"camera, {n} shots: {shots[n]:.2f} dB")
    subset = torch.randperm(coords.shape[0], generator=torch.Generator().manual_seed(0))[: cfg.camera_noise_pixels]
    exact_subset = psnr(subset)
    noise, seconds = {}, {}
    for p in cfg.depolarizing:
        start = time.perf_counter()
        noise[p] = psnr(subset, noise=NoiseModel(depolarizing=p))
        seconds[p] = time.perf_counter() - start
        progress(f"camera, depolarizing {p:g}: {noise[p]:.2f} dB ({seconds[p]:.0f} s)")
    start = time.perf_counter()
    psnr(subset)
    exact_s = time.perf_counter() - start

    # Noise-aware training: the same fit under train_shots (straight-through gradients), both evaluated at few shots.
    aware = QirenSignalFittingPipeline.from_model_name("qiren", 2, 1, seed=0)
    aware.set_progress_bar_config(disable=True)
    start = time.perf_counter()
    with measurement(aware.model, cfg.train_shots, None, torch.Generator().manual_seed(123), train_shots=True):
        aware(image, num_steps=cfg.camera_steps)
    aware_s = time.perf_counter() - start
    trained = {"exact-trained": model, f"trained with {cfg.train_shots} shots": aware.model}
    comparison = {}
    for name, net in trained.items():
        row = {n: float(np.mean([psnr(every, shots=n, seed=s, net=net) for s in range(cfg.seeds)]))
               for n in cfg.train_eval_shots}
        row["exact"] = psnr(every, net=net)
        comparison[name] = row
        progress(f"camera {name}: " + ", ".join(f"{k}: {v:.2f}" for k, v in row.items()))
    return {"fit_psnr": result.psnr, "fit_seconds": fit_s, "exact": exact, "shots": shots,
            "noise_aware": comparison, "noise_aware_fit_seconds": aware_s,
            "noise_pixels": int(subset.numel()), "exact_on_noise_pixels": exact_subset, "depolarizing": noise,
            "density_matrix_seconds": float(np.median(list(seconds.values()))), "state_vector_seconds": exact_s,
            "circuits": len(model.hybrid_layers), "qubits": model.config.n_qubits}


def shots_needed(curve: dict, exact: float, within_db: float = 0.5) -> int | None:
    """Fewest shots in ``curve`` whose PSNR is within ``within_db`` of exact (None if none is)."""
    ok = [n for n, v in sorted(curve.items()) if v >= exact - within_db]
    return ok[0] if ok else None


def device_budget(cfg: StudyConfig) -> list[dict]:
    """Circuits, executions and shots per image: the bundled circuit-feature decoder vs a per-sample one."""
    from ..models import ModulatedWideQIREN
    from ..pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir

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


def _plot(results: dict, cfg: StudyConfig) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    folder = Path(cfg.figure_dir)
    folder.mkdir(parents=True, exist_ok=True)
    series = (("bundled pipeline, held-out faces 90-99", results["faces"], "C0"),
              (f"QIREN fit of camera {cfg.camera_size}x{cfg.camera_size}", results["camera"], "C1"))
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for label, r, color in series:
        xs = sorted(r["shots"])
        ax.semilogx(xs, [r["shots"][n] for n in xs], "o-", color=color, label=label)
        ax.axhline(r["exact"], color=color, ls="--", lw=1)
    ax.set_xlabel("shots per circuit execution")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Reconstruction under finite shots (dashed: exact)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(str(folder / "hardware_shots.png"))
    fig.savefig(paths[-1])
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for label, r, color in series:
        xs = sorted(r["depolarizing"])
        ax.semilogx(xs, [r["depolarizing"][p] for p in xs], "o-", color=color, label=label)
        ax.axhline(r.get("exact_on_noise_pixels", r["exact"]), color=color, ls="--", lw=1)
    ax.set_xlabel("depolarizing probability p per gate")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Reconstruction under gate noise (dashed: noiseless)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(str(folder / "hardware_noise.png"))
    fig.savefig(paths[-1])
    plt.close(fig)
    return paths


def faces_line(results: dict) -> str:
    """The bundled pipeline's one-line summary (quoted by its model card)."""
    f = results["faces"]
    need = shots_needed(f["shots"], f["exact"])
    return (f"On a simulated quantum device (`scripts/hardware_study.py`, `docs/hardware.md`): held-out reconstruction "
            f"PSNR {f['exact']:.2f} dB exact; {f['shots'][100]:.2f} / {f['shots'][1000]:.2f} / "
            f"{f['shots'][10000]:.2f} dB with 100 / 1,000 / 10,000 shots per circuit; {f['depolarizing'][1e-3]:.2f} / "
            f"{f['depolarizing'][1e-2]:.2f} dB with depolarizing noise p = 1e-3 / 1e-2 per gate; within 0.5 dB of "
            f"exact from {need:,} shots. The 32 feature circuits see coordinates only: a device runs them once per "
            f"grid (625 points x 32 circuits x 1,000 shots = 2.0e7 shots for every 25x25 face there will ever be).")


def write_report(results: dict, cfg: StudyConfig, figures: list[str], command: str) -> str:
    f, c = results["faces"], results["camera"]
    out = Path(cfg.output)
    rel = [Path(p).relative_to(out.parent) if Path(p).is_relative_to(out.parent) else Path(p) for p in figures]
    lines = [
        "# On quantum hardware: shots, noise, and what an image costs on a device",
        "",
        "Every number below comes from one command (one thread, "
        f"{results['seconds'] / 60:.1f} minutes on the shared 2-core CPU):",
        "",
        f"    {command}",
        "",
        "It writes this page, `docs/hardware.json` and the two figures. How the device is simulated: "
        "`qiren_gen/quantum/shots.py` (N samples per circuit execution from the exact outcome distribution, every "
        "observable estimated from the same samples, so `<Z_i>` and `<Z_i Z_j>` are correlated as on hardware), "
        "`qiren_gen/quantum/noise.py` and `qiren_gen/quantum/mixed.py` (exact density matrices: depolarizing, "
        "amplitude damping and dephasing after every gate on each of its wires, a bit flip before measurement for "
        "readout error; equal to PennyLane `default.mixed` with the same channels to 1e-6, "
        "`tests/test_shots_noise.py`).",
        "",
        "## Finite shots",
        "",
        f"![PSNR vs shots]({rel[0].as_posix()})",
        "",
        f"| shots per execution | bundled pipeline, held-out faces 90-99 (dB) | QIREN fit of camera {cfg.camera_size}x{cfg.camera_size} (dB) |",
        "|---|---|---|",
    ]
    for n in cfg.shots:
        lines.append(f"| {n:,} | {f['shots'][n]:.2f} | {c['shots'][n]:.2f} |")
    lines.append(f"| exact | {f['exact']:.2f} | {c['exact']:.2f} |")
    nf, nc = shots_needed(f["shots"], f["exact"]), shots_needed(c["shots"], c["exact"])
    lines += [
        "",
        f"Means over {cfg.seeds} seed(s) of the shot draws. The faces were encoded exactly (the bundled pipeline's "
        "auto-decoding), then decoded with the measured circuits: the 32 feature circuits are measured once per "
        "25x25 grid and the 10 faces share that draw, as a device would run them. The camera fit is the paper's "
        f"QIREN (8 qubits, 3 circuits, {cfg.camera_steps} exact Adam steps, fit PSNR {c['fit_psnr']:.2f} dB), "
        "evaluated with every circuit of every pixel measured. Within 0.5 dB of exact: "
        f"{nf:,} shots for the faces, {'%s shots' % f'{nc:,}' if nc else 'not reached in this range'} for camera.",
        "",
        "## Gate noise",
        "",
        f"![PSNR vs depolarizing p]({rel[1].as_posix()})",
        "",
        f"| depolarizing p per gate | bundled pipeline, held-out faces (dB) | QIREN camera, {c['noise_pixels']} pixels (dB) |",
        "|---|---|---|",
    ]
    for p in cfg.depolarizing:
        lines.append(f"| {p:g} | {f['depolarizing'][p]:.2f} | {c['depolarizing'][p]:.2f} |")
    lines += [
        f"| 0 (noiseless) | {f['exact']:.2f} | {c['exact_on_noise_pixels']:.2f} |",
        "",
        "Exact density matrices, no shots. The faces' circuits are 2 qubits (4x4 density matrices: as cheap as the "
        "state vector); the camera QIREN's are 8 qubits (256x256), evaluated on "
        f"{c['noise_pixels']} random pixels of the {cfg.camera_size}x{cfg.camera_size} grid (seed 0; the noiseless "
        "PSNR on the same pixels is the last row). Cost measured here: "
        f"{c['density_matrix_seconds']:.1f} s for those {c['noise_pixels']} pixels through the 3 circuits with "
        f"density matrices versus {c['state_vector_seconds']:.2f} s with state vectors (a density matrix has 2^n "
        "times the entries: 65,536 complex numbers, 512 KiB in complex64, per pixel and circuit at 8 qubits). "
        f"Shots and noise together (1,000 shots, p = 1e-3, readout error 1e-2), faces: "
        f"{f['shots1000_dep1e-3_readout1e-2']:.2f} dB.",
        "",
        "## Noise-aware training (camera)",
        "",
        f"The same QIREN fitted to camera {cfg.camera_size}x{cfg.camera_size} twice from the same initialisation: "
        f"exactly, and with every circuit measured with {cfg.train_shots} shots at every training step "
        "(`train_shots=True`: shot-sampled values forward, exact-expectation gradients backward, a straight-through "
        f"estimator; `qiren-gen fit --train-shots {cfg.train_shots}`). PSNR of each, evaluated under shots "
        f"(mean of {cfg.seeds} seed(s)) and exactly:",
        "",
        "| model | " + " | ".join(f"{n:,} shots" for n in cfg.train_eval_shots) + " | exact |",
        "|---|" + "---|" * (len(cfg.train_eval_shots) + 1),
    ]
    for name, row in c["noise_aware"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[n]:.2f}" for n in cfg.train_eval_shots)
                     + f" | {row['exact']:.2f} |")
    aware_name = f"trained with {cfg.train_shots} shots"
    gain = c["noise_aware"][aware_name][cfg.train_shots] - c["noise_aware"]["exact-trained"][cfg.train_shots]
    lines += [
        "",
        f"At {cfg.train_shots} shots the shot-trained fit is {gain:+.2f} dB against the exactly trained one "
        f"({'it helps' if gain > 0.1 else 'no help' if gain > -0.1 else 'it hurts'} here; one image, one "
        f"initialisation). Training under shots took {c['noise_aware_fit_seconds']:.0f} s against "
        f"{c['fit_seconds']:.0f} s exact.",
        "",
        "## Device budget per image",
        "",
        f"{cfg.budget_shots:,} shots per circuit execution (the faces reach within "
        f"{f['exact'] - f['shots'][cfg.budget_shots]:.2f} dB of exact with it). An execution is one circuit with "
        "one binding of its parameters and inputs.",
        "",
        "| image | points | circuit-feature decoder (bundled): executions per grid | shots per grid | per-sample "
        "decoder (`ModulatedWideQIREN`, `angles`): executions per image | shots per image | shots for 16 images: "
        "feature / per-sample |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["budget"]:
        lines.append(f"| {r['size']}x{r['size']} | {r['points']:,} | {r['feature_executions_per_grid']:,} "
                     f"({r['feature_circuits']} circuits x points) | {r['feature_shots_per_grid']:.1e} | "
                     f"{r['per_sample_executions_per_image']:,} ({r['per_sample_circuits_per_image']} circuits x "
                     f"points) | {r['per_sample_shots_per_image']:.1e} | {r['feature_shots_16_images']:.1e} / "
                     f"{r['per_sample_shots_16_images']:.1e} |")
    lines += [
        "",
        "The caching that makes the difference: the bundled decoder's circuits see the coordinates only (the latent "
        "modulates the classical synthesis layers), so their features are a property of the grid. A device measures "
        "them once per resolution and every face ever sampled at that resolution reuses them "
        "(`FeatureSynthesisDecoder` caches them the same way in simulation); the per-image device cost tends to zero "
        "as images are drawn. A per-sample circuit decoder (`ModulatedWideQIREN` with `angles` modulation: 32 "
        "4-qubit circuits in each of 3 layers, whose rotation angles depend on the latent) needs fresh executions "
        "for every image, and its layers run one after the other (each layer's inputs are the previous layer's "
        "measured outputs).",
        "",
        "## Not measured here",
        "",
        "Noise-aware training of the bundled pipeline (`scripts/train_pipeline.py --train_shots N` / "
        "`--train_noise P` exist, but retraining it takes about an hour here) and training under gate noise; the Bach "
        "clip; GPU times (no GPU was available).",
        "",
    ]
    text = "\n".join(lines)
    out.write_text(text)
    return text


def hardware_card_block(json_path: str | Path | None = None) -> str:
    """The study's marked model-card line from its JSON (default: the checkout's ``docs/hardware.json``; empty when
    the study has not been run or the package is installed without the docs)."""
    path = Path(json_path) if json_path is not None else Path(__file__).resolve().parents[2] / "docs" / "hardware.json"
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


def run_study(cfg: StudyConfig, command: str = "python scripts/hardware_study.py") -> dict:
    """Run every measurement, write the JSON, figures, report and the model card line; returns the results."""
    from tqdm.auto import tqdm

    torch.manual_seed(0)
    start = time.perf_counter()
    bar = tqdm(total=3, desc="hardware study")

    def progress(msg: str) -> None:
        bar.write(msg)

    results = {"config": {k: v for k, v in asdict(cfg).items() if k != "fields"}}
    results["faces"] = pipeline_study(cfg, progress)
    bar.update()
    results["camera"] = camera_study(cfg, progress)
    bar.update()
    results["budget"] = device_budget(cfg)
    bar.update()
    bar.close()
    results["seconds"] = time.perf_counter() - start
    results["faces_line"] = faces_line(results)
    Path(cfg.json_path).write_text(json.dumps(results, indent=2, default=str) + "\n")
    figures = _plot(results, cfg)
    write_report(results, cfg, figures, command)
    if cfg.model_card:
        update_model_card(cfg.model_card, results["faces_line"])
    return results


__all__ = ["StudyConfig", "camera_study", "device_budget", "faces_line", "hardware_card_block", "pipeline_study", "run_study",
           "shots_needed", "update_model_card", "write_report"]
