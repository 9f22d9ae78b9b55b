"""Prior-based superresolution: encode at low resolution with the generative decoder, render at high resolution."""
import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.functa import decode_latents, encode_area_consistent, encode_images, prior_superresolve
from research.prior_superres.study import compare_superres, fit_single_image_qiren
from testing_utils import tiny_pipeline


def test_prior_superresolve_is_encode_at_low_then_decode_at_high_resolution():
    # Quality needs a trained model (measured by scripts/research/prior_superres/compare_prior_superres.py); here: the
    # latent found at low resolution is exactly the one rendered at high resolution.
    pipe = tiny_pipeline()
    low = torch.rand(2, 1, 4, 5) * 2 - 1
    up = prior_superresolve(pipe.decoder, pipe.modulator, low, 16, 20, steps=2)
    z = encode_images(pipe.decoder, pipe.modulator, low, steps=2)
    with torch.no_grad():
        torch.testing.assert_close(up, decode_latents(pipe.decoder, pipe.modulator, z, 16, 20))
    assert z.abs().sum() > 0  # the inner loop moved away from the zero latent
    assert up.shape == (2, 1, 16, 20)
    with pytest.raises(ValueError, match="height must be >= 1"):
        prior_superresolve(pipe.decoder, pipe.modulator, low, 0, 16)
    with pytest.raises(ValueError, match="one integer factor"):
        prior_superresolve(pipe.decoder, pipe.modulator, low, 16, 16, consistency="area")


def test_area_consistent_encoding_fits_the_downsampled_render():
    # With a well-conditioned decoder (small modulations), area-consistent encoding of an area-downsampled decoder
    # image reproduces its input far better than the zero latent does, and the render keeps the factor exactly.
    pipe = tiny_pipeline()
    pipe.modulator.net[-1].weight.data.div_(20)
    torch.manual_seed(0)
    with torch.no_grad():
        pipe.modulator.inner_lr.fill_(10.0)
        full = decode_latents(pipe.decoder, pipe.modulator, torch.randn(2, 6), 12, 12)
    low = torch.nn.functional.avg_pool2d(full, 3)
    z = encode_area_consistent(pipe.decoder, pipe.modulator, low, 3, steps=20)
    with torch.no_grad():
        fit = torch.nn.functional.avg_pool2d(decode_latents(pipe.decoder, pipe.modulator, z, 12, 12), 3)
        base = torch.nn.functional.avg_pool2d(decode_latents(pipe.decoder, pipe.modulator, 0 * z, 12, 12), 3)
    assert (fit - low).square().mean() < 0.3 * (base - low).square().mean()


def test_pipeline_superresolve_accepts_pil_and_tensors():
    pipe = tiny_pipeline()
    pil = [Image.fromarray((np.random.default_rng(0).random((5, 7)) * 255).astype(np.uint8), mode="L")]
    out = pipe.superresolve(pil, height=20, width=28)
    assert out[0].size == (28, 20) and out[0].mode == "L"
    arr = pipe.superresolve(torch.rand(2, 1, 5, 7), height=10, width=14, output_type="np")
    assert arr.shape == (2, 10, 14, 1) and 0 <= arr.min() and arr.max() <= 1
    with pytest.raises(ValueError, match="documented bound"):
        pipe.superresolve(pil, height=5000, width=5000)


def test_single_image_fit_reproduces_its_input():
    image = torch.linspace(-0.8, 0.8, 36).reshape(1, 6, 6)  # a smooth ramp
    out = fit_single_image_qiren(image, 6, 6, steps=80, n_qubits=4)
    assert (out - image).square().mean() < 0.01


def test_compare_superres_reports_every_method():
    pipe = tiny_pipeline()
    faces = torch.rand(2, 1, 9, 9)
    res = compare_superres(pipe.decoder, pipe.modulator, faces, factor=4, fit_steps=3, progress=False)
    assert res["size"] == (8, 8) and res["images"]["low_res"].shape == (2, 1, 2, 2)
    assert set(res["psnr"]) == {"bicubic", "qiren_single_image_fit", "qiren_prior", "qiren_prior_area",
                                "qiren_prior_full_res_encode"}
    assert all(np.isfinite(v) for v in res["psnr"].values())
