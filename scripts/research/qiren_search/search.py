"""Search QIREN variants on the paper's own tasks against SIREN, resumably (one JSON per fit).

Tasks: the 32x32 astronaut / camera / coffee fits, the Bach clip (optional: a path), and superresolution 32 -> 64
(the image fits rendered on the 64x64 grid, mean over the three images). A variant is a model name, its
constructor options, a learning rate and a schedule; every fit (variant, signal, seed) is cached as JSON, so an
interrupted search resumes where it stopped and a report can be rewritten at any time.
"""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qiren_gen.data.signals import load_wav, open_image, resize_image
from qiren_gen.training.fitting import build_fitting_model
from research.paper.suite import BACH_SLICE, PAPER_IMAGES, Job, init_worker, run_job

TASKS = ("astronaut", "camera", "coffee", "bach", "superres")
SIGNALS = ("astronaut", "camera", "coffee", "bach")  # superres comes from the image fits
REFERENCE = "siren"
"""The variant every ratio is taken against: SIREN, omega_0 = 30, ~1000 parameters."""


@dataclass(frozen=True)
class Variant:
    """One configuration: ``model`` (a registry name), its options, Adam learning rate and schedule."""

    name: str
    model: str
    kwargs: dict = field(default_factory=dict)
    lr: float = 0.03
    schedule: str = "constant"
    note: str = ""


def _q(name: str, note: str, lr: float = 0.03, schedule: str = "constant", **kwargs) -> Variant:
    return Variant(name, "qiren", kwargs, lr, schedule, note)


BANDS = [0.5, 0.74, 1.1, 1.6, 2.5, 3.7, 5.4, 8.0]
"""Geometric per-qubit encoding scales (one octave every ~1.7 qubits): Fourier-feature-like frequency bands."""

REFERENCES = (
    Variant("siren", "siren", {}, 3e-3, note="SIREN, omega_0 30 (the reference)"),
    Variant("siren-omega1", "siren", {"first_omega_0": 1.0, "hidden_omega_0": 1.0}, 0.1,
            note="SIREN, omega_0 1 (the authors' script default), lr 0.1"),
    Variant("relu-rff", "relu-rff", {}, 0.03, note="ReLU + 10 random Fourier features (scale 3)"),
    Variant("siren-w12", "siren", {"hidden_features": 12}, 3e-3, note="SIREN omega_0 30, width 12 (fewer parameters)"),
    Variant("siren-w16", "siren", {"hidden_features": 16}, 3e-3, note="SIREN omega_0 30, width 16"),
    Variant("siren-authors", "siren", {"first_omega_0": 1.0, "hidden_omega_0": 1.0}, 0.03,
            note="SIREN as the authors' released code runs it: omega_0 1, lr 0.03, width 21"),
    Variant("tanh", "tanh", {}, 0.03, note="Tanh MLP, width 21 (the paper's Fig. 7 reference)"),
)

ZZ2 = {"observables": "z+zz", "hidden_layers": 1}
"""s3-zz's readout and depth: every ``<Z_i>`` and ``<Z_i Z_j>``, 2 hybrid layers (the base of the encoding variants)."""

VARIANTS = (
    _q("qiren", "the paper's QIREN"),
    _q("s2", "first circuit's encoding scale 2", encoding_scale=2.0),
    _q("s3", "first circuit's encoding scale 3", encoding_scale=3.0),
    _q("s5", "first circuit's encoding scale 5", encoding_scale=5.0),
    _q("bands", "first circuit: geometric per-qubit scales 0.5..8", encoding_scale=BANDS),
    _q("bands-learn", "geometric scales 0.5..8, learnable", encoding_scale=BANDS, learnable_scale=True),
    _q("s3-learn", "scale 3, learnable (every circuit)", encoding_scale=3.0, learnable_scale=True),
    _q("s3-cos", "scale 3, cosine lr schedule", schedule="cosine", encoding_scale=3.0),
    _q("s3-nobn", "scale 3, no BatchNorm", encoding_scale=3.0, batch_norm=False),
    _q("s3-zz", "scale 3, <Z_i> and <Z_i Z_j> readout, 2 hybrid layers", encoding_scale=3.0, observables="z+zz",
       hidden_layers=1),
    _q("zz", "<Z_i> and <Z_i Z_j> readout, 2 hybrid layers, the paper's scale 1 (s3-zz without the scale)",
       observables="z+zz", hidden_layers=1),
    _q("s3-h1", "scale 3, 2 hybrid layers (s3-zz without the pair readout)", encoding_scale=3.0, hidden_layers=1),
    _q("s3-cnot", "scale 3, CNOT-chain entangler", encoding_scale=3.0, entangler="cnot_chain"),
    _q("s3-q6r4", "scale 3, 6 qubits, 4 re-uploads", encoding_scale=3.0, n_qubits=6, n_reuploads=4),
    # Exponential encodings (s3-zz's readout and depth; the first circuit's scales per re-upload):
    _q("e2-6", "scales [2, 6] per re-upload, z+zz, 2 hybrid layers", encoding_scale=[[2.0], [6.0]], **ZZ2),
    _q("t1.5-r3", "ternary 1.5 / 4.5 / 13.5, 3 re-uploads, z+zz, 2 hybrid layers", encoding_scale="ternary:1.5",
       n_reuploads=3, **ZZ2),
    _q("t0.5-r4", "ternary 0.5 / 1.5 / 4.5 / 13.5, 4 re-uploads, z+zz, 2 hybrid layers", encoding_scale="ternary:0.5",
       n_reuploads=4, **ZZ2),
    _q("e2-6-zzz", "e2-6 with <Z_i Z_j Z_k> too on the last circuit", encoding_scale=[[2.0], [6.0]],
       final_observables="z+zz+zzz", **ZZ2),
    _q("t1.5-r3-zzz", "t1.5-r3 with <Z_i Z_j Z_k> too on the last circuit", encoding_scale="ternary:1.5",
       n_reuploads=3, final_observables="z+zz+zzz", **ZZ2),
    _q("ff-e2-6", "e2-6 after fixed Fourier features (4 directions at radii 1, 3, 9)", encoding_scale=[[2.0], [6.0]],
       fourier_features=4, **ZZ2),
    _q("ff-s1", "fixed Fourier features (4 directions at radii 1, 3, 9), the paper's scale 1, z+zz, 2 hybrid layers",
       fourier_features=4, **ZZ2),
    _q("ff-t1.5-r3", "t1.5-r3 after fixed Fourier features (4 directions at radii 1, 3, 9)",
       encoding_scale="ternary:1.5", n_reuploads=3, fourier_features=4, **ZZ2),
    _q("ff-s1-zzz", "ff-s1 with <Z_i Z_j Z_k> too on the last circuit", fourier_features=4,
       final_observables="z+zz+zzz", **ZZ2),
    _q("ff6-s1", "ff-s1 with 6 directions per radius (18 frequencies)", fourier_features=6, **ZZ2),
)

SIZE_FAMILIES = {
    "SIREN omega_0 30": ["siren-w8", "siren-w12", "siren-w16", "siren", "siren-w28"],
    "QIREN t1.5-r3 (ternary, 3 re-uploads)": ["t1.5-r3-q4", "t1.5-r3-q6", "t1.5-r3"],
    "QIREN s3-zz": ["s3-zz-q4", "s3-zz-q6", "s3-zz"],
    "QIREN ff-s1 (Fourier front end)": ["ff-s1-q4", "ff-s1-q6", "ff-s1"],
}
"""Families swept in size for the rate-distortion figure (``sizes`` stage): width for SIREN, qubits for QIREN."""

SIZES = (
    Variant("siren-w8", "siren", {"hidden_features": 8}, 3e-3, note="SIREN omega_0 30, width 8"),
    Variant("siren-w28", "siren", {"hidden_features": 28}, 3e-3, note="SIREN omega_0 30, width 28 (over the budget)"),
    _q("t1.5-r3-q4", "t1.5-r3 on 4 qubits", encoding_scale="ternary:1.5", n_reuploads=3, n_qubits=4, **ZZ2),
    _q("t1.5-r3-q6", "t1.5-r3 on 6 qubits", encoding_scale="ternary:1.5", n_reuploads=3, n_qubits=6, **ZZ2),
    _q("s3-zz-q4", "s3-zz on 4 qubits", encoding_scale=3.0, n_qubits=4, **ZZ2),
    _q("s3-zz-q6", "s3-zz on 6 qubits", encoding_scale=3.0, n_qubits=6, **ZZ2),
    _q("ff-s1-q4", "ff-s1 on 4 qubits", fourier_features=4, n_qubits=4, **ZZ2),
    _q("ff-s1-q6", "ff-s1 on 6 qubits", fourier_features=4, n_qubits=6, **ZZ2),
)

ALL_VARIANTS = {v.name: v for v in REFERENCES + VARIANTS + SIZES}


def variant(name: str) -> Variant:
    """Look a variant up by name (``ValueError`` naming the known ones otherwise)."""
    if name not in ALL_VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(ALL_VARIANTS)}")
    return ALL_VARIANTS[name]


def parameter_count(v: Variant, in_features: int) -> int:
    """Trainable parameters of variant ``v`` for ``in_features``-D coordinates."""
    model = build_fitting_model(v.model, in_features, 1, seed=0, **v.kwargs)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def band_errors(fitted: np.ndarray, target: np.ndarray, n_bands: int = 4) -> list[float]:
    """Share of the target's spectral energy left in the residual, per radial frequency band (low -> Nyquist).

    Measures spectrum coverage: a model that cannot reach high frequencies leaves ~1 in the top bands.
    """
    res = np.abs(np.fft.fftn(fitted - target)) ** 2
    ref = np.abs(np.fft.fftn(target - target.mean())) ** 2
    grids = np.meshgrid(*[np.abs(np.fft.fftfreq(n)) * 2 for n in target.shape], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids)) / np.sqrt(len(grids)) if len(grids) > 1 else grids[0]
    edges = np.linspace(0, 1 + 1e-9, n_bands + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        band = (radius >= lo) & (radius < hi)
        out.append(float(res[band].sum() / max(ref[band].sum(), 1e-12)))
    return out


def _load_signals(bach_path: str | None, size: int = 32,
                  scale: int = 2) -> dict[str, tuple[str, np.ndarray, np.ndarray | None]]:
    signals = {}
    for name in PAPER_IMAGES:
        gray = open_image(name)
        signals[name] = ("image", resize_image(gray, size), resize_image(gray, size * scale))
    if bach_path is not None:
        signals["bach"] = ("sound", load_wav(bach_path, BACH_SLICE).samples, None)
    return signals


PAPER_STEPS = 301
"""The paper's 301 full-batch steps: the search's default; fits of other lengths are cached apart (``__t<steps>``)."""


def run_key(variant_name: str, signal: str, seed: int, steps: int = PAPER_STEPS) -> str:
    return f"{variant_name}__{signal}__s{seed}" + ("" if steps == PAPER_STEPS else f"__t{steps}")


def _fit(v: Variant, signal: str, seed: int, kind: str, target: np.ndarray, high: np.ndarray | None,
         steps: int) -> dict:
    """One fit (in a worker): the cached record of errors, spectrum coverage, parameters and time."""
    job = Job(kind, signal, v.model, seed, steps, target, high, learning_rate=v.lr, model_kwargs=dict(v.kwargs),
              schedule=v.schedule)
    try:
        r = run_job(job)
    except ValueError as exc:  # a diverged fit is a result too
        return {"variant": v.name, "signal": signal, "seed": seed, "steps": steps, "diverged": str(exc)}
    record = {"variant": v.name, "signal": signal, "seed": seed, "params": r.params, "mse": r.mse,
              "seconds": r.seconds, "cpu_seconds": r.cpu_seconds, "steps": steps,
              "band_errors": band_errors(r.fitted, target)}
    if r.superres is not None:
        record["superres_mse"] = r.superres_mse
        record["superres_band_errors"] = band_errors(r.superres, high)
    return record


def run_search(variant_names: list[str], signal_names: list[str], seeds: list[int], cache: Path,
               bach_path: str | None = None, steps: int = 301, workers: int = 1, progress: bool = True,
               size: int = 32) -> list[dict]:
    """Run every (variant, signal, seed) fit not yet in ``cache``; returns the new records (also written there).

    ``size`` is the image side (the paper's 32; superresolution renders twice that); keep one size per cache.
    """
    if "bach" in signal_names and bach_path is None:
        raise ValueError("the bach task needs --bach PATH (the paper's gt_bach.wav)")
    variants = [variant(n) for n in variant_names]
    signals = _load_signals(bach_path, size)
    cache.mkdir(parents=True, exist_ok=True)
    todo = [(v, s, seed) for seed in seeds for s in signal_names for v in variants
            if not (cache / f"{run_key(v.name, s, seed, steps)}.json").exists()]
    todo.sort(key=lambda t: t[0].model != "qiren")  # long fits first, so workers finish together
    records = []
    bar = tqdm(total=len(todo), desc="qiren search", disable=not progress)

    def save(record: dict) -> None:
        path = cache / f"{run_key(record['variant'], record['signal'], record['seed'], steps)}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record) + "\n")
        tmp.replace(path)  # atomic: a killed search never leaves a half-written record
        records.append(record)
        bar.set_postfix_str(f"{record['variant']} {record['signal']} mse {record.get('mse', float('nan')):.2e}")
        bar.update()

    args = [(v, s, seed, *signals[s], steps) for v, s, seed in todo]
    if workers <= 1:
        init_worker()
        for a in args:
            save(_fit(*a))
    else:
        ctx = __import__("multiprocessing").get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker) as pool:
            for fut in as_completed([pool.submit(_fit, *a) for a in args]):
                save(fut.result())
    bar.close()
    return records


def load_records(cache: Path) -> list[dict]:
    """Every cached fit record."""
    return [json.loads(p.read_text()) for p in sorted(cache.glob("*.json"))]


def main_steps(records: list[dict]) -> int:
    """The fit length a report is about: the paper's 301 where cached, else the shortest cached."""
    lengths = {r.get("steps", PAPER_STEPS) for r in records}
    return PAPER_STEPS if PAPER_STEPS in lengths or not lengths else min(lengths)


def task_table(records: list[dict], seeds: list[int] | None = None,
               steps: int | None = None) -> dict[str, dict[str, dict[int, float]]]:
    """``{variant: {task: {seed: mse}}}`` of the ``steps``-step fits (default ``main_steps``; superres: mean over the
    three images, for seeds having all three)."""
    steps = main_steps(records) if steps is None else steps
    table: dict[str, dict[str, dict[int, float]]] = {}
    for r in records:
        if (seeds is not None and r["seed"] not in seeds) or r.get("steps", PAPER_STEPS) != steps:
            continue
        row = table.setdefault(r["variant"], {})
        mse = r.get("mse", float("inf"))  # diverged: inf
        row.setdefault(r["signal"], {})[r["seed"]] = mse
        if r["signal"] in PAPER_IMAGES:
            row.setdefault("_sr_" + r["signal"], {})[r["seed"]] = r.get("superres_mse", float("inf"))
    out: dict[str, dict[str, dict[int, float]]] = {}
    for name, row in table.items():
        out[name] = {task: dict(sorted(row[task].items())) for task in SIGNALS if task in row}
        sr_seeds = set.intersection(*[set(row.get("_sr_" + i, {})) for i in PAPER_IMAGES])
        if sr_seeds:
            out[name]["superres"] = {s: float(np.mean([row["_sr_" + i][s] for i in PAPER_IMAGES]))
                                     for s in sorted(sr_seeds)}
    return out


def mean_mse(cells: dict[int, float], seeds=None) -> float:
    """Mean MSE over ``seeds`` (default: every seed in ``cells``)."""
    return float(np.mean([cells[s] for s in (cells if seeds is None else seeds)]))


def ratios_to_reference(table: dict, reference: str = REFERENCE) -> dict[str, dict[str, float]]:
    """Mean MSE of each variant / the reference's on the same seeds, per task both have (seeds in common)."""
    ref = table.get(reference, {})
    out: dict[str, dict[str, float]] = {}
    for name, row in table.items():
        out[name] = {}
        for t, cells in row.items():
            common = [s for s in cells if s in ref.get(t, {})]
            if common:
                out[name][t] = mean_mse(cells, common) / mean_mse(ref[t], common)
    return out


def rank_variants(table: dict, tasks: list[str] | None = None) -> list[tuple[str, float]]:
    """QIREN variants by the geometric mean of their MSE ratio to SIREN over ``tasks`` (lower is better).

    Without ``tasks``, the tasks every QIREN variant in ``table`` has, so that all are scored on the same ones.
    """
    sized = {v.name for v in SIZES}
    ratios = {name: row for name, row in ratios_to_reference(table).items()
              if name in ALL_VARIANTS and ALL_VARIANTS[name].model == "qiren" and name not in sized}
    if tasks is None and ratios:
        tasks = [t for t in TASKS if all(t in row for row in ratios.values())]
    scored = []
    for name, row in ratios.items():
        vals = [row[t] for t in tasks if t in row]
        if vals:
            scored.append((name, float(np.exp(np.mean(np.log(vals))))))
    return sorted(scored, key=lambda x: x[1])


__all__ = ["ALL_VARIANTS", "PAPER_STEPS", "main_steps", "REFERENCES", "SIZES", "SIZE_FAMILIES", "TASKS", "VARIANTS",
           "Variant", "band_errors", "load_records", "mean_mse", "rank_variants", "ratios_to_reference", "run_search",
           "task_table", "variant", "parameter_count"]
