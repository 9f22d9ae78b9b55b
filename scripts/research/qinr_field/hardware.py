"""QFGN and QVF as a device would run them: the fitted model re-evaluated with shots and gate noise (seed 0).

QFGN's circuit takes every mode of :func:`qiren_gen.quantum.shots.measurement`; QVF's takes shots and readout error
(its amplitude encoding's state preparation is not simulated gate by gate, so gate noise is refused).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from qiren_gen.data.grids import image_grid
from qiren_gen.quantum.shots import measurement
from qiren_gen.training.fitting import build_fitting_model, fit_inr
from research.qinr_field.field import STEPS, Cache, sized

SETTINGS = {
    "qfgn": ({"shots": None, "noise": None}, {"shots": 1000, "noise": None},
             {"shots": None, "noise": {"depolarizing": 1e-3}},
             {"shots": 1000, "noise": {"depolarizing": 1e-3, "readout": 0.01}}),
    "qvf": ({"shots": None, "noise": None}, {"shots": 1000, "noise": None},
            {"shots": 1000, "noise": {"readout": 0.01}}),
}


def describe(setting: dict) -> str:
    parts = ["exact" if setting["shots"] is None else f"{setting['shots']} shots"]
    if setting["noise"]:
        parts.append(", ".join(f"{k} {v:g}" for k, v in setting["noise"].items()))
    return " + ".join(parts)


def hardware_eval(cache: Cache, family, budget: int, lr: float, hp: dict, signals: dict, log=print) -> list[dict]:
    """Fit ``family`` (seed 0, chosen setting) on each image, then its MSE under every setting of ``SETTINGS``."""

    out = []
    for name, (kind, target, _) in signals.items():
        if kind != "image":
            continue
        k = f"hardware|{family.name}|{budget}|{name}|s0|lr{lr:g}|{hp}"
        if k in cache.records:
            out.append(cache.records[k])
            continue
        start = time.time()
        options = {**sized(family, budget)[0], **hp}
        model = build_fitting_model(family.model, 2, 1, seed=0, **options)
        coords = image_grid(32, 32, align_corners=True)
        truth = torch.as_tensor(target, dtype=torch.float32).reshape(-1, 1)
        fit_inr(model, coords, truth, STEPS, lr, progress=False, schedule="constant")
        rows = []
        with torch.no_grad():
            for setting in SETTINGS[family.name]:
                with measurement(model, setting["shots"], setting["noise"], torch.Generator().manual_seed(0)):
                    pred = model(coords)
                rows.append({"setting": describe(setting), "mse": float(((pred - truth) ** 2).mean())})
        record = {"key": k, "kind": "hardware", "row": family.name, "budget": budget, "signal": name, "seed": 0,
                  "lr": lr, "hp": hp, "settings": rows}
        cache.add(record)
        log(f"hardware {family.name} {name}: " + "; ".join(f"{r['setting']} {r['mse']:.3e}" for r in rows)
            + f" ({time.time() - start:.1f}s)")
        out.append(record)
    return out


def hardware_table(records: list[dict]) -> dict[str, dict[str, float]]:
    """``row -> setting -> mean MSE over images`` from the hardware records."""
    table: dict[str, dict[str, list[float]]] = {}
    for r in records:
        for s in r["settings"]:
            table.setdefault(r["row"], {}).setdefault(s["setting"], []).append(s["mse"])
    return {row: {s: float(np.mean(v)) for s, v in cells.items()} for row, cells in table.items()}
