"""Coordinate grids: conventions, ordering and bad sizes."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.data import MAX_GRID_POINTS, axis_coordinates, image_grid, time_grid


def test_pixel_centres_and_corners():
    assert torch.allclose(axis_coordinates(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(axis_coordinates(3, align_corners=True), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(axis_coordinates(1), torch.tensor([0.0]))


def test_image_grid_is_row_major_y_x():
    grid = image_grid(2, 3).reshape(2, 3, 2)
    assert torch.allclose(grid[0, :, 0], torch.full((3,), -0.5))  # y constant along a row
    assert torch.allclose(grid[:, 0, 1], torch.full((2,), -2 / 3))  # x constant down a column
    assert torch.allclose(grid[1, 2], torch.tensor([0.5, 2 / 3]))


def test_area_downsampling_consistency():
    """The mean of a 4x grid's sub-pixel centres is the base grid's pixel centre."""
    base = image_grid(5, 7).reshape(5, 7, 2)
    fine = image_grid(20, 28).reshape(5, 4, 7, 4, 2).mean(dim=(1, 3))
    assert torch.allclose(fine, base, atol=1e-6)


def test_time_grid_includes_endpoints():
    t = time_grid(5)
    assert t.shape == (5, 1) and t[0, 0] == -1 and t[-1, 0] == 1


@pytest.mark.parametrize("h,w", [(0, 4), (4, -1), (2.5, 3), (True, 3)])
def test_bad_sizes(h, w):
    with pytest.raises(ValueError):
        image_grid(h, w)


def test_absurd_grid_refused_without_allocating():
    with pytest.raises(ValueError, match="over the limit"):
        image_grid(MAX_GRID_POINTS, 2)
