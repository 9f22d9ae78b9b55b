"""Rate-distortion of the searched families: error against parameter count, and the size each needs for a PSNR."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qiren_gen.metrics import psnr_from_mse
from research.paper.suite import PAPER_IMAGES
from research.qiren_search.search import ALL_VARIANTS, SIZE_FAMILIES, mean_mse, parameter_count

PSNR_TARGETS = (25.0, 30.0, 35.0)


def task_psnr(mse: float) -> float:
    """PSNR in dB of a search task's MSE (signals in ``[-1, 1]``); ``nan`` for a missing or diverged run."""
    return psnr_from_mse(mse, data_range=2.0) if mse > 0 and np.isfinite(mse) else float("nan")


def family_curves(table: dict, tasks=PAPER_IMAGES) -> dict[str, list[tuple[int, float]]]:
    """``{family: [(parameters, mean PSNR over tasks), ...]}`` by size, for members that have every task."""
    curves = {}
    for family, names in SIZE_FAMILIES.items():
        points = []
        for name in names:
            row = table.get(name, {})
            if all(t in row for t in tasks):
                psnr = float(np.mean([task_psnr(mean_mse(row[t])) for t in tasks]))
                points.append((parameter_count(ALL_VARIANTS[name], 2), psnr))
        if points:
            curves[family] = sorted(points)
    return curves


def params_for_psnr(points: list[tuple[int, float]], target: float) -> float | None:
    """Parameters at which the family first reaches ``target`` dB (log-linear between sizes); ``None``: not reached."""
    best = -np.inf
    prev = None
    for params, value in points:
        value = max(value, best)  # a bigger member may fit worse: the family's envelope
        if value >= target:
            if prev is None or prev[1] >= target:
                return float(params)
            lo, hi = np.log(prev[0]), np.log(params)
            return float(np.exp(lo + (hi - lo) * (target - prev[1]) / (value - prev[1])))
        best, prev = value, (params, value)
    return None


def rate_distortion_section(table: dict, figure: Path) -> list[str]:
    """Markdown (table of sizes per PSNR target) and the PNG figure; empty when no family has been swept."""
    curves = family_curves(table)
    if not curves:
        return []
    _plot(curves, table, figure)
    lines = ["## Rate-distortion: error against size", "",
             "Each family swept in size (`scripts/research/qiren_search/search_qiren.py sizes`: SIREN omega_0 30 by "
             "width, the QIREN variants by qubits), 32x32 images, PSNR of the mean MSE over the cached seeds (the size "
             "sweep runs seed 0; the members also in the final stage have 3), averaged over astronaut / camera / "
             "coffee. "
             "Parameters a family needs to reach a PSNR (log-linear between the sizes run; '-' = not reached by the "
             "largest size run):", "",
             "| family | sizes run (params: PSNR dB) | " + " | ".join(f"{t:g} dB" for t in PSNR_TARGETS) + " |",
             "|---|---|" + "---|" * len(PSNR_TARGETS)]
    for family, points in curves.items():
        sizes = ", ".join(f"{p}: {v:.1f}" for p, v in points)
        needed = [params_for_psnr(points, t) for t in PSNR_TARGETS]
        lines.append(f"| {family} | {sizes} | " + " | ".join("-" if n is None else f"{n:.0f}" for n in needed) + " |")
    lines += ["", f"![rate-distortion](figures/{figure.name})", ""]
    return lines


def _plot(curves: dict, table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(PAPER_IMAGES) + 1, figsize=(3.4 * (len(PAPER_IMAGES) + 1), 3.3))
    for ax, task in zip(axes, (*PAPER_IMAGES, "mean"), strict=True):
        for family, names in SIZE_FAMILIES.items():
            if task == "mean":
                pts = curves.get(family, [])
            else:
                pts = sorted((parameter_count(ALL_VARIANTS[n], 2), task_psnr(mean_mse(table[n][task])))
                             for n in names if task in table.get(n, {}))
            if pts:
                ax.plot(*zip(*pts, strict=True), "-o", ms=4, label=family)
        ax.axvline(parameter_count(ALL_VARIANTS["siren"], 2), color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xticks([200, 500, 1000, 2000])
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"{task} (32x32)" if task != "mean" else "mean of the three images")
        ax.set_xlabel("trainable parameters")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
