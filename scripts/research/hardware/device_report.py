"""The device sections of docs/research/hardware.md (budget per model vs per point; faces from Aer under fake IBM
backends' noise), their JSON and figure; written by ``device_study.py`` and kept by ``hardware_study.py``."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

MITIGATION_VARIANTS = ((), ("readout",), ("readout", "zne"))
"""What each measurement is post-processed with: nothing, readout-error mitigation, readout then zero-noise
extrapolation."""

DEVICE_JSON = "docs/research/hardware_device.json"
FIRST_HEADING = "## Device budget per image"
END_HEADING = "## Not measured here"
COMMAND = "python scripts/research/hardware/device_study.py"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _label(row: dict) -> str:
    return "shots only (default.qubit)" if row["backend"] is None else row["backend"]


PER_SAMPLE_CIRCUITS = 96
"""Circuits per point of the per-sample circuit decoder (``ModulatedWideQIREN``, ``angles``: 32 4-qubit circuits in
each of 3 layers, their angles set by the latent): fresh executions for every image."""


def budget_lines(results: dict) -> list[str]:
    """The budget table: executions per model against per point, at 1,000 shots per execution."""
    rows = [[f"{b['size']}x{b['size']}", f"{b['points']:,}", f"{b['per_point']:,}", f"{b['per_model']:,}",
             f"{b['per_point'] / b['per_model']:,.0f}x", f"{b['per_point'] * 1000:.1e} / {b['per_model'] * 1000:.1e}",
             f"{PER_SAMPLE_CIRCUITS * b['points']:,}"] for b in results["budget"]]
    priced = [r for r in results["rows"] if r.get("device_seconds") and r["shots"] == 1000]
    lines = [FIRST_HEADING, "",
             "An execution is one circuit with one binding of its parameters and inputs. Per point: every head's "
             "circuit at every pixel. Per model: each head's 25 executions at its sample angles give its Fourier "
             "coefficients, and every feature at every resolution follows from them on the CPU "
             "(`qiren_gen.models.device_features.measure_decoder_features`); the count does not grow with the "
             "resolution and every face ever sampled reuses it.", ""]
    lines += _table(["image", "points", "executions per point (32 heads x points)",
                     "executions per model (32 heads x 25)", "fewer per model", "shots at 1,000 per execution: "
                     "per point / per model", f"per-sample decoder: executions per image ({PER_SAMPLE_CIRCUITS} "
                     "circuits x points)"], rows)
    lines += ["", "The bundled decoder's circuits see the coordinates only (the latent modulates the classical "
              "synthesis layers), so its features are a property of the model. A per-sample circuit decoder "
              "(`ModulatedWideQIREN` with `angles` modulation: 32 4-qubit circuits in each of 3 layers, their "
              "rotation angles set by the latent) needs fresh executions at every point of every image, its layers "
              "one after the other."]
    for r in priced:
        lines += ["", f"On {r['backend']} (qubits {r['physical_qubits']}), the 800 executions at 1,000 shots are an "
                      f"estimated {r['device_seconds']:.0f} s of device time: {r['circuit_seconds'] * 1e6:.1f} us "
                      "per shot of the transpiled circuit (depth "
                      f"{r['depth']}, {r['two_qubit_gates']} native two-qubit gates) plus the backend's repetition "
                      "delay between shots, which dominates."]
    return lines + [""]


def faces_lines(results: dict, figure: str, page: str) -> list[str]:
    """The faces section: PSNR against the exact render per backend, shot count and mitigation, and the figure."""
    rel = Path(figure).relative_to(Path(page).parent) if Path(figure).is_relative_to(Path(page).parent) else figure
    header = ["backend", "shots per execution", "transpiled depth / two-qubit gates"] + [
        f"{'none' if not v else ' + '.join(v)} (dB)" for v in MITIGATION_VARIANTS]
    rows = []
    for r in results["rows"]:
        cells = [r["variants"].get(",".join(v) or "none") for v in MITIGATION_VARIANTS]
        gates = "-" if r.get("depth") is None else f"{r['depth']} / {r['two_qubit_gates']}"
        rows.append([_label(r), f"{r['shots']:,}", gates] + ["-" if c is None else f"{c['psnr']:.2f}" for c in cells])
    t = results["timing"]
    lines = ["## Faces from a calibrated device, offline", "",
             f"Every number in this section and the budget above comes from one command ({results['seconds'] / 60:.1f} "
             "minutes on one thread of the shared 2-core CPU); it writes these two sections, "
             "`docs/research/hardware_device.json` and the figure:", "",
             f"    {results.get('command', COMMAND).rstrip()}", "",
             f"{results['faces']} prior samples of the bundled pipeline (seed {results['seed']}, DDIM "
             f"{results['steps']}) rendered at {results['size']}x{results['size']} from circuit features measured on "
             "PennyLane-Qiskit's `qiskit.aer` device with a fake IBM backend's calibrated noise "
             "(`NoiseModel.from_backend`: depolarizing gate errors, thermal relaxation from each qubit's T1 / T2 over "
             "each gate's duration, readout errors) on the backend's best-calibrated connected pair of qubits, every "
             "circuit transpiled to its native gates and coupling map; PSNR against the same samples rendered "
             "exactly. One batch per row measures the circuits, their folded copies and two calibration circuits; "
             "each mitigation column post-processes the same data (executions: none 800, readout 802, readout + "
             "ZNE 1,602). `default.qubit` rows have shot noise only.", ""]
    lines += _table(header, rows)
    lines += ["", *mitigation_summary(results)]
    lines += ["", f"![faces from Aer-measured features]({Path(rel).as_posix()})", "",
              "Rows: the exact render, then each backend and shot count without mitigation and with readout + ZNE.",
              "", f"Timing: {t['executions']} executions of {t['shots']:,} shots on `qiskit.aer` with {t['backend']}'s "
              f"noise, one job: {t['cpu_seconds']:.1f} s of CPU time on one thread, opening the device and pricing "
              f"the circuits included ({t['seconds']:.1f} s wall time for the measurement alone, which depends on "
              "what else the machine runs); transpiling each circuit and reading its shots back through the plugin "
              "take most of it.",
              "",
              "Readout mitigation corrects each qubit's `<Z>` with its measured flip probabilities (two calibration "
              "circuits); ZNE runs every circuit also folded once (`U U^dag U`, barriers between, so the transpiler "
              "keeps them) and extrapolates linearly to zero noise, after the readout correction. Reproduce one row "
              "from the command line: `qiren-gen sample --pennylane-device qiskit.aer --fake-backend FakeBrisbane "
              "--shots 10000 --mitigation readout --output faces.png`.", ""]
    return lines


def mitigation_summary(results: dict) -> list[str]:
    """One line per backend row: what each mitigation gained (dB) against none, beside the shots-only PSNR."""
    shots_only = {r["shots"]: r["variants"]["none"]["psnr"] for r in results["rows"] if r["backend"] is None}
    out = []
    for r in results["rows"]:
        if r["backend"] is None:
            continue
        v = {k: x["psnr"] for k, x in r["variants"].items()}
        alone = shots_only.get(r["shots"])
        out.append(f"- {r['backend']}, {r['shots']:,} shots: readout {v['readout'] - v['none']:+.2f} dB, readout + ZNE "
                   f"{v['readout,zne'] - v['none']:+.2f} dB against none"
                   + ("" if alone is None else f" (shot noise alone: {alone:.2f} dB)") + ".")
    return out


def device_section_text(json_path: str | Path = DEVICE_JSON, figure: str = "docs/research/figures/"
                        "hardware_device_faces.png", page: str = "docs/research/hardware.md") -> list[str]:
    """The two sections from the study's JSON (empty when it was never run)."""
    path = Path(json_path)
    if not path.exists():
        return []
    results = json.loads(path.read_text())
    return budget_lines(results) + faces_lines(results, figure, page)


def _figure(results: dict, exact, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("exact", exact)] + [(f"{_label(r)}\n{r['shots']:,} shots\n{name}\n{v['psnr']:.1f} dB", v["images"])
                                 for r in results["rows"] for name, v in r["variants"].items()
                                 if r["backend"] is not None and name in ("none", "readout,zne")]
    faces = exact.shape[0]
    fig, axes = plt.subplots(len(rows), faces, figsize=(1.3 * faces + 1.2, 1.3 * len(rows)), squeeze=False)
    for i, (label, images) in enumerate(rows):
        for j in range(faces):
            ax = axes[i][j]
            ax.imshow(images[j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    _to_grey(path)


def _to_grey(path: str) -> None:
    """Rewrite the figure as an 8-bit grey PNG: it holds grey faces and black text only (a third of the RGBA bytes)."""
    Image.open(path).convert("L").save(path, optimize=True)


def replace_sections(page: str, lines: list[str]) -> None:
    """Put ``lines`` in ``page`` from `FIRST_HEADING` up to `END_HEADING` (appended when absent)."""
    path = Path(page)
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines)
    if FIRST_HEADING in text and END_HEADING in text:
        head, rest = text.split(FIRST_HEADING, 1)
        tail = rest[rest.index(END_HEADING):]
        text = head + block + "\n" + tail
    else:
        text = text + ("\n" if text else "") + block + "\n"
    path.write_text(text)


def write_device_sections(results: dict, exact, args, command: str) -> None:
    """The JSON (without images), the figure and the page's device sections."""
    _figure(results, exact, args.figure)
    stored = {**results, "command": command, "rows": [
        {**r, "variants": {k: {kk: vv for kk, vv in v.items() if kk != "images"} for k, v in r["variants"].items()}}
        for r in results["rows"]]}
    Path(args.json).write_text(json.dumps(stored, indent=2) + "\n")
    replace_sections(args.page, device_section_text(args.json, args.figure, args.page))


__all__ = ["DEVICE_JSON", "MITIGATION_VARIANTS", "budget_lines", "device_section_text", "faces_lines",
           "mitigation_summary", "replace_sections", "write_device_sections"]
