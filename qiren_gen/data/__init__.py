"""Coordinates and data loading."""
from .grids import MAX_GRID_POINTS, axis_coordinates, image_grid, row_major_blocks, time_grid

__all__ = ["MAX_GRID_POINTS", "axis_coordinates", "image_grid", "row_major_blocks", "time_grid"]
from .signals import SKIMAGE_IMAGES, Audio, load_image, load_wav, open_image, parse_slice, resize_image, write_wav

__all__ += ["SKIMAGE_IMAGES", "Audio", "load_image", "load_wav", "open_image", "parse_slice", "resize_image",
            "write_wav"]
