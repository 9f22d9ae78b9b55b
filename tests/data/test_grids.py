"""Coordinate grids: conventions, ordering and bad sizes."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.data import MAX_GRID_POINTS, axis_coordinates, image_grid, row_major_blocks, time_grid


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


def _rebuilt(blocks) -> torch.Tensor:
    return torch.cat([torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)
                      for _, rows, cols in blocks])


@pytest.mark.parametrize("start,stop", [(0, 18 * 22), (37, 37 + 300), (5, 17), (22, 22 * 5)],
                         ids=["whole", "mid-row-to-mid-row", "inside-a-row", "whole-rows"])
def test_row_major_blocks_rebuild_any_slice_of_an_image_grid(start, stop):
    coords = image_grid(18, 22)[start:stop]
    blocks = row_major_blocks(coords, min_block_points=1)
    assert blocks is not None and len(blocks) <= 3  # a partial first row, whole rows, a partial last row
    assert [b[0] for b in blocks] == sorted(b[0] for b in blocks) and blocks[0][0] == 0
    assert torch.equal(_rebuilt(blocks), coords)


def test_row_major_blocks_refuse_scattered_points_and_other_shapes():
    torch.manual_seed(0)
    assert row_major_blocks(torch.rand(500, 2)) is None  # every point its own row
    assert row_major_blocks(image_grid(4, 4)) is None  # 16 points: fewer than a block is worth
    assert row_major_blocks(image_grid(4, 4), min_block_points=1) is not None
    assert row_major_blocks(torch.rand(64, 3)) is None and row_major_blocks(torch.rand(2, 64, 2)) is None
    shuffled = image_grid(16, 16)
    shuffled[[3, 4]] = shuffled[[4, 3]]  # two points of one row swapped: still exact, in more blocks
    blocks = row_major_blocks(shuffled, min_block_points=1)
    assert torch.equal(_rebuilt(blocks), shuffled) and len(blocks) > 1
