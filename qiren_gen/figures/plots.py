"""PNG figures of fits (ground truth beside fit, and spectra) and superresolution comparisons (matplotlib, Agg)."""
from __future__ import annotations

import os

import matplotlib
import numpy as np
from matplotlib.text import Text

from ..io.atomic import save_figure
from ..io.errors import shown

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (pyplot after choosing the Agg backend)


def magnitude_spectrum_db(signal: np.ndarray) -> np.ndarray:
    """``20 log10 |FFT|`` of a 1-D signal (rfft) or a 2-D image (centred fft2)."""
    x = np.asarray(signal, dtype=np.float64)
    spec = np.abs(np.fft.rfft(x)) if x.ndim == 1 else np.abs(np.fft.fftshift(np.fft.fft2(x)))
    return 20 * np.log10(spec + 1e-8)


def _save(fig, path: str | os.PathLike) -> None:
    """Write ``fig`` atomically (a failed write keeps the previous file whole); every text of the figure is shown
    escaped first, so a title made from a file name that is not UTF-8 (or holds control characters) cannot fail the
    save after the work that made the figure."""
    for text in fig.findobj(Text):
        text.set_text(shown(text.get_text()))
    try:
        fig.tight_layout()
        save_figure(path, fig, dpi=110)
    finally:
        plt.close(fig)


def plot_fit(target: np.ndarray, fitted: np.ndarray, path: str | os.PathLike, title: str = "",
             rate: int | None = None) -> None:
    """Ground truth beside the fit, with both magnitude spectra below (audio: overlaid curves; images: panels)."""
    target, fitted = np.asarray(target), np.asarray(fitted)
    if target.ndim == 1:
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5))
        t = np.arange(target.size) / rate if rate else np.linspace(-1, 1, target.size)
        ax1.plot(t, target, lw=0.8, label="ground truth")
        ax1.plot(t, fitted, lw=0.8, alpha=0.8, label="fit")
        ax1.set_xlabel("time [s]" if rate else "t")
        ax1.legend(loc="upper right")
        ax1.set_title(title)
        freqs = np.fft.rfftfreq(target.size, d=1 / rate) if rate else np.arange(target.size // 2 + 1)
        ax2.plot(freqs, magnitude_spectrum_db(target), lw=0.8, label="ground truth")
        ax2.plot(freqs, magnitude_spectrum_db(fitted), lw=0.8, alpha=0.8, label="fit")
        ax2.set_xlabel("frequency [Hz]" if rate else "frequency bin")
        ax2.set_ylabel("|FFT| [dB]")
        ax2.legend(loc="upper right")
    else:
        fig, axes = plt.subplots(2, 3, figsize=(10, 6.6))
        err = fitted - target
        lim = max(float(np.abs(err).max()), 1e-8)
        for ax, img, name, kw in [
            (axes[0, 0], target, "ground truth", dict(cmap="gray", vmin=-1, vmax=1)),
            (axes[0, 1], fitted, "fit", dict(cmap="gray", vmin=-1, vmax=1)),
            (axes[0, 2], err, "error (fit - truth)", dict(cmap="RdBu_r", vmin=-lim, vmax=lim)),
        ]:
            im = ax.imshow(img, **kw)
            ax.set_title(name)
            ax.axis("off")
        fig.colorbar(im, ax=axes[0, 2], fraction=0.046)
        spectra = [magnitude_spectrum_db(target), magnitude_spectrum_db(fitted)]
        lo, hi = min(s.min() for s in spectra), max(s.max() for s in spectra)
        # two spectra on the first two axes of the row; the third holds the radial profiles
        for ax, spec, name in zip(axes[1, :2], spectra, ["spectrum of truth", "spectrum of fit"], strict=True):
            ax.imshow(spec, cmap="magma", vmin=max(lo, hi - 80), vmax=hi)
            ax.set_title(name + " [dB]")
            ax.axis("off")
        r_t, r_f = _radial_profile(target), _radial_profile(fitted)
        axes[1, 2].plot(r_t, label="truth")
        axes[1, 2].plot(r_f, label="fit")
        axes[1, 2].set_xlabel("radial frequency")
        axes[1, 2].set_ylabel("mean |FFT| [dB]")
        axes[1, 2].legend()
        fig.suptitle(title)
    _save(fig, path)


def _radial_profile(image: np.ndarray) -> np.ndarray:
    """Mean dB magnitude over rings of the centred 2-D spectrum."""
    spec = magnitude_spectrum_db(image)
    h, w = spec.shape
    yy, xx = np.indices(spec.shape)
    r = np.hypot(yy - h // 2, xx - w // 2).astype(int)
    counts = np.bincount(r.ravel())
    return np.bincount(r.ravel(), spec.ravel())[: min(h, w) // 2 + 1] / np.maximum(counts[: min(h, w) // 2 + 1], 1)


def plot_image_grid(rows: list[list[np.ndarray]], row_labels: list[str], col_labels: list[str], path: str | os.PathLike,
                    title: str = "", captions: list[list[str]] | None = None) -> None:
    """A grid of grayscale images in [-1, 1] (rows x columns), with labels and optional per-panel captions."""
    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 2.0 * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(col_labels[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=9)
            if captions:
                ax.set_xlabel(captions[i][j], fontsize=7)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_superres(low: np.ndarray, outputs: dict[str, np.ndarray], path: str | os.PathLike,
                  truth: np.ndarray | None = None, title: str = "") -> None:
    """Low-resolution input, each upsampled result and (when known) the high-resolution truth, side by side."""
    panels = [("input (low-res)", low), *outputs.items(), *([("ground truth", truth)] if truth is not None else [])]
    captions = []
    for name, img in panels:
        if truth is not None and img.shape == truth.shape and name != "ground truth":
            captions.append(f"MSE {np.mean((img - truth) ** 2):.2e}")
        else:
            captions.append(f"{img.shape[0]}x{img.shape[1]}")
    plot_image_grid([[img for _, img in panels]], [""], [name for name, _ in panels], path, title, [captions])


def plot_bars(groups: list[str], series: dict[str, list[float]], path: str | os.PathLike, ylabel: str, title: str = "",
              errors: dict[str, list[float]] | None = None, reference: float | None = None) -> None:
    """Grouped bar chart (one group per signal, one bar per model), optional error bars and a reference line."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(groups), 3.6))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name,
               yerr=None if errors is None else errors.get(name), capsize=2)
    if reference is not None:
        ax.axhline(reference, color="k", lw=0.8, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def plot_waveforms(target: np.ndarray, fits: dict[str, np.ndarray], path: str | os.PathLike, title: str = "") -> None:
    """One panel per model: the audio fit over the ground truth, with its MSE (like the paper's Fig. 4)."""
    fig, axes = plt.subplots(len(fits), 1, figsize=(9, 1.5 * len(fits)), sharex=True, squeeze=False)
    t = np.linspace(-1, 1, target.size)
    for ax, (name, fit) in zip(axes[:, 0], fits.items(), strict=True):
        ax.plot(t, target, lw=0.7, color="0.6", label="ground truth")
        ax.plot(t, fit, lw=0.7, label=name)
        ax.set_ylabel(name, fontsize=8)
        ax.text(0.99, 0.05, f"MSE {np.mean((fit - target) ** 2):.2e}", transform=ax.transAxes, ha="right", fontsize=8)
    axes[-1, 0].set_xlabel("t")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_curves(curves: dict[str, list[float]], path: str | os.PathLike, ylabel: str = "training MSE",
                title: str = "") -> None:
    """Loss curves on a log scale, one line per model."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in curves.items():
        ax.semilogy(values, label=name, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)
