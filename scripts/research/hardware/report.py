"""``docs/research/hardware.md`` and its two figures (PSNR vs shots, PSNR vs depolarizing p) from the study's
results."""
from __future__ import annotations

from pathlib import Path

from research.hardware.device_report import device_section_text

COLORS = ("C0", "C1", "C2", "C3")


def shots_needed(curve: dict, exact: float, within_db: float = 0.5) -> int | None:
    """Fewest shots in ``curve`` whose PSNR is within ``within_db`` of exact (None if none is)."""
    ok = [n for n, v in sorted(curve.items()) if v >= exact - within_db]
    return ok[0] if ok else None


def _series(results: dict) -> list[tuple[str, dict]]:
    return [("bundled pipeline, held-out faces 90-99", results["faces"])] + [
        (r["label"], r) for r in results["signals"].values()]


def _curve_figure(series, key: str, baseline_key: str, xlabel: str, title: str, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    # the faces and up to two signals: fewer series than colours
    for (label, r), color in zip(series, COLORS, strict=False):
        xs = sorted(r[key])
        ax.semilogx(xs, [r[key][x] for x in xs], "o-", color=color, label=label)
        ax.axhline(r.get(baseline_key, r["exact"]), color=color, ls="--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def plot_curves(results: dict, cfg) -> list[str]:
    """The shots and noise curves of every series, as PNGs in ``cfg.figure_dir``; returns their paths."""
    folder = Path(cfg.figure_dir)
    folder.mkdir(parents=True, exist_ok=True)
    series = _series(results)
    return [_curve_figure(series, "shots", "exact", "shots per circuit execution",
                          "Reconstruction under finite shots (dashed: exact)", folder / "hardware_shots.png"),
            _curve_figure(series, "depolarizing", "exact_on_noise_pixels", "depolarizing probability p per gate",
                          "Reconstruction under gate noise (dashed: noiseless)", folder / "hardware_noise.png")]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _signal_sections(results: dict, cfg) -> tuple[list[str], list[str], list[str]]:
    """Columns of the shots / noise tables and the noise-aware training section for the signal fits."""
    notes, noise_notes, training = [], [], []
    for r in results["signals"].values():
        need = shots_needed(r["shots"], r["exact"])
        notes.append(f"{r['label']}: the paper's QIREN ({r['qubits']} qubits, {r['circuits']} circuits, "
                     f"{cfg.signal_steps} exact Adam steps, fit PSNR {r['fit_psnr']:.2f} dB), every circuit of every "
                     f"point measured; within 0.5 dB of exact "
                     + (f"from {need:,} shots." if need else "not reached in this range."))
        noise_notes.append(f"{r['label']}: {r['noise_pixels']} random points of {r['points']:,} (seed 0; noiseless "
                           f"PSNR on the same points in the last row), {r['density_matrix_seconds']:.1f} s with "
                           f"density matrices vs {r['state_vector_seconds']:.2f} s with state vectors.")
        aware = f"trained with {cfg.train_shots} shots"
        rows = [[name] + [f"{row[n]:.2f}" for n in cfg.train_eval_shots] + [f"{row['exact']:.2f}"]
                for name, row in r["noise_aware"].items()]
        gain = r["noise_aware"][aware][cfg.train_shots] - r["noise_aware"]["exact-trained"][cfg.train_shots]
        exact_diff = r["noise_aware"][aware]["exact"] - r["noise_aware"]["exact-trained"]["exact"]
        training += [f"**{r['label']}**", ""] + _table(
            ["model"] + [f"{n:,} shots" for n in cfg.train_eval_shots] + ["exact"], rows) + [
            "", f"At {cfg.train_shots} shots the shot-trained fit is {gain:+.2f} dB against the exactly trained one, "
            f"and {exact_diff:+.2f} dB against it when both are evaluated exactly (one signal, one initialisation). "
            "Training "
            f"under shots took {r['noise_aware_fit_seconds']:.0f} s against {r['fit_seconds']:.0f} s exact.", ""]
    return notes, noise_notes, training


def _finetune_section(results: dict, cfg) -> list[str]:
    if "finetune" not in results:
        return ["## Noise-aware fine-tuning of the bundled pipeline", "", "Not run (`--no_finetune`).", ""]
    ft = results["finetune"]
    names = list(ft["rows"])
    keys = [k for k in ft["rows"][names[0]] if k != "sharpness_exact"]
    rows = [[name] + [f"{ft['rows'][name][k]:.2f}" for k in keys] + [f"{ft['rows'][name]['sharpness_exact']:.4f}"]
            for name in names]
    exact_ft, shots_ft = ft["rows"]["fine-tuned exactly"], ft["rows"]["fine-tuned under 100 shots"]
    noise_ft = ft["rows"]["fine-tuned under depolarizing 1e-2"]
    lines = [
        "## Noise-aware fine-tuning of the bundled pipeline", "",
        f"The bundled pipeline fine-tuned three ways with the real trainer, {ft['steps']} stage-1 steps each "
        "(batch 16, "
        f"lr {ft['learning_rate']:g}, faces 0-89 + mirrors, latents re-encoded on first visit) and {ft['prior_steps']} "
        "prior steps: `python scripts/train_pipeline.py --pretrained_model_name_or_path pipelines/qiren-lfw-faces "
        "--train_data_dir LFW/train --flip_augment --latent_init encode ...` plus " + "; ".join(
            f"{k}: `{v}`" for k, v in ft["command_flags"].items()) + " (the exact arguments: "
        "`research.hardware.faces.finetune_arguments`). The exactly fine-tuned copy is the control: it "
        "separates what more training does from what training on the device does. Held-out faces 90-99; shot columns "
        f"mean of {cfg.seeds} draws with latents fitted exactly; noise columns with latents fitted under the same "
        "noise (exact density matrices); "
        f"sharpness of {cfg.sample_count} seeded samples from each pipeline's own prior, exact "
        "decode.", ""]
    lines += _table(["pipeline"] + keys + ["sample sharpness"], rows)
    lines += ["", f"At 100 shots: {shots_ft['shots 100']:.2f} dB shot-trained vs {exact_ft['shots 100']:.2f} dB "
              f"exactly fine-tuned ({shots_ft['shots 100'] - exact_ft['shots 100']:+.2f} dB); exact decode "
              f"{shots_ft['exact'] - exact_ft['exact']:+.2f} dB. Under depolarizing 1e-2: "
              f"{noise_ft['depolarizing 0.01']:.2f} "
              f"dB noise-trained vs {exact_ft['depolarizing 0.01']:.2f} dB "
              f"({noise_ft['depolarizing 0.01'] - exact_ft['depolarizing 0.01']:+.2f} dB); exact decode "
              f"{noise_ft['exact'] - exact_ft['exact']:+.2f} dB."]
    if ft["train_seconds"]:
        lines += ["", "Fine-tuning wall time here: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in
                                                                 ft["train_seconds"].items()) + "."]
    return lines + [""]


def write_report(results: dict, cfg, figures: list[str], command: str) -> str:
    """Write ``cfg.output`` (markdown) from ``results``; returns its text."""
    f = results["faces"]
    signals = list(results["signals"].values())
    out = Path(cfg.output)
    rel = [Path(p).relative_to(out.parent) if Path(p).is_relative_to(out.parent) else Path(p) for p in figures]
    notes, noise_notes, training = _signal_sections(results, cfg)
    shot_rows = [[f"{n:,}", f"{f['shots'][n]:.2f}", f"{f['samples'][n]['sharpness']:.4f}",
                  f"{f['samples'][n]['psnr_vs_exact']:.2f}"] + [f"{r['shots'][n]:.2f}" for r in signals]
                 for n in cfg.shots]
    shot_rows.append(["exact", f"{f['exact']:.2f}", f"{f['samples_exact_sharpness']:.4f}", "-"]
                     + [f"{r['exact']:.2f}" for r in signals])
    noise_rows = [[f"{p:g}", f"{f['depolarizing'][p]:.2f}"] + [f"{r['depolarizing'][p]:.2f}" for r in signals]
                  for p in cfg.depolarizing]
    noise_rows.append(["0 (noiseless)", f"{f['exact']:.2f}"] + [f"{r['exact_on_noise_pixels']:.2f}" for r in signals])
    lines = [
        "# On quantum hardware: shots, noise, and what an image costs on a device", "",
        f"Every number down to the device budget comes from one command (one thread, {results['seconds'] / 60:.1f} "
        "minutes on the shared 2-core CPU):", "", f"    {command}", "",
        "It writes this page, `docs/research/hardware.json` and the two figures (the device sections from the end "
        "of the page on have their own command, given there, and the page keeps them). How the device is simulated: "
        "`qiren_gen/quantum/shots.py` (N samples per circuit execution from the exact outcome distribution, every "
        "observable estimated from the same samples, so `<Z_i>` and `<Z_i Z_j>` are correlated as on hardware), "
        "`qiren_gen/quantum/noise.py` and `qiren_gen/quantum/mixed.py` (exact density matrices: depolarizing, "
        "amplitude damping and dephasing after every gate on each of its wires, a bit flip before measurement for "
        "readout error; equal to PennyLane `default.mixed` with the same channels to 1e-6, "
        "`tests/quantum/test_shots_noise.py`).", "",
        "## Finite shots", "", f"![PSNR vs shots]({rel[0].as_posix()})", ""]
    lines += _table(["shots per execution", "bundled pipeline, held-out faces 90-99 (dB)",
                     f"samples: sharpness (held-out faces {f['held_out_sharpness']:.4f})",
                     "samples: PSNR vs their exact decode (dB)"] + [f"{r['label']} (dB)" for r in signals], shot_rows)
    need = shots_needed(f["shots"], f["exact"])
    lines += [
        "", f"Means over {cfg.seeds} seed(s) of the shot draws. Faces: encoded exactly (the bundled pipeline's "
        "auto-decoding), then decoded with the measured circuits: the 32 feature circuits are measured once per "
        f"25x25 grid and the 10 faces share that draw, as a device would run them; within 0.5 dB of exact from "
        f"{need:,} shots. Samples: {f['num_samples']} prior samples (seed 0, DDIM 50) decoded under each shot count; "
        "sharpness is the mean absolute difference of neighbouring pixels (images in [0, 1]): shot noise raises it "
        "(grain, not detail), so it is read beside the PSNR against the same samples decoded exactly.",
        "", *[f"- {n}" for n in notes], "",
        "## Gate noise", "", f"![PSNR vs depolarizing p]({rel[1].as_posix()})", ""]
    lines += _table(["depolarizing p per gate", "bundled pipeline, held-out faces (dB)"]
                    + [f"{r['label']} (dB)" for r in signals], noise_rows)
    lines += [
        "", "Exact density matrices, no shots; latents fitted exactly. The faces' circuits are 2 qubits (4x4 density "
        "matrices: as cheap as the state vector); the signal QIRENs' are 8 qubits (256x256: 65,536 complex numbers, "
        "512 KiB in complex64, per point and circuit), so they are evaluated on a point subset:", "",
        *[f"- {n}" for n in noise_notes], "",
        f"Shots and noise together (1,000 shots, p = 1e-3, readout error 1e-2), faces: "
        f"{f['shots1000_dep1e-3_readout1e-2']:.2f} dB.", ""]
    if "finetune" in results:
        bundled = results["finetune"]["rows"]["bundled (not fine-tuned)"]
        lines += [f"Latents fitted exactly are the pessimistic protocol: fitted under the noise itself (as a device "
                  f"would encode), the bundled pipeline keeps {bundled['depolarizing 0.01']:.2f} dB at p = 1e-2 "
                  f"instead of {f['depolarizing'][1e-2]:.2f} dB (the fine-tuning table below).", ""]
    lines += [
        "## Noise-aware training of the signal fits", "",
        f"The same QIREN fitted twice from the same initialisation: exactly, and with every circuit measured with "
        f"{cfg.train_shots} shots at every training step (`train_shots=True`: shot-sampled values forward, "
        "exact-expectation gradients backward, a straight-through estimator; `qiren-gen fit --train-shots "
        f"{cfg.train_shots}`). PSNR of each under shots (mean of {cfg.seeds} draws) and exactly. Training the 8-qubit "
        "fits under gate noise is not measured: one step over every point with density matrices would take "
        "minutes to hours here.", ""]
    lines += training
    lines += _finetune_section(results, cfg)

    lines += device_section_text(page=cfg.output) or _budget_section(results, cfg)  # the device study's, once run
    missing = ["GPU times (no GPU was available)", "training the 8-qubit signal fits under gate noise (density "
               "matrices at every point of every step)", "a real device"]
    if "bach" not in results["signals"]:
        missing.insert(0, "the Bach clip (run with `--bach PATH/gt_bach.wav`; it does not ship with the project)")
    lines += ["## Not measured here", "", "; ".join(missing) + ".", ""]
    text = "\n".join(lines)
    out.write_text(text)
    return text


def _budget_section(results: dict, cfg) -> list[str]:
    f = results["faces"]
    rows = [[f"{r['size']}x{r['size']}", f"{r['points']:,}",
             f"{r['feature_executions_per_grid']:,} ({r['feature_circuits']} circuits x points)",
             f"{r['feature_shots_per_grid']:.1e}",
             f"{r['per_sample_executions_per_image']:,} ({r['per_sample_circuits_per_image']} circuits x points)",
             f"{r['per_sample_shots_per_image']:.1e}",
             f"{r['feature_shots_16_images']:.1e} / {r['per_sample_shots_16_images']:.1e}"] for r in results["budget"]]
    return ["## Device budget per image", "",
            f"{cfg.budget_shots:,} shots per circuit execution (the faces reach within "
            f"{f['exact'] - f['shots'][cfg.budget_shots]:.2f} dB of exact with it). An execution is one circuit with "
            "one binding of its parameters and inputs.", ""] + _table(
        ["image", "points", "circuit-feature decoder (bundled): executions per grid", "shots per grid",
         "per-sample decoder (`ModulatedWideQIREN`, `angles`): executions per image", "shots per image",
         "shots for 16 images: feature / per-sample"], rows) + [
        "", "The caching that makes the difference: the bundled decoder's circuits see the coordinates only (the "
        "latent modulates the classical synthesis layers), so their features are a property of the grid. A device "
        "measures them once per resolution and every face ever sampled at that resolution reuses them "
        "(`FeatureSynthesisDecoder` caches them the same way in simulation); the per-image device cost tends to zero "
        "as images are drawn. A per-sample circuit decoder (`ModulatedWideQIREN` with `angles` modulation: 32 "
        "4-qubit circuits in each of 3 layers, whose rotation angles depend on the latent) needs fresh executions "
        "for every image, and its layers run one after the other (each layer's inputs are the previous layer's "
        "measured outputs).", ""]


__all__ = ["plot_curves", "shots_needed", "write_report"]
