"""The demo's tabs in this process (fast tier): the functions the page calls, on a tiny pipeline. The same tabs over
HTTP, from a real ``qiren-gen demo`` server, are in test_demo.py (slow tier)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qiren_gen.demo import DemoLimits
from qiren_gen.demo.actions import any_resolution, encode_upload, interpolate, sample_grid
from qiren_gen.demo.live_fit import live_fit
from testing_utils import tiny_pipeline

LIMITS = DemoLimits()


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


def _grid(pipe, seed, faces=4, resolution=16, steps=5, *rest):
    return np.asarray(sample_grid(pipe, seed, faces, resolution, steps, LIMITS, *rest))


def test_sample_tab_sizes_and_same_seed_same_grid(pipe):
    a = _grid(pipe, 3)
    assert a.shape[:2] == (32, 32)  # 4 faces at 16x16 in a 2x2 grid
    assert np.array_equal(a, _grid(pipe, 3))
    assert not np.array_equal(a, _grid(pipe, 4))
    assert _grid(pipe, 3, 3, 10).shape[:2] == (10, 30)  # 3 faces: one row
    assert np.array_equal(_grid(pipe, 3, 4, 16, 5, "dpm++"), _grid(pipe, 3, 4, 16, 5, "dpm++"))
    assert np.array_equal(a, _grid(pipe, 3))  # the default sampler is back afterwards


def test_any_resolution_tab_renders_one_latent_at_each_size(pipe):
    images = any_resolution(pipe, 5, [32, 8, 16], 5, LIMITS)
    assert [im.size for im in images] == [(8, 8), (16, 16), (32, 32)]
    big = np.asarray(images[2].convert("L").resize((8, 8), Image.Resampling.BOX), dtype=float)
    assert np.abs(big - np.asarray(images[0].convert("L"), dtype=float)).mean() < 20  # one face, not three


def test_interpolate_tab_ends_at_the_two_seeds_samples(pipe):
    strip = np.asarray(interpolate(pipe, 7, 8, 4, 8, 5, LIMITS))
    assert strip.shape[:2] == (8, 32)
    assert np.array_equal(strip[:, :8], _grid(pipe, 7, 1, 8))
    assert np.array_equal(strip[:, -8:], _grid(pipe, 8, 1, 8))
    assert not np.array_equal(strip[:, 8:16], strip[:, :8])


def test_your_image_tab_encodes_decodes_and_upscales(pipe):
    side = pipe.prior.config.sample_size
    picture = Image.fromarray((np.random.default_rng(0).random((12, 20)) * 255).astype(np.uint8))  # not square
    out = encode_upload(pipe, picture)
    assert out.model_input.size == out.reconstruction.size == (side, side)
    assert out.prior_upscaled.size == out.bicubic_upscaled.size == (4 * side, 4 * side)
    assert np.isfinite(out.psnr_db)


def test_fit_tab_streams_both_fits_to_the_end():
    signal = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    frames = list(live_fit(signal, "siren", steps=20, every=10, min_interval_s=0))
    last = frames[-1]
    assert len(frames) >= 3 and last.done and [t.name for t in last.tracks] == ["qiren", "siren"]
    for track in last.tracks:
        assert len(track.losses) == 20 and track.fit.shape == (8, 8) and track.psnr is not None


def test_fit_tab_reads_the_former_baseline_spelling():
    signal = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    last = list(live_fit(signal, "relu-rff", steps=2, every=1, min_interval_s=0))[-1]
    assert last.done and [t.name for t in last.tracks] == ["qiren", "relu_rff"]
