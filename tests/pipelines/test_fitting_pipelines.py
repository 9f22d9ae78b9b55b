"""QirenSignalFittingPipeline and QirenSuperResolutionPipeline: fitting, outputs, save/load round trips."""
import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.data.signals import load_image
from qiren_gen.models import QIREN
from qiren_gen.pipelines import QirenSignalFittingPipeline, QirenSuperResolutionPipeline, interpolate_image

pytestmark = pytest.mark.usefixtures("one_thread")


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_audio_fit_and_roundtrip(tmp_path):
    t = np.linspace(0, 1, 120)
    signal = np.sin(2 * np.pi * 3 * t) * np.exp(-t)
    pipe = _quiet(QirenSignalFittingPipeline.from_model_name("qiren", in_features=1, seed=0))
    out = pipe(signal, num_steps=40)
    assert out.signal.shape == (120,) and len(out.losses) == 40
    assert out.mse < 0.3 * out.losses[0] and out.psnr > 15
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = _quiet(QirenSignalFittingPipeline.from_pretrained(tmp_path / "pipe"))
    assert isinstance(loaded.model, QIREN)
    np.testing.assert_allclose(loaded.render((120,)), out.signal, atol=1e-6)


@pytest.mark.parametrize("output_type", ["np", "pt", "pil"])
def test_image_output_types(output_type):
    img = load_image("coffee", 8)
    pipe = _quiet(QirenSignalFittingPipeline.from_model_name("relu", in_features=2, seed=0))
    out = pipe(img, num_steps=3, output_type=output_type)
    if output_type == "pil":
        assert isinstance(out.signal[0], Image.Image) and out.signal[0].size == (8, 8)
    else:
        assert tuple(out.signal.shape) == (8, 8) and isinstance(out.signal, torch.Tensor) == (output_type == "pt")
    tup = pipe(img, num_steps=1, return_dict=False)
    assert isinstance(tup, tuple) and tup[0].shape == (8, 8)


def test_step_callback_sees_every_step_and_the_current_fit():
    img = load_image("camera", 8)
    pipe = _quiet(QirenSignalFittingPipeline.from_model_name("qiren", in_features=2, seed=0))
    seen = []
    out = pipe(img, num_steps=5, callback_on_step_end=lambda p, step, t, kw: seen.append((step, t, kw)))
    assert [s for s, _, _ in seen] == [0, 1, 2, 3, 4] and all(s == t for s, t, _ in seen)
    assert [kw["loss"] for _, _, kw in seen] == out.losses
    for _, _, kw in seen:  # the prediction is the fit the loss measured, on the signal's grid
        assert kw["prediction"].shape == (8, 8)
        assert abs(float(((kw["prediction"] - torch.as_tensor(img)) ** 2).mean()) - kw["loss"]) < 1e-6


@pytest.mark.parametrize(
    "signal, kwargs",
    [(np.zeros((4, 4, 3)), {}), (np.zeros(10), {}), (np.zeros((8, 8)), {"num_steps": 0}),
     (np.zeros((8, 8)), {"output_type": "jpg"}), (np.full((8, 8), np.nan), {})],
)
def test_fitting_pipeline_rejects_bad_input(signal, kwargs):
    pipe = _quiet(QirenSignalFittingPipeline.from_model_name("tanh", in_features=2))
    with pytest.raises(ValueError):
        pipe(signal, **kwargs)


def test_superres_shapes_fit_and_roundtrip(tmp_path):
    low = load_image("camera", 8)
    pipe = _quiet(QirenSuperResolutionPipeline.from_model_name("qiren", seed=0))
    out = pipe(low, scale=2, num_steps=30, align_corners=True)
    assert out.images.shape == (16, 16) and np.isfinite(out.images).all()
    # the 8x8 linspace grid points are not on the 16x16 one; check against a direct fine render instead
    np.testing.assert_allclose(pipe.decode(16, 16, True).reshape(16, 16).numpy(), out.images, atol=1e-6)
    assert out.low_res_mse < 0.5 * out.losses[0]
    pipe.save_pretrained(tmp_path / "sr")
    loaded = QirenSuperResolutionPipeline.from_pretrained(tmp_path / "sr")
    np.testing.assert_allclose(loaded.decode(16, 16, True).reshape(16, 16).numpy(), out.images, atol=1e-6)


def test_superres_rejects_bad_scale():
    pipe = _quiet(QirenSuperResolutionPipeline.from_model_name("tanh"))
    with pytest.raises(ValueError):
        pipe(np.zeros((4, 4)), scale=0)


def test_interpolation_baselines():
    img = np.array([[-1.0, 1.0], [1.0, -1.0]])
    nearest = interpolate_image(img, 2, "nearest")
    np.testing.assert_array_equal(nearest, np.kron(img, np.ones((2, 2))))
    bilinear = interpolate_image(img, 2, "bilinear", align_corners=True)
    assert bilinear.shape == (4, 4) and bilinear[0, 0] == -1 and bilinear[0, -1] == 1
    np.testing.assert_allclose(interpolate_image(np.full((3, 3), 0.25), 3, "bilinear"), 0.25)
    with pytest.raises(ValueError):
        interpolate_image(img, 2, "lanczos")
