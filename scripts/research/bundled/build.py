"""Build the bundled pretrained pipeline end to end: LFW faces -> stage 1 (functa) -> latents -> prior -> folder.

Every stage resumes (``--resume_from_checkpoint latest`` in both trainers, a fingerprinted latent cache), so an
interrupted build continues where it stopped. The folder gets a model card with the measured quality figures.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.utils import make_image_grid
from PIL import Image

from qiren_gen.cli import main as cli_main
from qiren_gen.data.lfw import export_lfw_faces
from qiren_gen.evaluation.sample_quality import generation_report
from qiren_gen.models.registry import canonical_decoder
from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.runtime import run_reporting_errors
from qiren_gen.training.functa_trainer import FunctaTrainingConfig, train_functa
from research.hardware.study import hardware_card_block
from train_prior import train_prior_from_args


# The stage-1 fields share FunctaTrainingConfig's names and shape but hold the bundled recipe's values (other
# defaults), handed over field by field in `stage1_config`; the CLI flags come from these fields.
@dataclass
class BundleConfig:
    """Settings of the bundled LFW-faces pipeline (defaults: what ships in ``pipelines/qiren-lfw-faces``)."""

    workdir: str = "runs/bundled"
    output: str = "pipelines/qiren-lfw-faces"
    figure: str | None = "docs/figures/lfw_samples.png"
    resolution: int = 25
    decoder: str = "circuit_features"
    n_heads: int = 32
    n_qubits: int = 2
    entangler: str = "cnot_chain"
    frequency_init: float = 2.0
    hidden_features: int = 128
    hidden_layers: int = 3
    modulation: str = "weight"
    latent_dim: int = 64
    stage1_steps: int = 3000
    stage1_batch_size: int = 16
    stage1_learning_rate: float = 1e-3
    latent_learning_rate: float = 1e-2
    latent_l2: float = 1e-4
    encode_steps: int = 300
    prior_steps: int = 4000
    prior_hidden_dim: int = 256
    prior_blocks: int = 3
    prior_dropout: float = 0.1
    eval_samples: int = 256
    seed: int = 0
    threads: int = 1
    """torch CPU threads: 1 is fastest on a shared 2-core machine (measured: 2 threads per process spin against each
    other, 3-20x slower)."""


def load_split(folder: Path) -> torch.Tensor:
    """All PNGs of an exported LFW split as ``(N, 1, H, W)`` in [0, 1], in file order."""
    files = sorted(folder.glob("*.png"))
    if not files:
        raise OSError(f"no PNG images in '{folder}'")
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255)[None]
                        for f in files])


def prior_args(cfg: BundleConfig, data: Path, pipeline_dir: Path) -> list[str]:
    """``scripts/train_prior.py`` arguments of the bundled prior: the 180 auto-decoded latents of stage 1 (90 faces
    and their mirror images)."""
    return ["--stage1_model", str(Path(cfg.workdir) / "stage1"), "--train_data_dir", str(data),
            "--resolution", str(cfg.resolution), "--stage1_latents", "--output_dir", str(Path(cfg.workdir) / "prior"),
            "--max_train_steps", str(cfg.prior_steps), "--hidden_dim", str(cfg.prior_hidden_dim),
            "--num_blocks", str(cfg.prior_blocks), "--dropout", str(cfg.prior_dropout),
            "--checkpointing_steps", "1000", "--seed", str(cfg.seed), "--resume_from_checkpoint", "latest",
            "--pipeline_output", str(pipeline_dir)]


def _stage1_summary(stage1_dir: Path) -> dict:
    path = stage1_dir / "train_summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _decoder_words(cfg: BundleConfig) -> str:
    if canonical_decoder(cfg.decoder) == "circuit_features":
        return (f"quantum circuit features: Linear(2, {cfg.n_heads * cfg.n_qubits}) + reference normalisation "
                f"(learnable scale, initially {cfg.frequency_init}), then "
                f"{cfg.n_heads} data re-uploading circuits of {cfg.n_qubits} qubits ({cfg.entangler}), 2 re-uploads, "
                "2 blocks, simulated exactly as one batched op")
    return f"{cfg.decoder}"


def _memorisation_verdict(r: dict, auto_decoded: bool = False) -> str:
    """One sentence comparing samples with the held-out baselines (10% slack for sampling noise).

    Copying means samples as close to a training face as the model's own reconstruction of that face (more than 5%
    of them). Samples merely closer to the training set than held-out reconstructions are less diverse (more
    average faces), which the sentence says too. With auto-decoded latents the latent-space ratio compares unlike
    things (the prior learned the jointly trained latents; training and held-out faces are re-encoded from a zero
    latent), so only pixels decide then.
    """
    pix = r["nn_dist_samples_median"] / r["nn_dist_heldout_reconstructions_median"]
    lat = r["latent_nn_samples_median"] / r["latent_nn_heldout_median"]
    copies = r["frac_samples_closer_than_reconstruction"]
    caveat = (" (latents are auto-decoded: the latent column compares the jointly trained latents the prior learned"
              " with re-encoded faces, so pixels decide)" if auto_decoded else "")
    if copies > 0.05 or (not auto_decoded and lat <= 0.9 and pix <= 0.9):
        verdict = (f"{100 * copies:.0f}% of samples are as close to a training face as its reconstruction: likely"
                   " memorisation")
    elif pix <= 0.9:
        verdict = (f"samples sit closer to the training set than held-out reconstructions do (they are more average "
                   f"faces: diversity {r['diversity_samples']:.3f} vs {r['diversity_train_reconstructions']:.3f}), but "
                   f"{100 * copies:.1f}% of them are as close to a training face as its own reconstruction: no copying")
    else:
        verdict = "no sign of copying training faces"
    return f"Here the ratios samples / held-out are {pix:.2f} (pixels) and {lat:.2f} (latents){caveat}: {verdict}."


def _fid_paragraph(evaluation: dict | None) -> str:
    """What the card says about FID / KID: Inception numbers when they were measured, else the weight-free proxy."""
    if not evaluation:
        return "FID / KID: not measured (run `qiren-gen evaluate`)."
    m, n = evaluation["metrics"], evaluation["num_samples"]
    if evaluation.get("standard_fid"):
        kid = f", KID {m['kid_mean']:.4f} ± {m['kid_std']:.4f}" if "kid_mean" in m else ""
        return f"FID {m['fid']:.2f}{kid} ({n} samples vs the {evaluation['num_reference']} training faces)."
    key = next(k for k in m if k.startswith("frechet_distance"))
    kd = next((k for k in m if k.startswith("kernel_distance") and k.endswith("_mean")), None)
    kid = f", kernel distance {m[kd]:.4f} ± {m[kd[:-5] + '_std']:.4f}" if kd else ""
    return (f"FID / KID: torch-fidelity's Inception weights cannot be downloaded on the build machine, so no FID. "
            f"The weight-free `{evaluation['feature_extractor']}` features give a Fréchet distance of {m[key]:.4f}"
            f"{kid} ({n} samples vs the {evaluation['num_reference']} training faces, `qiren-gen evaluate`): a smoke "
            "test with no published scale, not comparable to any FID. With 90 training faces an absolute FID would "
            "say little anyway.")


def run_evaluate(pipeline_dir: Path, reference: Path, out: Path, num_samples: int, seed: int) -> dict | None:
    """``qiren-gen evaluate`` on the built pipeline: Inception FID/KID if its weights are available
    offline, else the weight-free pixel-pool proxy. Returns its metrics.json, or None if it cannot run."""
    base = ["evaluate", "--pipeline", str(pipeline_dir), "--reference", str(reference), "--num-samples",
            str(num_samples), "--seed", str(seed), "--no-progress"]
    for extra in ([], ["--feature-extractor", "qiren-pixel-pool"]):
        if cli_main(base + ["--output", str(out)] + extra) == 0:
            return json.loads((out / "metrics.json").read_text())
    return None


def model_card_sections(cfg: BundleConfig, stage1: dict, prior: dict, report: dict, timings: dict) -> dict[str, str]:
    """The Training / Quality / Limitations sections of the bundled pipeline's model card."""
    training = f"""Data: the 100 faces of scikit-image's `lfw_subset()` (25x25 grayscale, Labeled Faces in the Wild);
faces 0-89 train, 90-99 are held out (`qiren_gen.data.lfw.export_lfw_faces`, the stage-1 split).

1. Stage 1 (functa, `qiren_gen.training.functa_trainer`): `FeatureSynthesisDecoder` ({_decoder_words(cfg)}),
   {cfg.hidden_layers} synthesis layers of width {cfg.hidden_features} with `{cfg.modulation}` modulations, and a
   linear latent modulator (latent_dim {cfg.latent_dim}). Auto-decoded latents: the 90 training faces and their
   mirror images each own a latent, trained jointly with the decoder (Adam {cfg.stage1_learning_rate} for the
   decoder, {cfg.latent_learning_rate} for the latents, L2 {cfg.latent_l2} on the latents) for {cfg.stage1_steps}
   steps of batch {cfg.stage1_batch_size} at {cfg.resolution}x{cfg.resolution}; training PSNR of faces 0-89 at their
   learned latents {stage1.get("train_psnr_all", float("nan")):.2f} dB. New images are encoded by fitting their latent
   with the decoder frozen ({cfg.encode_steps} Adam steps, `encode_images`' default).
2. Latents: the prior trains on the {prior.get("num_latents", "?")} latents stage 1 learned.
3. Prior (`scripts/train_prior.py`): residual-MLP denoiser ({cfg.prior_blocks} blocks of width
   {cfg.prior_hidden_dim}, dropout {cfg.prior_dropout}) on normalised latents, DDPM objective with cosine betas
   and v-prediction, {cfg.prior_steps} steps of batch 64 (final loss {prior.get("final_loss") or float("nan"):.4f});
   sampled with DDIM (50 steps by default).

Reproduce (CPU, shared 2-core machine: stage 1 {timings.get("stage1_s", float("nan")) / 60:.1f} min, prior
{timings.get("prior_s", float("nan")) / 60:.1f} min in the run that made this folder):

```bash
python scripts/research/bundled/build_pretrained_pipeline.py
```
"""
    r = report
    quality = f"""Measured by `qiren_gen.evaluation.generation_report` on {r["num_samples"]} samples at
{cfg.resolution}x{cfg.resolution} (DDIM, 50 steps, seed {cfg.seed}). Distances are per-pixel RMS in [0, 1].

| figure | value |
|---|---:|
| held-out reconstruction PSNR (faces 90-99, encode + decode) | {r["psnr_heldout_reconstruction"]:.2f} dB |
| training reconstruction PSNR (faces 0-89) | {r["psnr_train_reconstruction"]:.2f} dB |
| diversity: mean pairwise distance of samples | {r["diversity_samples"]:.4f} |
| ... of the training faces / of their reconstructions | \
{r["diversity_train"]:.4f} / {r["diversity_train_reconstructions"]:.4f} |
| nearest-training-face distance of samples (median / min) | \
{r["nn_dist_samples_median"]:.4f} / {r["nn_dist_samples_min"]:.4f} |
| ... of held-out real faces (median) | {r["nn_dist_heldout_median"]:.4f} |
| ... of the model's reconstructions of training / held-out faces (median) | \
{r["nn_dist_train_reconstructions_median"]:.4f} / {r["nn_dist_heldout_reconstructions_median"]:.4f} |
| samples closer to a training face than a typical training reconstruction | \
{100 * r["frac_samples_closer_than_reconstruction"]:.1f}% |
| latent space (prior-normalised, RMS per dim): nearest training latent of samples / of held-out faces (median) | \
{r["latent_nn_samples_median"]:.3f} / {r["latent_nn_heldout_median"]:.3f} |

Reading: the decoder's renders are smooth ({r["psnr_heldout_reconstruction"]:.1f} dB on held-out faces), so every \
render, of a training face or of a held-out one, is
closer to the training set than a real held-out face is; the fair memorisation baseline is the held-out
reconstruction distance. Samples closer to the training set than held-out reconstructions (pixels) or held-out
latents (latent space) mean the prior reproduces training faces rather than new ones.
{_memorisation_verdict(r, auto_decoded=True)}

{_fid_paragraph(report.get("evaluate"))}
""" + hardware_card_block()  # the line of scripts/research/hardware/hardware_study.py (docs/research/hardware.json)
    limitations = """Trained on 90 tiny grayscale faces on a CPU in under an hour: samples are recognisable faces
(eyes, nose, mouth, hair line) but blurry, and a few of them sit close to a training face. Renders above 25x25 are
smooth interpolations of what the decoder learned at 25x25, not new detail. The decoder's circuits are simulated
exactly; nothing ran on quantum hardware. Almost all parameters are classical (the synthesis layers), as in the
paper's generator.
"""
    return {"Training": training, "Quality": quality, "Limitations": limitations}


def any_resolution_figure(pipe, path: str | Path, seed: int = 1) -> None:
    """PNG: the same 3 sampled latents rendered at 25x25, 64x64 and 200x200 (shown at 200 px, nearest) and 100x250."""
    z = pipe(batch_size=3, num_inference_steps=50, output_type="latent",
             generator=torch.Generator().manual_seed(seed)).images
    rows = []
    for i in range(3):
        tiles = []
        for h, w in ((25, 25), (64, 64), (200, 200), (100, 250)):
            img = ((pipe.render(z[i : i + 1], h, w)[0, 0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
            tile = Image.fromarray(img, mode="L")
            if w == h:
                tile = tile.resize((200, 200), Image.NEAREST)
            tiles.append(tile)
        rows.append(tiles)
    width = sum(t.width for t in rows[0]) + 10 * (len(rows[0]) - 1)
    canvas = Image.new("L", (width, 3 * 200 + 20), 255)
    for r, tiles in enumerate(rows):
        x = 0
        for t in tiles:
            canvas.paste(t, (x, r * 210 + (200 - t.height) // 2))
            x += t.width + 10
    canvas.save(path)


def stage1_config(cfg: BundleConfig, data: Path):
    """The stage-1 ``FunctaTrainingConfig`` of the bundled pipeline (auto-decoded latents, faces + mirrors)."""
    return FunctaTrainingConfig(
        output_dir=str(Path(cfg.workdir) / "stage1"), train_data_dir=str(data), resolution=cfg.resolution,
        decoder=cfg.decoder, n_heads=cfg.n_heads, n_qubits=cfg.n_qubits, entangler=cfg.entangler,
        frequency_init=cfg.frequency_init, hidden_features=cfg.hidden_features, hidden_layers=cfg.hidden_layers,
        modulation=cfg.modulation,
        latent_dim=cfg.latent_dim, encoding="auto_decode", flip_augment=True, encode_steps=cfg.encode_steps,
        latent_learning_rate=cfg.latent_learning_rate, latent_l2=cfg.latent_l2, max_train_steps=cfg.stage1_steps,
        train_batch_size=cfg.stage1_batch_size, learning_rate=cfg.stage1_learning_rate, checkpointing_steps=250,
        logging_steps=50, seed=cfg.seed, resume_from_checkpoint="latest", table_eval_images=None,
    )


def build_bundled_pipeline(cfg: BundleConfig) -> dict:
    """Run all stages and save the pipeline folder with its model card; returns the measured figures."""
    torch.set_num_threads(cfg.threads)
    work = Path(cfg.workdir)
    data = export_lfw_faces(work / "lfw")
    # Times and the prior's final loss add up over resumed invocations (a resumed stage that has nothing left to do
    # contributes ~0 s), so the model card reports what the whole build cost.
    state_file = work / "bundle_state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {"stage1_s": 0.0, "prior_s": 0.0}
    timings = {}
    start = time.perf_counter()
    train_functa(stage1_config(cfg, data))
    state["stage1_s"] += time.perf_counter() - start
    state_file.write_text(json.dumps(state))
    start = time.perf_counter()
    staging = work / "pipeline"
    prior = train_prior_from_args(prior_args(cfg, data, staging))
    state["prior_s"] += time.perf_counter() - start
    if prior.get("final_loss") is not None:
        state["prior_final_loss"] = prior["final_loss"]
    prior["final_loss"] = state.get("prior_final_loss")
    state_file.write_text(json.dumps(state))
    timings.update(stage1_s=state["stage1_s"], prior_s=state["prior_s"])
    start = time.perf_counter()
    pipe = QirenGenerationPipeline.from_pretrained(staging)
    pipe.set_progress_bar_config(disable=True)
    report = generation_report(pipe, load_split(data / "train"), load_split(data / "test"), cfg.eval_samples,
                               seed=cfg.seed)
    report["evaluate"] = run_evaluate(staging, data / "train", work / "evaluate", cfg.eval_samples, cfg.seed)
    timings["eval_s"] = time.perf_counter() - start
    if cfg.figure:
        images = pipe(batch_size=16, height=128, width=128, generator=torch.Generator().manual_seed(0)).images
        Path(cfg.figure).parent.mkdir(parents=True, exist_ok=True)
        make_image_grid(images, rows=4, cols=4).save(cfg.figure)
        any_resolution_figure(pipe, Path(cfg.figure).with_name("lfw_any_resolution.png"))
    pipe.model_card_sections = model_card_sections(cfg, _stage1_summary(work / "stage1"), prior, report, timings)
    pipe.model_card_location = cfg.output
    pipe.save_pretrained(cfg.output)
    result = {"report": report, "timings": timings, "prior": prior}
    (work / "bundle_report.json").write_text(json.dumps(result, indent=2))
    return result


def parse_args(argv: list[str] | None = None) -> BundleConfig:
    """``--<field>`` for every ``BundleConfig`` field (underscored, as every script's options are)."""
    p = argparse.ArgumentParser(description="Rebuild the bundled pipeline end to end (resumes if interrupted).")
    for f in dataclasses.fields(BundleConfig):
        kind = {"int": int, "float": float}.get(str(f.type), str)
        p.add_argument(f"--{f.name}", type=kind, default=f.default)
    return BundleConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Build, print the measured figures as JSON; a user error is one line and exit code 2."""
    cfg = parse_args(argv)
    code, result = run_reporting_errors("build_pretrained_pipeline", lambda: build_bundled_pipeline(cfg))
    if not code:
        print(json.dumps({"report": result["report"], "timings": result["timings"]}, indent=2))
    return code
