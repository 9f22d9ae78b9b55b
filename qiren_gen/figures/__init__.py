"""PNG figures (matplotlib, Agg): fits beside ground truth with spectra, image grids, superresolution, bars, curves.

One home for the drawing primitives that the command line and the reports share.
"""
from .plots import (
    magnitude_spectrum_db,
    plot_bars,
    plot_curves,
    plot_fit,
    plot_image_grid,
    plot_superres,
    plot_waveforms,
)

__all__ = ["magnitude_spectrum_db", "plot_bars", "plot_curves", "plot_fit", "plot_image_grid", "plot_superres",
           "plot_waveforms"]
