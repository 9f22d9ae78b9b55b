"""Coordinates and data loading."""
from .grids import MAX_GRID_POINTS, axis_coordinates, image_grid, time_grid

__all__ = ["MAX_GRID_POINTS", "axis_coordinates", "image_grid", "time_grid"]
