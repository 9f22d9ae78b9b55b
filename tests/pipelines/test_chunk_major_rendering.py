"""Chunk-major rendering of the bundled pipeline equals a per-face float64 render from the plain formulas."""
from __future__ import annotations

import copy

import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.functa import decode_latents, render_chunk_points
from qiren_gen.pipelines import QirenGenerationPipeline, bundled_pipeline_dir


@pytest.fixture(scope="module")
def pipe(one_thread):
    return QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())


def reference_faces(pipe, latents: torch.Tensor, height: int, width: int, plain_synthesis) -> torch.Tensor:
    """Each face alone, in float64, through the plain synthesis math; images in [0, 1] like ``output_type="pt"``."""
    decoder, modulator = copy.deepcopy(pipe.decoder).double(), copy.deepcopy(pipe.modulator).double()
    coords = image_grid(height, width, dtype=torch.float64)
    with torch.no_grad():
        stats = decoder.reference_statistics()
        features = decoder._features(coords, stats)
        faces = [plain_synthesis(decoder, features, modulator(z[None].double())) for z in latents]
    out = torch.cat(faces).reshape(len(faces), height, width, -1).permute(0, 3, 1, 2)
    return (out / 2 + 0.5).clamp(0, 1)


@pytest.mark.parametrize("chunk_size", [None, 100], ids=["budget-chunks", "small-chunks"])
def test_bundled_samples_match_a_float64_per_face_render(pipe, chunk_size, plain_synthesis):
    kwargs = dict(batch_size=3, height=18, width=22, num_inference_steps=4)
    images = pipe(generator=torch.Generator().manual_seed(7), output_type="pt", chunk_size=chunk_size, **kwargs).images
    latents = pipe(generator=torch.Generator().manual_seed(7), output_type="latent", **kwargs).images
    expected = reference_faces(pipe, latents, 18, 22, plain_synthesis)
    torch.testing.assert_close(images.double(), expected, rtol=0, atol=1e-5)


def test_chunks_hold_every_face_within_the_budget(pipe):
    points = render_chunk_points(pipe.decoder, 16, budget=2**20)
    assert points * 16 * pipe.decoder.config.hidden_features * 4 <= 2**20 < (points + 1) * 16 * 128 * 4
    z = torch.randn(2, pipe.modulator.config.latent_dim)
    seen = []
    with torch.no_grad():
        whole = decode_latents(pipe.decoder, pipe.modulator, z, 9, 7, chunk_size=63)
        chunked = decode_latents(pipe.decoder, pipe.modulator, z, 9, 7, chunk_size=10,
                                 progress=lambda chunks: seen.extend(chunks) or chunks)
    assert seen == list(range(0, 63, 10))
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)


def test_series_features_render_the_simulated_samples(pipe):
    """The bundled pipeline at a fixed seed renders the same faces from the circuits' Fourier series (the default)
    as from the simulator, to 1e-5, with budget chunks (one grid block) and chunks that start and end mid-row."""
    kwargs = dict(batch_size=2, height=40, width=36, num_inference_steps=3, output_type="pt")
    renders = {}
    try:
        for mode in ("simulate", "series"):
            pipe.decoder.set_feature_evaluation(mode)
            for chunk_size in (None, 2 * 500):
                images = pipe(generator=torch.Generator().manual_seed(3), chunk_size=chunk_size, **kwargs).images
                renders[mode, chunk_size] = images
    finally:
        pipe.decoder.set_feature_evaluation("series")
    for chunk_size in (None, 1000):
        series, simulated = renders["series", chunk_size], renders["simulate", chunk_size]
        assert not torch.equal(series, simulated)  # two computations really ran
        torch.testing.assert_close(series, simulated, rtol=0, atol=1e-5)
