"""The quantum-INR field side by side: every model sized to a parameter budget, one search protocol, cached fits.

A *family* is a model name and a size knob: :func:`sized` picks the largest knob whose trainable parameter count is
at most the budget (on 2-D images; the sound clip uses the same knob). Every family gets the same search: Adam for
``STEPS`` full-batch steps at a constant rate, learning rate from ``LEARNING_RATES`` and the family's own frequency
setting from its ``grid`` (SIREN: ``first_omega_0``; FFN: the Gaussian scale; QFGN: the feature scale; QVF: the energy
network's ``omega``; QIREN's have none), chosen on seed 0 by the geometric mean MSE over the three images; the chosen
setting then runs on every seed and on the sound clip. Every fit is one JSON line in the cache, so a run resumes.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qiren_gen.data.signals import load_wav, open_image, resize_image
from qiren_gen.models import build_inr
from research.paper.suite import BACH_SLICE, PAPER_IMAGES, Job, run_job

STEPS = 301
"""The QIREN paper's 301 full-batch steps, for every model."""

LEARNING_RATES = (3e-3, 1e-2, 3e-2)
"""The learning rates every family is searched over (constant schedule, the paper's)."""

BUDGETS = (660, 2640, 10560)
"""Parameter budgets: the paper's QIREN size (657 fits under 660), 4x and 16x that."""


@dataclass(frozen=True)
class Family:
    """A model family: ``model`` name, ``label``, how a knob value becomes constructor options, the knob range, and
    the frequency setting searched beside the learning rate (``grid``: option name -> values)."""

    name: str
    model: str
    label: str
    options: object  # callable knob -> dict
    knobs: tuple[int, ...]
    grid: dict = field(default_factory=dict)
    quantum: bool = False


def _qfgn(k: int) -> dict:
    return {"n_frequencies": 20 + 4 * k, "gaussian_features": 18 + 4 * k}


FAMILIES = (
    Family("qiren", "qiren", "QIREN (paper)", lambda k: {"n_blocks": k}, tuple(range(1, 80)), quantum=True),
    Family("qiren-plus", "qiren-plus", "QIREN+ (qiren-plus, best variant)",
           lambda k: {"n_qubits": k} if k <= 8 else {"n_blocks": k - 6}, tuple(range(3, 80)), quantum=True),
    Family("qfgn", "qfgn", "QFGN", _qfgn, tuple(range(0, 400)), grid={"frequency_scale": (2.0,)}, quantum=True),
    Family("qvf", "qvf", "QVF", lambda k: {"energy_hidden": k}, tuple(range(1, 400)),
           grid={"energy_omega": (3.0, 10.0, 30.0)}, quantum=True),
    Family("siren", "siren", "SIREN (omega_0, lr tuned)", lambda k: {"hidden_features": k}, tuple(range(2, 200)),
           grid={"first_omega_0": (10.0, 20.0, 30.0, 60.0)}),
    Family("ffn", "relu-rff", "FFN (ReLU + Gaussian RFF)",
           lambda k: {"hidden_features": k, "num_frequencies": max(4, k // 2)}, tuple(range(2, 200)),
           grid={"scale": (1.0, 3.0, 10.0)}),
    Family("relu", "relu", "ReLU MLP", lambda k: {"hidden_features": k}, tuple(range(2, 200))),
)
FAMILY = {f.name: f for f in FAMILIES}

ABLATIONS = {"qfgn-flat": ("qfgn", {"low_frequency_penalty": 0.0})}
"""Extra rows at the smallest budget (images, seed 0): QFGN without its low-frequency penalty, at QFGN's chosen
setting."""


def parameter_count(model: str, options: dict, in_features: int = 2) -> int:
    return build_inr(model, in_features, 1, **options).num_parameters(only_trainable=True)


def sized(family: Family, budget: int) -> tuple[dict, int]:
    """The family's options at the largest knob within ``budget`` parameters (2-D), and that count."""
    best = None
    lo, hi = 0, len(family.knobs) - 1
    while lo <= hi:  # counts grow with the knob: binary search
        mid = (lo + hi) // 2
        opts = family.options(family.knobs[mid])
        n = parameter_count(family.model, opts)
        if n <= budget:
            best, lo = (opts, n), mid + 1
        else:
            hi = mid - 1
    if best is None:
        raise ValueError(f"{family.name} has no size within {budget} parameters")
    return best


def load_signals(bach_path: str | None) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """The paper's 32x32 images (and 64x64 truths) and, when given, the Bach clip (1000 samples)."""
    signals = {}
    for name in PAPER_IMAGES:
        gray = open_image(name)
        signals[name] = ("image", resize_image(gray, 32), resize_image(gray, 64))
    if bach_path is not None:
        signals["bach"] = ("sound", load_wav(bach_path, BACH_SLICE).samples, None)
    return signals


def key(row: str, budget: int, signal: str, seed: int, lr: float, hp: dict) -> str:
    hps = ",".join(f"{k}={v:g}" for k, v in sorted(hp.items()))
    return f"{row}|{budget}|{signal}|s{seed}|lr{lr:g}|{hps}"


class Cache:
    """Fits as JSON lines in ``path``, one per (row, budget, signal, seed, lr, setting)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    self.records[r["key"]] = r

    def add(self, record: dict) -> None:
        self.records[record["key"]] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def fit(cache: Cache, row: str, family: Family, budget: int, signal: str, sig: tuple, seed: int, lr: float,
        hp: dict, extra: dict | None = None, log=print) -> dict:
    """One cached fit of ``family`` sized to ``budget`` with setting ``hp`` at ``lr``."""
    k = key(row, budget, signal, seed, lr, hp)
    if k in cache.records:
        return cache.records[k]
    options, _ = sized(family, budget)
    options = {**options, **hp, **(extra or {})}
    kind, target, high = sig
    job = Job(kind, signal, family.model, seed, STEPS, target, high if kind == "image" else None,
              learning_rate=lr, model_kwargs=options, schedule="constant")
    start = time.time()
    try:
        r = run_job(job)
        record = {"key": k, "row": row, "budget": budget, "signal": signal, "seed": seed, "lr": lr, "hp": hp,
                  "options": options, "params": r.params, "mse": r.mse, "superres_mse": r.superres_mse,
                  "cpu_seconds": r.cpu_seconds, "seconds": r.seconds,
                  "losses": [float(v) for v in r.losses[:: 5]] + [float(r.losses[-1])]}
        if not math.isfinite(r.mse):
            record["mse"] = None
    except ValueError as exc:  # a diverged fit is a result too
        record = {"key": k, "row": row, "budget": budget, "signal": signal, "seed": seed, "lr": lr, "hp": hp,
                  "options": options, "mse": None, "diverged": str(exc)}
    cache.add(record)
    mse = record.get("mse")
    log(f"{row:10s} {budget:6d} {signal:9s} s{seed} lr={lr:g} {hp} "
        f"mse={'diverged' if mse is None else f'{mse:.3e}'} ({time.time() - start:.1f}s)")
    return record


def settings(family: Family) -> list[tuple[float, dict]]:
    """Every (learning rate, frequency setting) of the family's search."""
    grids = [dict(zip(family.grid, values, strict=True)) for values in _product(list(family.grid.values()))]
    return [(lr, hp) for hp in grids for lr in LEARNING_RATES]


def _product(lists: list) -> list[tuple]:
    out = [()]
    for values in lists:
        out = [o + (v,) for o in out for v in values]
    return out


def geomean(values: list[float | None]) -> float:
    if not values or any(v is None for v in values):
        return math.inf
    return float(math.exp(sum(math.log(max(v, 1e-30)) for v in values) / len(values)))


def choose(cache: Cache, family: Family, budget: int, signals: dict, log=print) -> tuple[float, dict]:
    """Run the family's search on seed 0 over the images; the (lr, setting) with the lowest geometric-mean MSE."""
    images = [s for s in signals if signals[s][0] == "image"]
    scored = []
    for lr, hp in settings(family):
        mses = [fit(cache, family.name, family, budget, s, signals[s], 0, lr, hp, log=log)["mse"] for s in images]
        scored.append((geomean(mses), lr, hp))
    best = min(scored, key=lambda t: t[0])
    return best[1], best[2]


ORDER = ("siren", "ffn", "relu", "qvf", "qfgn", "qiren-plus", "qiren")
"""Run order: cheapest first (QIREN's 8-qubit, 3-circuit fits cost the most)."""


def run_budget(cache: Cache, budget: int, seeds: list[int], signals: dict, families=FAMILIES, log=print,
               hardware_hook=None, hardware_hook_rows=("qfgn", "qvf")) -> dict:
    """Search, then every seed and signal at the chosen setting, for every family at ``budget``; returns choices."""
    chosen = {}
    order = sorted(families, key=lambda f: ORDER.index(f.name))  # cheap first, so a cut-short run still has most rows
    for family in order:
        lr, hp = choose(cache, family, budget, signals, log)
        chosen[family.name] = {"lr": lr, "hp": hp}
        for seed in seeds:
            for s in signals:
                fit(cache, family.name, family, budget, s, signals[s], seed, lr, hp, log=log)
        if budget == min(BUDGETS):
            for row, (base, extra) in ABLATIONS.items():
                if base != family.name:
                    continue
                for s in signals:  # seed 0 only: an ablation of one mechanism, not a row of the comparison
                    if signals[s][0] == "image":
                        fit(cache, row, family, budget, s, signals[s], 0, lr, hp, extra=extra, log=log)
                chosen[row] = {"lr": lr, "hp": hp, "extra": extra}
            if family.name in hardware_hook_rows and hardware_hook is not None:
                hardware_hook(family, budget, lr, hp)
    return chosen
